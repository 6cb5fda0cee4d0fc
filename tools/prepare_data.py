#!/usr/bin/env python3
"""Prepare the War and Peace corpus and the byte-level BPE tokenizer of the bundled model.

Runs on the CPU, deterministic. Needs `tokenizers` and `numpy`; `transformers` (optional) to
write tokenizer_config.json the way PreTrainedTokenizerFast does.

    python3 tools/prepare_data.py [--source ../shared/data/war_and_peace.txt]

Writes
  data/wp-test.txt            the last 5% of the book (test text, never trained on)        [committed]
  data/wp-calib.txt           ~300 KB of whole lines from the start of the train part      [committed]
  out/wp-data/train.txt       train part minus its last ~5%  (model fitting)                 [ignored]
  out/wp-data/val.txt         last ~5% of the train part     (validation / early stopping)   [ignored]
  out/wp-data/train_ids.npy   uint16 token ids of train.txt                                  [ignored]
  out/wp-data/val_ids.npy     uint16 token ids of val.txt                                    [ignored]
  out/wp-data/tokenizer/      tokenizer.json (+ tokenizer_config.json when transformers exists)
  out/wp-data/split.json      character offsets and sha256 of everything above
The split is described in data/README.md, which this script does not write (it is prose).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

SOURCE_SHA256 = "de5c482b0e6dc6a1fb1be7d2c07f92fee994b4eef146747826cc55f1283cce16"
REPO = Path(__file__).resolve().parent.parent
TEST_FRACTION = 0.05  # of the stripped book, taken from its end
VAL_FRACTION = 0.05  # of the train part, taken from its end
CALIB_BYTES = 300_000  # whole lines from the start of the train part, at most this many UTF-8 bytes
VOCAB_SIZE = 4096
SPECIAL_TOKEN = "<|endoftext|>"


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: Path) -> str:
    return sha256_bytes(path.read_bytes())


def strip_gutenberg(text: str) -> str:
    """Keep the lines strictly between '*** START OF ...' and '*** END OF ...'.

    The end-of-book credit line 'End of the Project Gutenberg EBook of ...' that sits just before the
    END marker is Gutenberg boilerplate too and is dropped, as are leading and trailing blank lines.
    The result ends with exactly one newline.
    """
    lines = text.split("\n")
    start = next(i for i, line in enumerate(lines) if line.startswith("*** START OF"))
    end = next(i for i, line in enumerate(lines) if line.startswith("*** END OF"))
    body = lines[start + 1 : end]
    while body and not body[-1].strip():
        body.pop()
    if body and body[-1].startswith("End of the Project Gutenberg EBook"):
        body.pop()
    while body and not body[-1].strip():
        body.pop()
    while body and not body[0].strip():
        body.pop(0)
    return "\n".join(body) + "\n"


def cut_at_line(text: str, fraction: float) -> int:
    """Character index just after the first newline at or after fraction * len(text)."""
    target = int(len(text) * fraction)
    newline = text.index("\n", target)
    return newline + 1


def first_lines_up_to_bytes(text: str, max_bytes: int) -> str:
    out: list[str] = []
    used = 0
    for line in text.splitlines(keepends=True):
        size = len(line.encode("utf-8"))
        if used + size > max_bytes:
            break
        out.append(line)
        used += size
    return "".join(out)


def train_tokenizer(train_text: str):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB_SIZE,
        min_frequency=2,
        special_tokens=[SPECIAL_TOKEN],  # first special token -> id 0
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    # The whole train part as one string, so the merges see its newlines and runs of blank lines.
    tokenizer.train_from_iterator([train_text], trainer=trainer)
    assert tokenizer.token_to_id(SPECIAL_TOKEN) == 0
    assert tokenizer.get_vocab_size() == VOCAB_SIZE, tokenizer.get_vocab_size()
    return tokenizer


def save_tokenizer(tokenizer, folder: Path) -> None:
    """tokenizer.json as `tokenizers` writes it (no post-processor: encode adds nothing) and a
    tokenizer_config.json written here rather than by transformers' save_pretrained, because
    transformers 5 would add a (no-op) TemplateProcessing post-processor to tokenizer.json and name
    a tokenizer class that transformers 4 does not know."""
    folder.mkdir(parents=True, exist_ok=True)
    tokenizer.save(str(folder / "tokenizer.json"))
    special = {"content": SPECIAL_TOKEN, "lstrip": False, "normalized": False, "rstrip": False,
               "single_word": False, "special": True}
    config = {
        "add_bos_token": False,
        "add_eos_token": False,
        "added_tokens_decoder": {"0": special},
        "bos_token": SPECIAL_TOKEN,
        "clean_up_tokenization_spaces": False,
        "eos_token": SPECIAL_TOKEN,
        "model_max_length": 512,
        "tokenizer_class": "PreTrainedTokenizerFast",
    }
    (folder / "tokenizer_config.json").write_text(json.dumps(config, indent=2) + "\n")
    try:
        from transformers import AutoTokenizer
    except ImportError:
        print("transformers missing: tokenizer_config.json not checked", file=sys.stderr)
        return
    loaded = AutoTokenizer.from_pretrained(str(folder))
    probe = "Hello, Prince Andrew!\n\n\u201cWell?\u201d"
    assert loaded(probe)["input_ids"] == tokenizer.encode(probe).ids
    assert loaded.bos_token_id == 0 and loaded.eos_token_id == 0
    assert loaded.decode(tokenizer.encode(probe).ids) == probe


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--source", type=Path, default=REPO.parent / "shared" / "data" / "war_and_peace.txt")
    parser.add_argument("--work", type=Path, default=REPO / "out" / "wp-data", help="ignored output folder")
    parser.add_argument("--data", type=Path, default=REPO / "data", help="committed output folder")
    args = parser.parse_args()

    raw = args.source.read_bytes()
    got = sha256_bytes(raw)
    if got != SOURCE_SHA256:
        print(f"{args.source}: sha256 {got}, expected {SOURCE_SHA256}", file=sys.stderr)
        return 1
    book = strip_gutenberg(raw.decode("utf-8"))

    test_cut = cut_at_line(book, 1.0 - TEST_FRACTION)
    train_part, test_text = book[:test_cut], book[test_cut:]
    val_cut = cut_at_line(train_part, 1.0 - VAL_FRACTION)
    fit_text, val_text = train_part[:val_cut], train_part[val_cut:]
    calib_text = first_lines_up_to_bytes(train_part, CALIB_BYTES)

    args.data.mkdir(parents=True, exist_ok=True)
    args.work.mkdir(parents=True, exist_ok=True)
    files = {
        args.data / "wp-test.txt": test_text,
        args.data / "wp-calib.txt": calib_text,
        args.work / "train.txt": fit_text,
        args.work / "val.txt": val_text,
    }
    for path, text in files.items():
        path.write_bytes(text.encode("utf-8"))

    tokenizer = train_tokenizer(train_part)
    save_tokenizer(tokenizer, args.work / "tokenizer")

    import numpy as np

    counts = {}
    for name, text in (("train", fit_text), ("val", val_text), ("test", test_text), ("calib", calib_text)):
        ids = tokenizer.encode(text).ids
        counts[name] = len(ids)
        if name in ("train", "val"):
            np.save(args.work / f"{name}_ids.npy", np.asarray(ids, dtype=np.uint16))

    summary = {
        "source": str(args.source.name),
        "source_sha256": SOURCE_SHA256,
        "book_chars": len(book),
        "train_part_chars": [0, test_cut],
        "test_chars": [test_cut, len(book)],
        "fit_chars_in_train_part": [0, val_cut],
        "val_chars_in_train_part": [val_cut, test_cut],
        "calib_chars_in_train_part": [0, len(calib_text)],
        "tokens": counts,
        "sha256": {str(p.relative_to(REPO)) if p.is_relative_to(REPO) else str(p): sha256_file(p) for p in files},
        "tokenizer_json_sha256": sha256_file(args.work / "tokenizer" / "tokenizer.json"),
    }
    (args.work / "split.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
