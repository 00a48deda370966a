"""Interop fixture for SafetensorsTests (run by the tests; nothing it writes is committed).

    make_safetensors_fixture.py write OUT.safetensors   # write the fixture with the safetensors package
    make_safetensors_fixture.py read IN.safetensors     # print a file's tensors and metadata as JSON

`write` uses safetensors.torch when torch is importable (so BF16 is covered) and
safetensors.numpy otherwise; it prints {"bf16": true|false}. The values are chosen to be
exact in their dtype, and SafetensorsTests.swift lists the same values.
"""
import json
import sys

import numpy as np

TENSORS = {
    "features.0.weight": ("float32", [2, 3], [-1.5, -0.5, 0.0, 0.25, 1e-3, 3.0e5]),
    "half": ("float16", [5], [1.0, -2.5, 2.0 ** -14, 2.0 ** -24, 65504.0]),
    "double": ("float64", [2, 1], [0.1, -1e10]),
    "scalar": ("float32", [], [7.0]),
    "empty": ("float32", [0], []),
}
BF16 = ("bf16", [3], [1.0, -0.5, 3.140625])
METADATA = {"format": "pt", "source": "make_safetensors_fixture.py"}


def write(path):
    try:
        import torch
        from safetensors.torch import save_file
    except ImportError:
        from safetensors.numpy import save_file

        arrays = {k: np.array(v, dtype=d).reshape(s) for k, (d, s, v) in TENSORS.items()}
        save_file(arrays, path, metadata=METADATA)
        return False
    dtypes = {"float32": torch.float32, "float16": torch.float16, "float64": torch.float64}
    tensors = {k: torch.tensor(v, dtype=dtypes[d]).reshape(s) for k, (d, s, v) in TENSORS.items()}
    tensors[BF16[0]] = torch.tensor(BF16[2], dtype=torch.bfloat16).reshape(BF16[1])
    save_file(tensors, path, metadata=METADATA)
    return True


def read(path):
    from safetensors import safe_open

    out = {}
    with safe_open(path, framework="numpy") as f:
        out["__metadata__"] = f.metadata() or {}
        for key in f.keys():
            a = f.get_tensor(key)
            out[key] = {"dtype": str(a.dtype), "shape": list(a.shape),
                        "values": [float(x) for x in a.reshape(-1)]}
    return out


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] not in ("write", "read"):
        sys.exit(__doc__)
    if sys.argv[1] == "write":
        print(json.dumps({"bf16": write(sys.argv[2])}))
    else:
        print(json.dumps(read(sys.argv[2])))
