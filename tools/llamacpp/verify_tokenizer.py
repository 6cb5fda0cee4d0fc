#!/usr/bin/env python3
"""Checks that llama.cpp tokenizes microscale's GGUF export of a SentencePiece-style tokenizer as the
`tokenizers` library does.

For each SentencePiece-style fixture tokenizer (tests/fixtures/tokenizer/{llama2,mistral}), a small
Llama-shaped checkpoint with zero weights and that tokenizer is written, exported with
`microscale export --to gguf`, and llama.cpp's llama-tokenize encodes every text of the fixture corpus
from the GGUF file. Its ids must equal the ids the `tokenizers` library gave (the fixture's
expected.json), except where the two are documented to differ (gguf_tokenizer.hpp): texts with special
tokens in them, and for a Metaspace tokenizer texts that begin with a space.

Test-only (never part of `make test`): it builds llama.cpp first (tools/llamacpp/build.sh).
Usage: tools/llamacpp/verify_tokenizer.py [MICROSCALE_BINARY]   (default build/microscale)
Prints a markdown table; exit status 1 when any compared text differs.
"""
import json
import struct
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests/fixtures/tokenizer"
SPACE_PIECE = "\u2581"


def write_zero_checkpoint(folder: Path, tokenizer_json: Path, vocab: int) -> None:
    """config.json + model.safetensors (F32 zeros) of a one-layer Llama with the given vocabulary."""
    hidden, intermediate, heads, kv_heads = 64, 128, 4, 2
    head_dim = hidden // heads
    config = {
        "architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": hidden,
        "intermediate_size": intermediate, "num_hidden_layers": 1, "num_attention_heads": heads,
        "num_key_value_heads": kv_heads, "vocab_size": vocab, "max_position_embeddings": 256,
        "rms_norm_eps": 1e-5, "rope_theta": 10000.0, "tie_word_embeddings": False, "torch_dtype": "float32",
        "bos_token_id": 1, "eos_token_id": 2,
    }
    shapes = {
        "model.embed_tokens.weight": [vocab, hidden],
        "model.layers.0.input_layernorm.weight": [hidden],
        "model.layers.0.post_attention_layernorm.weight": [hidden],
        "model.layers.0.self_attn.q_proj.weight": [heads * head_dim, hidden],
        "model.layers.0.self_attn.k_proj.weight": [kv_heads * head_dim, hidden],
        "model.layers.0.self_attn.v_proj.weight": [kv_heads * head_dim, hidden],
        "model.layers.0.self_attn.o_proj.weight": [hidden, heads * head_dim],
        "model.layers.0.mlp.gate_proj.weight": [intermediate, hidden],
        "model.layers.0.mlp.up_proj.weight": [intermediate, hidden],
        "model.layers.0.mlp.down_proj.weight": [hidden, intermediate],
        "model.norm.weight": [hidden],
        "lm_head.weight": [vocab, hidden],
    }
    header, offset = {}, 0
    for name, shape in shapes.items():
        size = 4
        for d in shape:
            size *= d
        header[name] = {"dtype": "F32", "shape": shape, "data_offsets": [offset, offset + size]}
        offset += size
    header_bytes = json.dumps(header).encode()
    header_bytes += b" " * (-len(header_bytes) % 8)
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps(config, indent=1))
    with open(folder / "model.safetensors", "wb") as f:
        f.write(struct.pack("<Q", len(header_bytes)) + header_bytes + bytes(offset))
    (folder / "tokenizer.json").write_bytes(tokenizer_json.read_bytes())


def main() -> int:
    microscale = Path(sys.argv[1] if len(sys.argv) > 1 else ROOT / "build/microscale")
    if not microscale.exists():
        print(f"verify_tokenizer: {microscale} not found (run make build first)", file=sys.stderr)
        return 1
    prefix = ROOT / "build-llamacpp"
    subprocess.run([str(ROOT / "tools/llamacpp/build.sh"), str(prefix)], check=True, stdout=sys.stderr)
    tokenize_tool = prefix / "bin/llama-tokenize"
    corpus = json.loads((FIXTURES / "corpus.json").read_text())
    print("llama.cpp: " + ";".join((prefix / "VERSION").read_text().splitlines()))
    print()
    print("| tokenizer | texts compared | equal ids | skipped (documented differences) | verdict |")
    print("|---|---:|---:|---:|---|")
    status = 0
    with tempfile.TemporaryDirectory() as work:
        work = Path(work)
        for name in ("llama2", "mistral"):
            tokenizer = json.loads((FIXTURES / name / "tokenizer.json").read_text())
            expected = json.loads((FIXTURES / name / "expected.json").read_text())
            vocab = len(tokenizer["model"]["vocab"])
            write_zero_checkpoint(work / name, FIXTURES / name / "tokenizer.json", vocab)
            gguf = work / f"{name}.gguf"
            subprocess.run([str(microscale), "export", str(work / name), "--out", str(gguf)], check=True,
                           stdout=subprocess.DEVNULL)
            specials = [a["content"] for a in tokenizer["added_tokens"]]
            metaspace = (tokenizer.get("pre_tokenizer") or {}).get("type") == "Metaspace"
            compared = equal = skipped = 0
            for i, text in enumerate(corpus):
                if any(s in text for s in specials) or (metaspace and text[:1] in (" ", SPACE_PIECE)):
                    skipped += 1
                    continue
                text_file = work / "text.txt"
                text_file.write_bytes(text.encode())
                out = subprocess.run([str(tokenize_tool), "-m", str(gguf), "-f", str(text_file), "--ids", "--no-bos",
                                      "--no-escape", "--log-disable"], check=True, capture_output=True, text=True)
                ids = json.loads(out.stdout.strip().splitlines()[-1])
                compared += 1
                if ids == expected["cases"][i]["ids"]:
                    equal += 1
                elif compared - equal <= 3:
                    print(f"{name} text {i} {text!r}: llama.cpp {ids[:16]} tokenizers {expected['cases'][i]['ids'][:16]}",
                          file=sys.stderr)
            verdict = "PASS" if equal == compared else "FAIL"
            status |= verdict != "PASS"
            print(f"| {name} | {compared} | {equal} | {skipped} | {verdict} |")
    return status


if __name__ == "__main__":
    sys.exit(main())
