#!/usr/bin/env python3
"""Writes the safetensors fixtures of tests/io with the reference `safetensors` library.

    pip install safetensors numpy
    python3 tools/make_safetensors_fixture.py tests/fixtures/io

Outputs (all tiny, committed):
  reference.safetensors     one tensor per dtype microscale reads (F32, F16, BF16, F8_E4M3, U8, I8,
                            I32, I64), plus a scalar and an empty tensor, and one metadata entry.
  sharded/                  two shards and model.safetensors.index.json, as transformers saves them.
The values are written from their bit patterns (BF16 and F8_E4M3 have no numpy dtype); tests/io
asserts the decoded values listed in the comments below.
"""
import json
import pathlib
import sys

import numpy as np
from safetensors import TensorSpec, serialize_file


def spec(array, dtype_name, keep):
    """A TensorSpec over `array`'s little-endian bytes; `keep` holds the buffers alive."""
    assert array.flags.c_contiguous and array.dtype.byteorder in ("<", "=", "|")
    keep.append(array)
    return TensorSpec(dtype=dtype_name, shape=list(array.shape), data_ptr=array.ctypes.data,
                      data_len=array.nbytes)


def bf16_bits(values):
    """Exact BF16 values: the top half of their float32 bits (asserted lossless)."""
    bits = np.asarray(values, dtype=np.float32).view(np.uint32)
    assert np.all(bits & 0xFFFF == 0), "not exactly representable in BF16"
    return (bits >> 16).astype(np.uint16)


def write(path, tensors, metadata):
    keep = []
    specs = {name: spec(array, dtype_name, keep) for name, (dtype_name, array) in tensors.items()}
    serialize_file(specs, str(path), metadata=metadata)
    path.chmod(0o644)


def main(out_dir):
    out = pathlib.Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tensors = {
        # F32 [2, 3]: 0, 1, -2.5, 3.25, 1e-3, -65536
        "f32": ("float32", np.array([[0.0, 1.0, -2.5], [3.25, 1e-3, -65536.0]], dtype=np.float32)),
        # F16 [4]: 1, -0.5, 65504 (max), 2^-14 (min normal)
        "f16": ("float16", np.array([1.0, -0.5, 65504.0, 2.0**-14], dtype=np.float16)),
        # BF16 [2, 2]: 1, -2, 0.15625, 1.7578125 * 2^127 (0x7F61)
        "bf16": ("bfloat16", np.array([[0x3F80, 0xC000], [0x3E20, 0x7F61]], dtype=np.uint16)),
        # F8_E4M3 (fn) [5]: 0, 1, -448, 2^-6 (min normal), 2^-9 (min subnormal)
        "f8": ("float8_e4m3fn", np.array([0x00, 0x38, 0xFE, 0x08, 0x01], dtype=np.uint8)),
        "u8": ("uint8", np.array([0, 7, 255], dtype=np.uint8)),
        "i8": ("int8", np.array([-128, 0, 127], dtype=np.int8)),
        "i32": ("int32", np.array([-2147483648, 123456], dtype=np.int32)),
        "i64": ("int64", np.array([-1, 2**40], dtype=np.int64)),
        # a 0-d tensor (one element) and an empty one (zero bytes)
        "scalar": ("float32", np.array(42.0, dtype=np.float32)),
        "empty": ("float32", np.zeros((0, 4), dtype=np.float32)),
    }
    assert (bf16_bits([1.0, -2.0, 0.15625]) == [0x3F80, 0xC000, 0x3E20]).all()
    write(out / "reference.safetensors", tensors, {"format": "pt"})

    sharded = out / "sharded"
    sharded.mkdir(exist_ok=True)
    shards = {
        "model-00001-of-00002.safetensors": {
            # F32 [2, 2]: 1, 2, 3, 4
            "model.embed_tokens.weight": ("float32", np.array([[1, 2], [3, 4]], dtype=np.float32)),
            # BF16 [2]: 0.5, -8
            "model.layers.0.mlp.down_proj.weight": ("bfloat16", bf16_bits([0.5, -8.0])),
        },
        "model-00002-of-00002.safetensors": {
            # F16 [1, 2]: 0.25, -3
            "lm_head.weight": ("float16", np.array([[0.25, -3.0]], dtype=np.float16)),
        },
    }
    weight_map = {}
    total = 0
    for shard_name, shard_tensors in shards.items():
        write(sharded / shard_name, shard_tensors, {"format": "pt"})
        for name, (_, array) in shard_tensors.items():
            weight_map[name] = shard_name
            total += array.nbytes
    index = {"metadata": {"total_size": total}, "weight_map": dict(sorted(weight_map.items()))}
    (sharded / "model.safetensors.index.json").write_text(json.dumps(index, indent=2) + "\n")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "tests/fixtures/io")
