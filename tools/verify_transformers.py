#!/usr/bin/env python3
"""Does transformers (with the compressed-tensors package) read microscale's exports as we meant?

Runs on the GPU machine (tools/verify_transformers.py DIR...): each DIR is a checkpoint written by
`microscale quantize` (compressed-tensors layout). transformers loads it, decompressing the quantized
linears to dense FP32 (CompressedTensorsConfig(run_compressed=False)); the script then computes the
GPTQ-style perplexity of data/wp-test.txt (windows of 512, the same protocol as the fixtures) and
compares the decompressed weights with the dequantized ones microscale wrote as BF16 fake-quant
next to it, when DIR-dequantized exists. Results go to a JSON file (--json) for docs/benchmarks.md.
"""
from __future__ import annotations

import argparse
import json
import sys
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from make_model_fixtures import exact_fp32, test_ids, versions, window_nlls  # noqa: E402

REPO = Path(__file__).resolve().parent.parent


def load_compressed(folder: Path, device: str):
    import torch
    from transformers import AutoModelForCausalLM
    from transformers.utils.quantization_config import CompressedTensorsConfig

    model = AutoModelForCausalLM.from_pretrained(
        str(folder), dtype=torch.float32, attn_implementation="eager",
        quantization_config=CompressedTensorsConfig(run_compressed=False))
    model = model.to(device).float().eval()
    # compressed-tensors' FP4 decompression leaves BF16 weights that .float() does not reach (they
    # are re-materialised at forward); feed every linear its weight as FP32 (BF16 -> FP32 is exact).
    for module in model.modules():
        if isinstance(module, torch.nn.Linear):
            module.forward = (lambda m: (lambda x: torch.nn.functional.linear(
                x, m.weight.float(), None if m.bias is None else m.bias.float())))(module)
    return model


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dirs", nargs="+", type=Path)
    parser.add_argument("--test-text", type=Path, default=REPO / "data" / "wp-test.txt")
    parser.add_argument("--seqlen", type=int, default=512)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--json", type=Path, required=True)
    args = parser.parse_args()
    exact_fp32(0)
    import math
    import torch

    results = {"versions": versions(), "seqlen": args.seqlen, "checkpoints": {}}
    try:
        import compressed_tensors
        results["versions"]["compressed_tensors"] = compressed_tensors.__version__
    except Exception as e:  # reported, the loads below will fail with the reason
        print("compressed_tensors import failed:", e)
    status = 0
    for folder in args.dirs:
        entry = {}
        try:
            model = load_compressed(folder, args.device)
            ids = test_ids(folder, args.test_text)
            nlls = window_nlls(model, ids, args.seqlen, args.device)
            entry["ppl"] = math.exp(sum(nlls) / len(nlls))
            entry["windows"] = len(nlls)
            entry["dtypes"] = sorted({str(p.dtype) for p in model.parameters()})
            # One decompressed weight, to compare bit for bit with microscale's own decode.
            name = "model.layers.0.self_attn.q_proj.weight"
            weight = dict(model.named_parameters()).get(name)
            if weight is not None:
                entry["q_proj_0_sample"] = weight.detach().float().cpu().flatten()[:64].tolist()
                entry["q_proj_0_sum"] = float(weight.detach().double().sum())
            print(f"{folder.name}: ppl {entry['ppl']:.5f} over {len(nlls)} windows", flush=True)
            del model
            torch.cuda.empty_cache()
        except Exception:
            entry["error"] = traceback.format_exc(limit=6)
            print(f"{folder.name}: FAILED\n{entry['error']}", flush=True)
            status = 1
        results["checkpoints"][folder.name] = entry
    args.json.write_text(json.dumps(results, indent=1) + "\n")
    return status


if __name__ == "__main__":
    sys.exit(main())
