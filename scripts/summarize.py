#!/usr/bin/env python3
"""Prints one table from the JSON reports `microscale eval --json` wrote for the demo.

usage: summarize.py OUT_DIR NAME...   (reads OUT_DIR/NAME.json for each NAME, in order)
"""
import json
import sys
from pathlib import Path


def recipe(model_dir: Path) -> str:
    """'mr-gptq nvfp4 g16 mse had16' from the quantization_config microscale wrote, else the dtype."""
    config = json.loads((model_dir / "config.json").read_text())
    qc = config.get("quantization_config")
    if not qc:
        return config.get("torch_dtype") or config.get("dtype") or "float"
    ours = qc.get("microscale", {})
    parts = [ours.get("method", "?"), ours.get("format", qc.get("format", "?"))]
    if ours.get("format") == "int4":
        parts.append(f"g{ours.get('group_size')}")
    parts.append(ours.get("scale_search", "absmax"))
    if "rotation" in ours:
        parts.append(f"had{ours['rotation']['block_size']}")
    if ours.get("qep"):
        parts.append("+qep")
    return " ".join(parts)


def main() -> int:
    out = Path(sys.argv[1])
    rows = []
    first = json.loads((out / f"{sys.argv[2]}.json").read_text())
    if first.get("reference"):
        # The unquantized model's row, from the reference figures of the first report (same windows).
        ref = first["reference"]
        rows.append(("original", recipe(Path(ref["dir"])), f"{first['perplexity']['reference_ppl']:.3f}",
                     "0", "0", "100.00%", f"{ref['weight_bytes'] / 1e6:.2f} MB"))
    for name in sys.argv[2:]:
        report = json.loads((out / f"{name}.json").read_text())
        ppl = report["perplexity"]
        kl = report.get("kl_divergence") or {}
        top1 = report.get("top1_agreement")
        rows.append((
            name,
            recipe(Path(report["model"]["dir"])),
            f"{ppl['ppl']:.3f}",
            f"{kl['mean']:.4f}" if kl else "-",
            f"{kl['p99']:.4f}" if kl else "-",
            f"{100 * top1:.2f}%" if top1 is not None else "-",
            f"{report['model']['weight_bytes'] / 1e6:.2f} MB",
        ))
    header = ("model", "recipe", "perplexity", "KL mean", "KL p99", "top-1", "weights")
    widths = [max(len(str(r[i])) for r in rows + [header]) for i in range(len(header))]
    line = lambda r: "  ".join(str(c).ljust(w) if i < 2 else str(c).rjust(w) for i, (c, w) in enumerate(zip(r, widths)))
    print(line(header))
    print("  ".join("-" * w for w in widths))
    for r in rows:
        print(line(r))
    print(f"\ntext: {first['text']['path']}, {first['perplexity']['windows']} windows of "
          f"{first['perplexity']['seqlen']} tokens; KL and top-1 against the unquantized model")
    return 0


if __name__ == "__main__":
    sys.exit(main())
