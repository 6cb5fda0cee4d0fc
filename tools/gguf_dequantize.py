#!/usr/bin/env python3
"""Dequantize every tensor of a GGUF file with the reference Python package `gguf` (gguf-py, the
llama.cpp project's reader), for tests that hold microscale's GGUF export against it.

    python3 tools/gguf_dequantize.py MODEL.gguf OUT_DIR

writes OUT_DIR/<i>.f32 (raw little-endian float32, row-major, ne[0] innermost) for the i-th tensor in
file order, and OUT_DIR/index.json: [{"name", "type", "ne", "file"}, ...].
Exit status 3 means the `gguf` package (or numpy) is not importable; the message says why.
"""
import json
import os
import sys


def main() -> int:
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    try:
        import numpy as np
        from gguf import GGUFReader
        from gguf.quants import dequantize
    except ImportError as e:  # the caller skips with this reason
        print(f"gguf_dequantize: cannot import the gguf package: {e}", file=sys.stderr)
        return 3
    path, out_dir = sys.argv[1], sys.argv[2]
    os.makedirs(out_dir, exist_ok=True)
    reader = GGUFReader(path)
    index = []
    for i, tensor in enumerate(reader.tensors):
        values = dequantize(tensor.data, tensor.tensor_type).astype(np.float32, copy=False)
        file_name = f"{i}.f32"
        np.ascontiguousarray(values).astype("<f4").tofile(os.path.join(out_dir, file_name))
        index.append({"name": tensor.name, "type": tensor.tensor_type.name,
                      "ne": [int(n) for n in tensor.shape], "file": file_name})
    with open(os.path.join(out_dir, "index.json"), "w") as f:
        json.dump(index, f)
    return 0


if __name__ == "__main__":
    sys.exit(main())
