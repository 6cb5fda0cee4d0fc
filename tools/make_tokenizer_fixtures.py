#!/usr/bin/env python3
"""Builds the tokenizer test fixtures with the Hugging Face `tokenizers` library (the reference).

No tokenizer can be downloaded here, so this script *trains* small tokenizers of each family the C++
loader supports on a slice of War and Peace, shapes them like the real files (GPT-2, Llama 3, Qwen2,
Llama 2 / Mistral SentencePiece-style BPE), and records what the reference produces for a corpus of
awkward strings:

  tests/fixtures/tokenizer/corpus.json            the strings (shared by every tokenizer)
  tests/fixtures/tokenizer/<name>/tokenizer.json  the tokenizer as `tokenizers` saves it
  tests/fixtures/tokenizer/<name>/expected.json   ids with and without special tokens, decodes, vocab size

It also writes the Unicode canonical-normalization tables the C++ NFC/NFD normalizers need
(src/microscale/tokenizer/unicode_normalization_data.inc), derived from Python's `unicodedata`.

Usage: python3 tools/make_tokenizer_fixtures.py [--book ../shared/data/war_and_peace.txt]
Requires: pip install tokenizers
"""
import argparse
import json
import random
import unicodedata
from pathlib import Path

import tokenizers
from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures" / "tokenizer"
UNICODE_TABLES = ROOT / "src" / "microscale" / "tokenizer" / "unicode_normalization_data.inc"

GPT2_PATTERN = r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"
LLAMA3_PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}"
                  r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")
QWEN2_PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}"
                 r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")


# ---------------------------------------------------------------------------------------------
# The book
# ---------------------------------------------------------------------------------------------
def book_body(path: Path) -> str:
    text = path.read_text(encoding="utf-8")
    start = text.index("*** START OF")
    start = text.index("\n", start) + 1
    end = text.index("*** END OF")
    return text[start:end]


def training_lines(body: str, chars: int) -> list[str]:
    return body[:chars].splitlines(keepends=True)


# ---------------------------------------------------------------------------------------------
# Tokenizers
# ---------------------------------------------------------------------------------------------
def train_byte_level(lines, vocab_size, pre_tokenizer, special_tokens):
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizer
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=special_tokens, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(lines, trainer)
    return tok


def model_vocab_and_merges(tok):
    model = json.loads(tok.to_str())["model"]
    merges = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in model["merges"]]
    return model["vocab"], merges


def make_gpt2(lines):
    """Exactly what `tokenizers` writes for a GPT-2 style byte-level BPE (the bundled model's kind)."""
    tok = train_byte_level(lines, 3000, pre_tokenizers.ByteLevel(add_prefix_space=False), ["<|endoftext|>"])
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    return tok


def make_gpt2_added(gpt2):
    """The GPT-2 model with every added-token option, a prefix space, a BOS/EOS template and the legacy
    "a b" merges format."""
    vocab, merges = model_vocab_and_merges(gpt2)
    vocab = {k: v for k, v in vocab.items() if k != "<|endoftext|>"}
    vocab = {k: i for i, k in enumerate(sorted(vocab, key=vocab.get))}
    tok = Tokenizer(models.BPE(vocab=vocab, merges=merges))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=True)
    tok.decoder = decoders.ByteLevel()
    tok.add_special_tokens([AddedToken("<|endoftext|>", special=True, normalized=False),
                            AddedToken("<|bos|>", special=True, normalized=False)])
    tok.add_tokens([
        AddedToken("<mask>", lstrip=True, rstrip=False, normalized=False),
        AddedToken("[tail]", lstrip=False, rstrip=True, normalized=False),
        AddedToken("word", single_word=True, normalized=False),
        AddedToken("Prince Andrew", single_word=True, lstrip=True, rstrip=True, normalized=True),
        AddedToken("<mask>x", normalized=False),  # longer match at the same start wins
    ])
    tok.post_processor = processors.TemplateProcessing(
        single="<|bos|> $A <|endoftext|>", pair="<|bos|> $A <|endoftext|> $B:1 <|endoftext|>:1",
        special_tokens=[("<|bos|>", tok.token_to_id("<|bos|>")), ("<|endoftext|>", tok.token_to_id("<|endoftext|>"))])
    data = json.loads(tok.to_str())
    data["model"]["merges"] = [" ".join(m) for m in data["model"]["merges"]]
    return data


def make_llama3(lines):
    split = pre_tokenizers.Split(Regex(LLAMA3_PATTERN), behavior="isolated", invert=False)
    pre = pre_tokenizers.Sequence([split, pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    base = train_byte_level(lines, 3000, pre, [])
    vocab, merges = model_vocab_and_merges(base)
    # Whole words that no merge sequence builds: only `ignore_merges` can produce them.
    for word in ["ĠNatasha's", "Ġextraordinarily", "Ġmagnanimous", "ĠKutuzov", "ĠBorodino", "ĠPrince"]:
        if word not in vocab:
            vocab[word] = len(vocab)
    tok = Tokenizer(models.BPE(vocab=vocab, merges=merges, ignore_merges=True))
    tok.pre_tokenizer = pre
    tok.decoder = decoders.ByteLevel()
    specials = ["<|begin_of_text|>", "<|end_of_text|>", "<|reserved_special_token_0|>",
                "<|reserved_special_token_1|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"]
    tok.add_special_tokens([AddedToken(s, special=True, normalized=False) for s in specials])
    bos = tok.token_to_id("<|begin_of_text|>")
    tok.post_processor = processors.Sequence([
        processors.ByteLevel(add_prefix_space=True, trim_offsets=False, use_regex=True),
        processors.TemplateProcessing(single="<|begin_of_text|> $A",
                                      pair="<|begin_of_text|> $A <|begin_of_text|>:1 $B:1",
                                      special_tokens=[("<|begin_of_text|>", bos)]),
    ])
    return tok


def make_qwen2(lines):
    split = pre_tokenizers.Split(Regex(QWEN2_PATTERN), behavior="isolated", invert=False)
    pre = pre_tokenizers.Sequence([split, pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    tok = Tokenizer(models.BPE())
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre
    trainer = trainers.BpeTrainer(vocab_size=2500, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(lines, trainer)
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    tok.add_special_tokens([AddedToken(s, special=True, normalized=False)
                            for s in ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]])
    # A normalized (non-special) added token: matched after NFC, so "cafe\u0301" finds it too.
    tok.add_tokens([AddedToken("café", normalized=True)])
    return tok


def train_sentencepiece_style(lines, vocab_size):
    """A SentencePiece-like BPE: ▁ marks word starts, a small alphabet, <unk> <s> </s> and the 256
    <0xNN> byte tokens first in the vocabulary (as in Llama 2 / Mistral)."""
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always", split=True)
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, limit_alphabet=70, show_progress=False)
    tok.train_from_iterator(lines, trainer)
    trained, merges = model_vocab_and_merges(tok)
    vocab = {"<unk>": 0, "<s>": 1, "</s>": 2}
    for b in range(256):
        vocab[f"<0x{b:02X}>"] = len(vocab)
    for piece in sorted(trained, key=trained.get):
        vocab.setdefault(piece, len(vocab))
    return vocab, merges


def spm_tokenizer(vocab, merges, byte_fallback, with_bos=True):
    tok = Tokenizer(models.BPE(vocab=vocab, merges=merges, unk_token="<unk>", fuse_unk=True,
                               byte_fallback=byte_fallback))
    tok.add_special_tokens([AddedToken(s, special=True, normalized=False) for s in ["<unk>", "<s>", "</s>"]])
    if with_bos:
        tok.post_processor = processors.TemplateProcessing(
            single="<s> $A", pair="<s> $A <s> $B", special_tokens=[("<s>", 1)])
    return tok


def make_llama2(vocab, merges):
    """Llama 2 (legacy) layout: Prepend+Replace normalizer, no pre-tokenizer, byte fallback."""
    tok = spm_tokenizer(vocab, merges, byte_fallback=True)
    tok.normalizer = normalizers.Sequence([normalizers.Prepend("▁"), normalizers.Replace(" ", "▁")])
    tok.decoder = decoders.Sequence([decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse(),
                                     decoders.Strip(content=" ", left=1, right=0)])
    return tok


def make_mistral(vocab, merges):
    """Newer SentencePiece layout: Metaspace pre-tokenizer (prepend first, no split), Metaspace decoder."""
    tok = spm_tokenizer(vocab, merges, byte_fallback=True)
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="first", split=False)
    tok.decoder = decoders.Sequence([decoders.Metaspace(replacement="▁", prepend_scheme="first", split=False),
                                     decoders.ByteFallback(), decoders.Fuse()])
    return tok


def make_spm_unk(vocab, merges):
    """No byte fallback: unknown characters become <unk>, consecutive ones fused; Metaspace split on ▁."""
    tok = spm_tokenizer(vocab, merges, byte_fallback=False, with_bos=False)
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always", split=True)
    tok.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always", split=True)
    return tok


# ---------------------------------------------------------------------------------------------
# The corpus of awkward strings
# ---------------------------------------------------------------------------------------------
def awkward_strings(body: str) -> list[str]:
    s = [
        "", " ", "  ", "\n", "\t", "a", "Hello world", "Hello, world!", " leading space", "trailing space ",
        "double  space", "many        spaces between", "tabs\tand\t\ttabs", "line\nbreak", "windows\r\nline",
        "blank lines\n\n\nafter", " \n \n ", "\n\n\n", "  \n\n  x", "x \t \n y", "\r\r\n\n\r",
        "it's", "It's", "IT'S", "don't won't can't", "we're they've I'm you'll he'd", "WE'RE THEY'VE I'M YOU'LL HE'D",
        "'s 't 're 've 'm 'll 'd", "''s ''t", "x's's's", "'ſ 'Ś 'ss", "O'Neil's", "rock 'n' roll",
        "0", "12", "123", "1234", "1234567890", "3.14159", "1,000,000", "2024-01-31", "v1.2.3-rc4", "x=1+2*3/4",
        "٣٤٥٦٧", "²³ ½ ¼ Ⅻ ⅷ", "０１２３", "१२३४५",
        "!!!", "?!?!", "...", "—", "---", "(a) [b] {c} <d>", "@#$%^&*", "\"quoted\"", "“curly” ‘quotes’",
        "e.g. i.e. etc.", "path/to/file.txt", "https://example.com/a?b=c&d=e", "a_b__c___d", "~`|\\",
        "café", "cafe\u0301", "naïve", "nai\u0308ve", "Å", "A\u030a", "\u212b", "ﬁ ligature", "Ǆ ǅ ǆ",
        "Z\u0324\u0308\u0342", "a\u0301\u0302\u0303\u0304", "\u1e9b\u0323", "q\u0307\u0323", "\u0344",
        "\u1100\u1161\u11a8", "한국어 텍스트", "\u1112\u1161\u11ab\u1100\u1173\u11af",
        "Привет, мир!", "Война и мир", "Γειά σου Κόσμε", "ά ά", "שלום עולם", "مرحبا بالعالم", "سلام ۱۲۳",
        "नमस्ते दुनिया", "क्षत्रिय", "สวัสดีครับ", "日本語のテキスト", "中文文本，标点。", "漢字かなカナ",
        "ｶﾀｶﾅ ＡＢＣ", "ᚠᚢᚦᚨᚱᚲ", "𝔘𝔫𝔦𝔠𝔬𝔡𝔢", "𐍈𐌰𐌻", "Ω≈ç√∫˜µ≤≥÷",
        "😀", "😀😃😄", "👍🏽", "👨‍👩‍👧‍👦", "🏳️‍🌈", "🇫🇷🇯🇵", "1️⃣", "❤️", "☃", "a😀b c😀 d",
        "zero\u200bwidth", "non\u00a0breaking", "ideographic\u3000space", "nel\u0085line", "line\u2028sep",
        "mongolian\u180evowel", "bom\ufeffinside", "soft\u00adhyphen", "ctrl\x00\x01\x1b\x7f chars",
        "\x0b\x0c vertical", "\u2003em\u2002en\u2009thin", "\x1c\x1d\x1e\x1f separators",
        "MiXeD CaSe WoRdS", "camelCaseIdentifier", "snake_case_identifier", "SCREAMING_CASE",
        "def f(x):\n    return x * 2\n", "if (a && b) { return; }", "<html><body>hi</body></html>",
        "a" * 50, "ab" * 30, "the the the the the the",
    ]
    # Special and added tokens written literally, alone and glued to words.
    s += [
        "<|endoftext|>", "Hello<|endoftext|>world", "Hello <|endoftext|> world", "<|endoftext|><|endoftext|>",
        "<|endoftext", "<|endoftext|", "<|endoftext|>>", "<|bos|>x<|endoftext|>",
        "<|begin_of_text|>Hi", " <|begin_of_text|> <|eot_id|>\n", "<|start_header_id|>user<|end_header_id|>\n\nhi<|eot_id|>",
        "<|im_start|>system\nYou are nice.<|im_end|>\n<|im_start|>user\nhi<|im_end|>",
        "<s>", "</s>", "<s>Hello</s>", " <s> x </s> ", "<unk>", "a<unk>b", "<s><s></s>",
        "a <mask> b", "a     <mask>b", "<mask>", "<mask>x y", "x<mask>", "[tail]   next", "end [tail]   ",
        "word", "a word here", "password", "words", "word_", "(word)", "éword", "word2", "the word.",
        "Prince Andrew", "  Prince Andrew  said", "Prince Andrews", "prince andrew",
        "café", "un café noir", "cafe\u0301 noir", "CAFÉ",
        "<0x41>", "<0xZZ>", "▁", "▁▁x▁", "▁Hello", "x▁y",
    ]
    # Very long "words" (BPE must stay fast on them) and long runs of everything else.
    rng = random.Random(1234)
    letters = "abcdefghijklmnopqrstuvwxyz"
    s += [
        "a" * 1500,
        "".join(rng.choice(letters) for _ in range(2000)),
        "Supercalifragilistic" * 60,
        "9" * 1201,
        " " * 1100,
        "!?" * 700,
        "\n" * 600,
        "é" * 700,
        "😀" * 400,
        "Война" * 250,
    ]
    # A few passages of the book (the test text's kind of input).
    paragraphs = [p for p in body.split("\n\n") if len(p) > 200]
    for index in (10, 100, 500, 1000, 2000):
        s.append(paragraphs[index])
    s.append(body[200000:204000])
    # Seeded random strings drawn from pools of awkward pieces.
    pools = [
        list(letters + letters.upper()), list("0123456789"), [" ", "  ", "\t", "\n", "\r\n", "\u00a0"],
        list(".,;:!?'\"()-—…"), ["'s", "'t", "'re", "'ll", "'S", "'D"], list("éèàüößçñ"), ["\u0301", "\u0308", "\u0323"],
        list("日本語中文한국"), ["😀", "👍🏽", "👨‍👩‍👧", "🇫🇷"], ["<|endoftext|>", "<s>", "</s>", "<mask>", "word", "▁"],
        ["the", "Prince", "Natasha", "said", "and"], ["٣", "²", "½"],
    ]
    for _ in range(150):
        n = rng.randint(1, 25)
        s.append("".join(rng.choice(rng.choice(pools)) for _ in range(n)))
    return s


# ---------------------------------------------------------------------------------------------
# Recording what the reference does
# ---------------------------------------------------------------------------------------------
def special_affixes(tok):
    """The ids the post-processor puts before and after a text when add_special_tokens=True."""
    probe = "Hello"
    plain = tok.encode(probe, add_special_tokens=False).ids
    full = tok.encode(probe, add_special_tokens=True).ids
    for start in range(len(full) - len(plain) + 1):
        if full[start:start + len(plain)] == plain:
            return full[:start], full[start + len(plain):]
    raise AssertionError("the post-processor does not keep the text's ids together")


def record(name: str, tok_json: str, corpus: list[str]):
    tok = Tokenizer.from_str(tok_json)
    folder = FIXTURES / name
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "tokenizer.json").write_text(tok_json, encoding="utf-8")
    # add_special_tokens=True adds the same ids around every text (the post-processor's template), so
    # the fixture stores them once and the plain ids per case; the relation is checked here.
    prefix, suffix = special_affixes(tok)
    cases = []
    for text in corpus:
        plain = tok.encode(text, add_special_tokens=False).ids
        with_special = tok.encode(text, add_special_tokens=True).ids
        assert with_special == prefix + plain + suffix, (name, text)
        decoded = tok.decode(with_special, skip_special_tokens=False)
        decoded_skip = tok.decode(with_special, skip_special_tokens=True)
        case = {"ids": plain}
        # Decodes are stored only where they differ from the text, to keep the fixtures small.
        if decoded != text:
            case["decoded"] = decoded
        if decoded_skip != decoded:
            case["decoded_skip_special"] = decoded_skip
        cases.append(case)
    expected = {
        "tokenizer": name,
        "reference": f"tokenizers {tokenizers.__version__}",
        "vocab_size": tok.get_vocab_size(with_added_tokens=True),
        "model_vocab_size": tok.get_vocab_size(with_added_tokens=False),
        "special_prefix": prefix,
        "special_suffix": suffix,
        "cases": cases,
    }
    (folder / "expected.json").write_text(json.dumps(expected, ensure_ascii=False, separators=(",", ":")),
                                          encoding="utf-8")
    total = sum(len(c["ids"]) for c in cases)
    print(f"{name}: vocab {expected['vocab_size']}, {total} ids, "
          f"tokenizer.json {len(tok_json.encode()) // 1024} KB")


# ---------------------------------------------------------------------------------------------
# Unicode canonical normalization tables
# ---------------------------------------------------------------------------------------------
def write_unicode_tables():
    """Canonical normalization data as the reference library applies it. `tokenizers` normalizes with
    tables of an older Unicode version than Python's, so every entry Python's unicodedata offers is
    kept only where the reference library actually uses it (unknown code points are left alone)."""
    reference_nfd, reference_nfc = normalizers.NFD(), normalizers.NFC()
    highest_class_mark = "\u0345"  # combining class 240, the highest there is
    decompositions = []   # (code point, first, second or 0): one level of canonical decomposition
    compositions = []     # (first, second, composite): primary composites only
    combining = []        # (code point, canonical combining class) for class != 0
    unstable = set()      # code points that may change under NFC (or change their neighbour)
    for cp in range(0x110000):
        if 0xD800 <= cp <= 0xDFFF or 0xAC00 <= cp <= 0xD7A3:
            continue  # surrogates; Hangul syllables are handled algorithmically
        ch = chr(cp)
        ccc = unicodedata.combining(ch)
        decomposition = unicodedata.decomposition(ch)
        canonical = bool(decomposition) and not decomposition.startswith("<")
        if canonical and reference_nfd.normalize_str(ch) == ch:
            canonical = False  # the reference does not know this decomposition
        if ccc and not canonical and ccc < 240 and reference_nfd.normalize_str(highest_class_mark + ch)[0] != ch:
            ccc = 0  # the reference does not know this mark: it does not reorder it
        if ccc:
            combining.append((cp, ccc))
            unstable.add(cp)
        if canonical:
            parts = [int(p, 16) for p in decomposition.split()]
            decompositions.append((cp, parts[0], parts[1] if len(parts) > 1 else 0))
            if unicodedata.normalize("NFC", ch) != ch or reference_nfc.normalize_str(ch) != ch:
                unstable.add(cp)
            elif len(parts) == 2 and reference_nfc.normalize_str(unicodedata.normalize("NFD", ch)) == ch:
                compositions.append((parts[0], parts[1], cp))
    for first, second, _ in compositions:
        unstable.add(second)  # it may compose with the character before it
    unstable.update(range(0x1161, 0x1176))  # Hangul vowel jamo compose with a leading consonant
    unstable.update(range(0x11A8, 0x11C3))  # trailing consonants compose with an LV syllable

    def ranges(points):
        out, points = [], sorted(points)
        for p in points:
            if out and out[-1][1] + 1 == p:
                out[-1][1] = p
            else:
                out.append([p, p])
        return out

    lines = [
        "// Generated by tools/make_tokenizer_fixtures.py from Python's unicodedata "
        f"(Unicode {unicodedata.unidata_version}), restricted to what the `tokenizers` library's",
        "// older normalization tables apply. Do not edit.",
        "// Canonical decompositions (one level), primary compositions, combining classes, and the",
        "// code points that can change under NFC (a string without any of them is already NFC).",
        f'inline constexpr const char* kUnicodeDataVersion = "{unicodedata.unidata_version}";',
        "inline constexpr CanonicalDecomposition kCanonicalDecompositions[] = {",
    ]
    lines += [f"{{0x{cp:X},0x{a:X},0x{b:X}}}," for cp, a, b in decompositions]
    lines += ["};", "inline constexpr PrimaryComposition kPrimaryCompositions[] = {"]
    lines += [f"{{0x{a:X},0x{b:X},0x{c:X}}}," for a, b, c in sorted(compositions)]
    lines += ["};", "inline constexpr CombiningClass kCombiningClasses[] = {"]
    lines += [f"{{0x{cp:X},{ccc}}}," for cp, ccc in combining]
    lines += ["};", "inline constexpr CodePointRange kNfcUnstableRanges[] = {"]
    lines += [f"{{0x{a:X},0x{b:X}}}," for a, b in ranges(unstable)]
    lines += ["};", ""]
    UNICODE_TABLES.write_text("\n".join(lines), encoding="utf-8")
    print(f"{UNICODE_TABLES.relative_to(ROOT)}: {len(decompositions)} decompositions, "
          f"{len(compositions)} compositions, {len(combining)} combining classes")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--book", type=Path, default=ROOT.parent / "shared" / "data" / "war_and_peace.txt")
    parser.add_argument("--train-chars", type=int, default=400_000)
    args = parser.parse_args()

    write_unicode_tables()
    body = book_body(args.book)
    lines = training_lines(body, args.train_chars)
    corpus = awkward_strings(body)
    FIXTURES.mkdir(parents=True, exist_ok=True)
    (FIXTURES / "corpus.json").write_text(json.dumps(corpus, ensure_ascii=False, indent=0), encoding="utf-8")

    gpt2 = make_gpt2(lines)
    record("gpt2", gpt2.to_str(pretty=True), corpus)
    record("gpt2_added", json.dumps(make_gpt2_added(gpt2), ensure_ascii=False), corpus)
    record("llama3", make_llama3(lines).to_str(), corpus)
    record("qwen2", make_qwen2(lines).to_str(), corpus)
    vocab, merges = train_sentencepiece_style(lines, 2000)
    record("llama2", make_llama2(vocab, merges).to_str(), corpus)
    record("mistral", make_mistral(vocab, merges).to_str(), corpus)
    record("spm_unk", make_spm_unk(vocab, merges).to_str(), corpus)
    total = sum(p.stat().st_size for p in FIXTURES.rglob("*") if p.is_file())
    print(f"fixtures: {total / 1024:.0f} KB in {FIXTURES.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
