#!/usr/bin/env python3
"""Reference fixtures from transformers for microscale's tests (exact FP32).

    python3 tools/make_model_fixtures.py --model models/wp-tiny --out tests/fixtures/model [--device cpu]
    python3 tools/make_model_fixtures.py --only tokenizer      # no torch needed

Parts (--only picks a subset, comma-separated; default all):
  tokenizer  wp-tiny-tokenizer.json: strings encoded by the `tokenizers` library with
             models/wp-tiny/tokenizer.json (ids and decoded text)
  ppl        wp-tiny-ppl.json: perplexity of the model on data/wp-test.txt, GPTQ-style: the whole text
             tokenized once (no BOS), non-overlapping windows of seqlen tokens (512 and 128), labels =
             the window (position 0 is not predicted), mean NLL of each window, ppl = exp(mean over
             windows); the tail that does not fill a window is dropped. Per-window NLLs are stored too
  logits     wp-tiny-logits-len{1,17,64}.safetensors: input_ids (I64 [T]) and logits (F32 [T, vocab])
             for three slices of the test text; wp-tiny-generate.json: a greedy continuation
  check      recompute all stored logits with an independent float64 numpy decoder (no torch needed)
  random     <name>/ for qwen2-tiny, qwen3-tiny, llama31-tiny, mistral-tiny: seeded random checkpoints
             saved by save_pretrained, plus logits.safetensors (input_ids I64 [40], logits F32 [40, vocab])
             and fixture.json

Models are loaded with dtype float32 and eager attention, TF32 is off, so every figure is FP32 math.
Each part is wrapped: a failure is printed and the other parts still run (exit status 1 at the end).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import traceback
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PPL_SEQLENS = (512, 128)
LOGIT_SLICES = ((0, 1), (1000, 17), (2000, 64))  # (start token, length) in the test text
RANDOM_SEQ_LEN = 40
TOKENIZER_PROBES = [
    "",
    "Hello world",
    " leading space and trailing space ",
    "Prince Andrew",
    "\u201cWell, Prince, so Genoa and Lucca are now just family estates of the Buonapartes.\u201d",
    "It was in July, 1805, and the speaker was the well-known Anna P\u00e1vlovna Sch\u00e9rer\u2014maid of honor.",
    "na\u00efve caf\u00e9 \u2014 1812",
    "\n\n\n",
    "line one\nline two\r\n\tindented   three spaces",
    "digits 0123456789 and 3.14159",
    "emoji \U0001F642 and \u4e2d\u6587 and \u0440\u0443\u0441\u0441\u043a\u0438\u0439",
    "<|endoftext|>",
    "text<|endoftext|>more text",
    "don't can't I'm we'll they've she'd",
]


def versions() -> dict:
    out = {"python": sys.version.split()[0]}
    for name in ("torch", "transformers", "tokenizers", "safetensors"):
        try:
            out[name] = __import__(name).__version__
        except Exception:  # missing here: not used by this part
            pass
    return out


def write_json(path: Path, data: dict) -> None:
    path.write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {path}", flush=True)


# ---------------------------------------------------------------------------------------------- torch


def exact_fp32(threads: int) -> None:
    import torch

    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.set_float32_matmul_precision("highest")
    if threads > 0:
        torch.set_num_threads(threads)


def load_fp32(folder: Path, device: str):
    import torch
    from transformers import AutoModelForCausalLM

    try:
        model = AutoModelForCausalLM.from_pretrained(str(folder), dtype=torch.float32, attn_implementation="eager")
    except TypeError:
        model = AutoModelForCausalLM.from_pretrained(str(folder), torch_dtype=torch.float32,
                                                     attn_implementation="eager")
    model = model.to(device).eval()
    bad = [n for n, p in model.named_parameters() if p.dtype != torch.float32]
    if bad:
        raise RuntimeError(f"{folder}: parameters not float32 after loading: {bad[:3]}")
    return model


def logits_of(model, ids, device: str):
    """FP32 logits [batch, T, vocab] on the CPU for a [batch, T] list/tensor of ids, no KV cache."""
    import torch

    with torch.no_grad():
        x = torch.as_tensor(ids, dtype=torch.long, device=device)
        if x.dim() == 1:
            x = x[None]
        out = model(input_ids=x, use_cache=False).logits
    return out.float().cpu()


def window_nlls(model, ids: list[int], seqlen: int, device: str, batch: int = 16) -> list[float]:
    import torch

    n_windows = len(ids) // seqlen
    windows = torch.tensor(ids[: n_windows * seqlen], dtype=torch.long).view(n_windows, seqlen)
    nlls: list[float] = []
    for start in range(0, n_windows, batch):
        chunk = windows[start : start + batch]
        logp = torch.log_softmax(logits_of(model, chunk, device).double(), dim=-1)
        picked = logp[:, :-1].gather(-1, chunk[:, 1:, None]).squeeze(-1)
        nlls.extend((-picked.mean(dim=1)).tolist())
    return nlls


def test_ids(model_dir: Path, test_text: Path) -> list[int]:
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
    return tokenizer.encode(test_text.read_text(encoding="utf-8")).ids


def part_ppl(args) -> None:
    model = load_fp32(args.model, args.device)
    ids = test_ids(args.model, args.test_text)
    result = {
        "model": "models/wp-tiny",
        "text": "data/wp-test.txt",
        "protocol": "tokenize whole text once, no BOS; non-overlapping windows of seqlen; NLL of positions "
                    "1..seqlen-1 of each window (labels = window); ppl = exp(mean over windows of the window "
                    "mean NLL); tail shorter than seqlen dropped",
        "compute": f"transformers FP32, eager attention, TF32 off, device {args.device}; log-softmax in float64",
        "versions": versions(),
        "token_count": len(ids),
        "first_64_ids": ids[:64],
    }
    for seqlen in PPL_SEQLENS:
        nlls = window_nlls(model, ids, seqlen, args.device)
        mean = sum(nlls) / len(nlls)
        result[f"seqlen_{seqlen}"] = {"windows": len(nlls), "mean_nll": mean, "ppl": math.exp(mean),
                                      "window_nll": nlls}
        print(f"ppl seqlen {seqlen}: {math.exp(mean):.5f} over {len(nlls)} windows (mean NLL {mean:.6f})", flush=True)
    write_json(args.out / "wp-tiny-ppl.json", result)


def part_logits(args) -> None:
    import torch
    from safetensors.torch import save_file

    model = load_fp32(args.model, args.device)
    ids = test_ids(args.model, args.test_text)
    for start, length in LOGIT_SLICES:
        seq = ids[start : start + length]
        logits = logits_of(model, seq, args.device)[0].contiguous()
        path = args.out / f"wp-tiny-logits-len{length}.safetensors"
        save_file({"input_ids": torch.tensor(seq, dtype=torch.int64), "logits": logits}, str(path),
                  metadata={"model": "models/wp-tiny", "source": f"data/wp-test.txt tokens [{start}, {start + length})",
                            "compute": "transformers FP32 eager, TF32 off", "torch": torch.__version__,
                            "transformers": versions().get("transformers", "")})
        print(f"wrote {path} ({path.stat().st_size} bytes), argmax of last position {int(logits[-1].argmax())}",
              flush=True)

    # Greedy continuation with full recomputation each step (no KV cache), FP32 argmax.
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(args.model / "tokenizer.json"))
    prompt = ids[:16]
    seq = list(prompt)
    for _ in range(32):
        seq.append(int(logits_of(model, seq, args.device)[0, -1].argmax()))
    write_json(args.out / "wp-tiny-generate.json", {
        "model": "models/wp-tiny", "compute": "transformers FP32 eager, TF32 off, greedy argmax, no KV cache",
        "versions": versions(), "prompt_ids": prompt, "prompt_text": tokenizer.decode(prompt),
        "new_tokens": 32, "output_ids": seq[len(prompt):], "output_text": tokenizer.decode(seq[len(prompt):]),
    })


def random_specs() -> dict:
    """name -> (config class name, model class name, config kwargs, saved weight dtype)."""
    common = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                  num_key_value_heads=2, rms_norm_eps=1e-6, hidden_act="silu", bos_token_id=1, eos_token_id=2)
    return {
        "qwen2-tiny": ("Qwen2Config", "Qwen2ForCausalLM",
                       dict(common, vocab_size=1024, head_dim=16, max_position_embeddings=128, rope_theta=1000000.0,
                            tie_word_embeddings=False, use_sliding_window=False), "bfloat16"),
        "qwen3-tiny": ("Qwen3Config", "Qwen3ForCausalLM",
                       dict(common, vocab_size=1000, head_dim=32, max_position_embeddings=128, rope_theta=1000000.0,
                            tie_word_embeddings=True, attention_bias=False, use_sliding_window=False), "bfloat16"),
        "llama31-tiny": ("LlamaConfig", "LlamaForCausalLM",
                         dict(common, vocab_size=512, head_dim=16, max_position_embeddings=256, rope_theta=500000.0,
                              rope_scaling={"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                                            "high_freq_factor": 4.0, "original_max_position_embeddings": 64},
                              tie_word_embeddings=True, rms_norm_eps=1e-5), "float32"),
        "mistral-tiny": ("MistralConfig", "MistralForCausalLM",
                         dict(common, vocab_size=512, head_dim=16, max_position_embeddings=256, rope_theta=10000.0,
                              sliding_window=None, tie_word_embeddings=False, rms_norm_eps=1e-5), "float32"),
    }


def v4_style_config(config: dict) -> dict:
    """The same config as transformers 4.x wrote it: rope_theta and rope_scaling at the top level."""
    out = {k: v for k, v in config.items() if k != "rope_parameters"}
    rope = dict(config.get("rope_parameters") or {})
    if "rope_theta" in rope:
        out["rope_theta"] = rope.pop("rope_theta")
    out["rope_scaling"] = None if rope.get("rope_type", "default") == "default" else rope
    if "dtype" in out:
        out["torch_dtype"] = out.pop("dtype")
    return dict(sorted(out.items()))


def part_random(args) -> None:
    import torch
    import transformers
    from safetensors.torch import save_file

    failures = []
    for index, (name, (config_cls, model_cls, kwargs, dtype_name)) in enumerate(random_specs().items()):
        try:
            folder = args.out / name
            folder.mkdir(parents=True, exist_ok=True)
            for old in folder.iterdir():
                old.unlink()
            config = getattr(transformers, config_cls)(**kwargs)
            torch.manual_seed(1000 + index)
            model = getattr(transformers, model_cls)(config)
            with torch.no_grad():
                # Larger weights than the usual init so the logits are far from flat; norms around 1.
                for pname, param in model.named_parameters():
                    if "norm" in pname:
                        param.copy_(1.0 + 0.1 * torch.randn_like(param))
                    else:
                        param.copy_(0.1 * torch.randn_like(param))
            model = model.to(getattr(torch, dtype_name))
            model.save_pretrained(str(folder))
            saved = json.loads((folder / "config.json").read_text())
            write_json(folder / "config_v4_style.json", v4_style_config(saved))
            generator = torch.Generator().manual_seed(2000 + index)
            ids = torch.randint(0, config.vocab_size, (RANDOM_SEQ_LEN,), generator=generator)
            reloaded = load_fp32(folder, args.device)
            logits = logits_of(reloaded, ids, args.device)[0].contiguous()
            save_file({"input_ids": ids.to(torch.int64), "logits": logits}, str(folder / "logits.safetensors"),
                      metadata={"compute": "transformers FP32 eager, TF32 off"})
            sizes = {p.name: p.stat().st_size for p in sorted(folder.iterdir())}
            write_json(folder / "fixture.json", {
                "name": name, "model_class": model_cls, "weights_dtype": dtype_name,
                "init": "seeded normal: weights and biases N(0, 0.1^2), norm weights 1 + N(0, 0.1^2)",
                "torch_seed": 1000 + index, "ids_seed": 2000 + index,
                "compute": f"reloaded with dtype float32, eager attention, TF32 off, device {args.device}",
                "input_ids": ids.tolist(), "logits_std": float(logits.std()),
                "argmax": logits.argmax(-1).tolist(), "versions": versions(),
                "config_v4_style.json": "hand-derived from config.json: rope_theta/rope_scaling at top level, "
                                        "torch_dtype, as transformers 4.x checkpoints have them",
            })
            print(f"{name}: logits std {float(logits.std()):.3f}; files {sizes}", flush=True)
        except Exception:
            traceback.print_exc()
            failures.append(name)
    if failures:
        raise RuntimeError(f"random fixtures failed: {failures}")


# ------------------------------------------------------------------------------------------ no torch


def read_safetensors(path: Path) -> dict:
    """Minimal reader (F32, BF16, F16, I64 only): 8-byte little-endian header length, JSON header,
    then raw little-endian tensors at the header's data_offsets. BF16 is widened to float32 exactly."""
    import numpy as np

    blob = path.read_bytes()
    size = int.from_bytes(blob[:8], "little")
    header = json.loads(blob[8 : 8 + size])
    data = blob[8 + size :]
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        begin, end = info["data_offsets"]
        chunk = data[begin:end]
        if info["dtype"] == "BF16":
            bits = np.frombuffer(chunk, dtype="<u2").astype(np.uint32) << 16
            array = bits.view(np.float32)
        else:
            array = np.frombuffer(chunk, dtype={"F32": "<f4", "F16": "<f2", "I64": "<i8"}[info["dtype"]])
        out[name] = array.reshape(info["shape"])
    return out


def numpy_forward(folder: Path, ids) -> "np.ndarray":
    """An independent float64 re-derivation of the decoder in numpy, from config.json and the
    safetensors file alone: it pins down the conventions the fixtures encode (see docs)."""
    import numpy as np

    config = json.loads((folder / "config.json").read_text())
    w = {key: value.astype(np.float64) for key, value in read_safetensors(folder / "model.safetensors").items()}
    hidden, heads, kv_heads = config["hidden_size"], config["num_attention_heads"], config["num_key_value_heads"]
    head_dim = config.get("head_dim") or hidden // heads
    eps = config["rms_norm_eps"]
    rope = config.get("rope_parameters") or {"rope_theta": config.get("rope_theta", 10000.0),
                                             **(config.get("rope_scaling") or {})}
    inv_freq = 1.0 / rope["rope_theta"] ** (np.arange(0, head_dim, 2, dtype=np.float64) / head_dim)
    if rope.get("rope_type") == "llama3":
        factor, low, high = rope["factor"], rope["low_freq_factor"], rope["high_freq_factor"]
        original = rope["original_max_position_embeddings"]
        wavelen = 2 * np.pi / inv_freq
        smooth = (original / wavelen - low) / (high - low)
        scaled = np.where(wavelen > original / low, inv_freq / factor, inv_freq)
        middle = (wavelen >= original / high) & (wavelen <= original / low)
        inv_freq = np.where(middle, (1 - smooth) * inv_freq / factor + smooth * inv_freq, scaled)
    seq = len(ids)
    angles = np.arange(seq)[:, None] * inv_freq[None, :]
    cos, sin = np.cos(angles), np.sin(angles)

    def rms(x, weight):
        return x / np.sqrt((x * x).mean(-1, keepdims=True) + eps) * weight

    def rotate(x):  # x [heads, seq, head_dim]; pairs (i, i + head_dim/2)
        half = head_dim // 2
        a, b = x[..., :half], x[..., half:]
        return np.concatenate([a * cos - b * sin, b * cos + a * sin], axis=-1)

    x = w["model.embed_tokens.weight"][np.asarray(ids)]
    mask = np.triu(np.full((seq, seq), -np.inf), 1)
    for layer in range(config["num_hidden_layers"]):
        p = f"model.layers.{layer}."
        h = rms(x, w[p + "input_layernorm.weight"])
        proj = {}
        for name in ("q", "k", "v"):
            proj[name] = h @ w[p + f"self_attn.{name}_proj.weight"].T + w.get(p + f"self_attn.{name}_proj.bias", 0.0)
        q = proj["q"].reshape(seq, heads, head_dim).transpose(1, 0, 2)
        k = proj["k"].reshape(seq, kv_heads, head_dim).transpose(1, 0, 2)
        v = proj["v"].reshape(seq, kv_heads, head_dim).transpose(1, 0, 2)
        if p + "self_attn.q_norm.weight" in w:  # Qwen3: per-head RMSNorm before rotary
            q = rms(q, w[p + "self_attn.q_norm.weight"])
            k = rms(k, w[p + "self_attn.k_norm.weight"])
        q, k = rotate(q), rotate(k)
        group = heads // kv_heads
        k, v = np.repeat(k, group, axis=0), np.repeat(v, group, axis=0)
        scores = q @ k.transpose(0, 2, 1) / np.sqrt(head_dim) + mask
        scores = np.exp(scores - scores.max(-1, keepdims=True))
        attn = (scores / scores.sum(-1, keepdims=True)) @ v
        x = x + attn.transpose(1, 0, 2).reshape(seq, heads * head_dim) @ w[p + "self_attn.o_proj.weight"].T
        h = rms(x, w[p + "post_attention_layernorm.weight"])
        gate = h @ w[p + "mlp.gate_proj.weight"].T
        up = h @ w[p + "mlp.up_proj.weight"].T
        x = x + (gate / (1 + np.exp(-gate)) * up) @ w[p + "mlp.down_proj.weight"].T
    x = rms(x, w["model.norm.weight"])
    head = w.get("lm_head.weight", w["model.embed_tokens.weight"])
    return x @ head.T


def part_check(args) -> None:
    """Recompute every random fixture's logits with numpy_forward; fail past 1e-4 absolute."""
    import numpy as np

    worst = 0.0
    for name in random_specs():
        folder = args.out / name
        stored = read_safetensors(folder / "logits.safetensors")
        mine = numpy_forward(folder, stored["input_ids"].tolist())
        diff = float(np.abs(mine - stored["logits"]).max())
        worst = max(worst, diff)
        print(f"{name}: numpy float64 vs transformers FP32 logits, max |diff| {diff:.2e}", flush=True)
        if diff > 1e-4:
            raise RuntimeError(f"{name}: numpy re-derivation differs by {diff}")
    for path in sorted(args.out.glob("wp-tiny-logits-len*.safetensors")):
        stored = read_safetensors(path)
        mine = numpy_forward(args.model, stored["input_ids"].tolist())
        diff = float(np.abs(mine - stored["logits"]).max())
        worst = max(worst, diff)
        print(f"{path.name}: numpy float64 vs transformers FP32 logits, max |diff| {diff:.2e}", flush=True)
        if diff > 1e-4:
            raise RuntimeError(f"{path.name}: numpy re-derivation differs by {diff}")
    print(f"check passed (worst {worst:.2e})", flush=True)




def part_tokenizer(args) -> None:
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(args.model / "tokenizer.json"))
    text = args.test_text.read_text(encoding="utf-8")
    cases = []
    for probe in TOKENIZER_PROBES + [text[:2000]]:
        encoding = tokenizer.encode(probe)
        cases.append({"text": probe, "ids": encoding.ids, "tokens": encoding.tokens,
                      "decoded": tokenizer.decode(encoding.ids, skip_special_tokens=False)})
    write_json(args.out / "wp-tiny-tokenizer.json", {
        "tokenizer": "models/wp-tiny/tokenizer.json", "library": "tokenizers (Tokenizer.encode, no post-processor)",
        "note": "'<|endoftext|>' in the text is matched as the special token (id 0) by tokenizers; decode keeps it",
        "versions": versions(), "vocab_size": tokenizer.get_vocab_size(), "cases": cases,
    })


PARTS = {"tokenizer": part_tokenizer, "ppl": part_ppl, "logits": part_logits, "random": part_random,
         "check": part_check}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, default=REPO / "models" / "wp-tiny")
    parser.add_argument("--test-text", type=Path, default=REPO / "data" / "wp-test.txt")
    parser.add_argument("--out", type=Path, default=REPO / "tests" / "fixtures" / "model")
    parser.add_argument("--device", default="cpu", help="cpu (default) or cuda; TF32 is off either way")
    parser.add_argument("--threads", type=int, default=0, help="CPU threads (0: torch's default)")
    parser.add_argument("--only", default=",".join(PARTS), help=f"comma-separated subset of {list(PARTS)}")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    print(f"versions {versions()}", flush=True)
    parts = [p for p in args.only.split(",") if p]
    if any(p not in ("tokenizer", "check") for p in parts):
        exact_fp32(args.threads)
    failed = []
    for part in parts:
        try:
            PARTS[part](args)
        except Exception:
            traceback.print_exc()
            failed.append(part)
    if failed:
        print(f"FAILED parts: {failed}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
