#!/usr/bin/env python3
"""Zero-shot task files for `microscale eval --tasks`, drawn from the held-out test text.

    python3 tools/make_tasks.py [--text data/wp-test.txt] [--out data/tasks] [--items 150] [--seed 1234]

Writes (JSON Lines, the format in docs/modules/eval.md):
  wp-cloze.jsonl     multiple choice: the context is one or two consecutive sentences of a paragraph,
                     the right choice is the sentence that follows, the three distractors are sentences
                     of similar length (within a factor 1.5 in words) from other paragraphs. Choices carry
                     their leading space. The label's position is drawn uniformly.
  wp-lastword.jsonl  LAMBADA-style: a passage of at least 20 words from one paragraph that ends with the
                     last word of a sentence (alphabetic, 3+ letters; the sentence's final punctuation is
                     dropped), so the task is to predict that word given everything before it.

Deterministic for a given text and seed. Standard library only.
"""

from __future__ import annotations

import argparse
import json
import random
import re
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z\u201c\"])")
LAST_WORD = re.compile(r"^(.*\S)\s([A-Za-z]{3,})[.!?]$", re.S)


def paragraphs(text: str) -> list[str]:
    out = []
    for line in text.splitlines():
        line = line.strip()
        if len(line.split()) < 8 or line.startswith("CHAPTER"):
            continue
        out.append(line)
    return out


def sentences(paragraph: str) -> list[str]:
    return [s.strip() for s in SENTENCE_END.split(paragraph) if s.strip()]


def words(s: str) -> int:
    return len(s.split())


def cloze_items(paras: list[str], count: int, rng: random.Random) -> list[dict]:
    split = [sentences(p) for p in paras]
    pool = [(pi, s) for pi, ss in enumerate(split) for s in ss if 5 <= words(s) <= 40]
    candidates = []
    for pi, ss in enumerate(split):
        for i in range(1, len(ss)):
            if 5 <= words(ss[i]) <= 40 and 5 <= words(ss[i - 1]) <= 60:
                candidates.append((pi, i))
    rng.shuffle(candidates)
    items = []
    for pi, i in candidates:
        if len(items) == count:
            break
        ss = split[pi]
        context = " ".join(ss[max(0, i - 2):i]) if i >= 2 and words(ss[i - 2]) <= 30 else ss[i - 1]
        answer = ss[i]
        n = words(answer)
        similar = [s for (pj, s) in pool if pj != pi and n / 1.5 <= words(s) <= n * 1.5 and s != answer]
        if len(similar) < 3:
            continue
        distractors = rng.sample(similar, 3)
        label = rng.randrange(4)
        choices = distractors[:label] + [answer] + distractors[label:]
        items.append({"context": context, "choices": [" " + c for c in choices], "label": label})
    return items


def lastword_items(paras: list[str], count: int, rng: random.Random) -> list[dict]:
    candidates = []
    for pi, p in enumerate(paras):
        ss = sentences(p)
        for i, s in enumerate(ss):
            passage = " ".join(ss[: i + 1])
            m = LAST_WORD.match(passage)
            if m and words(passage) >= 20 and words(passage) <= 120:
                candidates.append(m.group(1) + " " + m.group(2))
    rng.shuffle(candidates)
    return [{"text": t} for t in candidates[:count]]


def write_jsonl(path: Path, items: list[dict]) -> None:
    with path.open("w", encoding="utf-8") as f:
        for item in items:
            f.write(json.dumps(item, ensure_ascii=False) + "\n")
    print(f"wrote {path} ({len(items)} items)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--text", type=Path, default=REPO / "data" / "wp-test.txt")
    parser.add_argument("--out", type=Path, default=REPO / "data" / "tasks")
    parser.add_argument("--items", type=int, default=150)
    parser.add_argument("--seed", type=int, default=1234)
    args = parser.parse_args()
    paras = paragraphs(args.text.read_text(encoding="utf-8"))
    args.out.mkdir(parents=True, exist_ok=True)
    write_jsonl(args.out / "wp-cloze.jsonl", cloze_items(paras, args.items, random.Random(args.seed)))
    write_jsonl(args.out / "wp-lastword.jsonl", lastword_items(paras, args.items, random.Random(args.seed + 1)))


if __name__ == "__main__":
    main()
