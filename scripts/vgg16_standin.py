#!/usr/bin/env python3
"""Writes a stand-in for torchvision's VGG-16 state dict as .safetensors: the same tensor
names and shapes (features.0 ... features.28, classifier.0/3/6), He-initialised values from a
fixed seed, zero biases. For timing the VOC recipe where ImageNet weights cannot be
downloaded (BENCHMARKS.md: VOC-scale cost): it costs what the real weights cost, and learns
nothing ImageNet would have taught.

    python3 scripts/vgg16_standin.py OUT.safetensors        # 553 MB; needs numpy only
"""
import json
import os
import struct
import sys

import numpy as np

LAYERS = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"]


def tensors():
    rng = np.random.default_rng(0)
    index, inputs = 0, 3
    for width in LAYERS:
        if width == "M":
            index += 1
            continue
        fan_in = inputs * 9
        yield f"features.{index}.weight", rng.standard_normal((width, inputs, 3, 3), dtype=np.float32) * np.float32(np.sqrt(2 / fan_in))
        yield f"features.{index}.bias", np.zeros(width, np.float32)
        index, inputs = index + 2, width
    for index, (outputs, fan_in) in {0: (4096, 512 * 7 * 7), 3: (4096, 4096), 6: (1000, 4096)}.items():
        yield f"classifier.{index}.weight", rng.standard_normal((outputs, fan_in), dtype=np.float32) * np.float32(np.sqrt(2 / fan_in))
        yield f"classifier.{index}.bias", np.zeros(outputs, np.float32)


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    arrays = dict(tensors())
    header, offset = {}, 0
    for name, array in arrays.items():
        header[name] = {"dtype": "F32", "shape": list(array.shape), "data_offsets": [offset, offset + array.nbytes]}
        offset += array.nbytes
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    partial = sys.argv[1] + ".partial"
    with open(partial, "wb") as out:
        out.write(struct.pack("<Q", len(text)))
        out.write(text)
        for array in arrays.values():
            out.write(np.ascontiguousarray(array, dtype="<f4").tobytes())
    os.replace(partial, sys.argv[1])


if __name__ == "__main__":
    main()
