#!/usr/bin/env python3
"""Writes Fixtures/largefov_reference.json: DeepLab-LargeFOV built in PyTorch from a
torchvision-VGG-16-shaped state dict, decimated as DeepLab did, run on one fixed image.
LargeFOVReferenceTests.swift rebuilds the same weights and image from the same formulas,
runs aepsl's `largefov` Classifier and Segmenter, and compares.

Needs torch and numpy only when the fixture is remade (make test does not run this):

    python3 -m venv /work/venv-torch && /work/venv-torch/bin/pip install torch numpy
    /work/venv-torch/bin/python Tests/EngineTests/make_largefov_reference.py

The weights (138 M numbers; VGG-16 is 528 MB) are never stored: element i of tensor k of
the list below is float32(scale_k * (2 u - 1)), u = (splitmix64((k << 40) | i) >> 11) / 2^53,
with scale_k = sqrt(6 / fan_in) for weights (He's standard deviation for a uniform
distribution) and 0.05 for biases: integer arithmetic, so both sides get the same bits.
(Smooth formulas such as sin(a i) make every filter sum to about zero, and the signal dies
within a few layers.) The image [1, 3, 136, 168] holds float32(1.5 sin(0.05 i + 0.7 cos(0.0011 i))).
torch runs in float64 on those float32 values.
The fixture stores the outputs' summaries and small maps in full (about 60 KB).
"""
import json
import math
import os

import numpy as np
import torch
import torch.nn.functional as F

HEIGHT, WIDTH, CLASSES = 136, 168, 3

# torchvision's VGG-16 state dict, in its order, then the heads aepsl adds.
CONVS = [(0, 3, 64), (2, 64, 64), (5, 64, 128), (7, 128, 128), (10, 128, 256), (12, 256, 256), (14, 256, 256),
         (17, 256, 512), (19, 512, 512), (21, 512, 512), (24, 512, 512), (26, 512, 512), (28, 512, 512)]
TENSORS = []
for index, cin, cout in CONVS:
    TENSORS += [(f"features.{index}.weight", [cout, cin, 3, 3]), (f"features.{index}.bias", [cout])]
TENSORS += [("classifier.0.weight", [4096, 25088]), ("classifier.0.bias", [4096]),
            ("classifier.3.weight", [4096, 4096]), ("classifier.3.bias", [4096]),
            ("classifier.6.weight", [1000, 4096]), ("classifier.6.bias", [1000]),
            ("cam.weight", [CLASSES, 1024]), ("cam.bias", [CLASSES]),
            ("fc8.weight", [CLASSES + 1, 1024, 1, 1]), ("fc8.bias", [CLASSES + 1]),
            ("cls.weight", [CLASSES, 1024]), ("cls.bias", [CLASSES])]


MASK = np.uint64(0xFFFFFFFFFFFFFFFF)


def splitmix64(x):
    with np.errstate(over="ignore"):
        z = x + np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))


def formula(k, shape):
    n = math.prod(shape)
    scale = math.sqrt(6 / (n / shape[0])) if len(shape) > 1 else 0.05
    out = np.empty(n, dtype=np.float32)
    for start in range(0, n, 1 << 24):
        i = np.arange(start, min(n, start + (1 << 24)), dtype=np.uint64)
        u = (splitmix64((np.uint64(k) << np.uint64(40)) | i) >> np.uint64(11)).astype(np.float64) * 2.0**-53
        out[start:start + len(i)] = (scale * (2 * u - 1)).astype(np.float32)
    return torch.from_numpy(out.astype(np.float64)).reshape(shape)


def image():
    i = np.arange(3 * HEIGHT * WIDTH, dtype=np.float64)
    v = 1.5 * np.sin(0.05 * i + 0.7 * np.cos(0.0011 * i))
    return torch.from_numpy(v.astype(np.float32).astype(np.float64)).reshape(1, 3, HEIGHT, WIDTH)


def largefov_fc7(w, x):
    """DeepLab-LargeFOV up to fc7 (after its ReLU): 3x3 poolings with stride 2, 2, 2, 1, 1,
    conv5 dilated by 2, fc6 3x3 dilated by 12 and fc7 1x1, both decimated from VGG-16."""
    pool_stride = {2: 2, 7: 2, 14: 2, 21: 1, 28: 1}  # after conv1_2, conv2_2, conv3_3, conv4_3, conv5_3
    for index, _, _ in CONVS:
        dilation = 2 if index >= 24 else 1
        x = F.relu(F.conv2d(x, w[f"features.{index}.weight"], w[f"features.{index}.bias"], padding=dilation, dilation=dilation))
        if index in pool_stride:
            x = F.max_pool2d(x, 3, stride=pool_stride[index], padding=1, ceil_mode=True)
    fc6 = w["classifier.0.weight"].reshape(4096, 512, 7, 7)[::4, :, ::3, ::3]
    x = F.relu(F.conv2d(x, fc6, w["classifier.0.bias"][::4], padding=12, dilation=12))
    fc7 = w["classifier.3.weight"][::4, ::4].reshape(1024, 1024, 1, 1)
    return F.relu(F.conv2d(x, fc7, w["classifier.3.bias"][::4]))


def values(t):
    return [float(f"{v:.9g}") for v in t.reshape(-1).tolist()]


def main():
    torch.set_default_dtype(torch.float64)
    w = {name: formula(k, shape) for k, (name, shape) in enumerate(TENSORS)}
    f = largefov_fc7(w, image())
    pooled = f.mean(dim=(2, 3))
    cams = F.relu(torch.einsum("ck,nkhw->nchw", w["cam.weight"], f))
    cam_logits = pooled @ w["cam.weight"].T + w["cam.bias"]
    scores = F.conv2d(f, w["fc8.weight"], w["fc8.bias"])
    seg_logits = pooled @ w["cls.weight"].T + w["cls.bias"]
    flat = f.reshape(-1)
    sample_indices = [(7919 * t + 13) % flat.numel() for t in range(256)]
    out = {
        "generator": "Tests/EngineTests/make_largefov_reference.py",
        "torch": torch.__version__,
        "image": [1, 3, HEIGHT, WIDTH],
        "classes": CLASSES,
        "fc7_shape": list(f.shape),
        "fc7_sample_indices": sample_indices,
        "fc7_samples": values(flat[sample_indices]),
        "fc7_channel_sums": values(f.sum(dim=(0, 2, 3))),
        "fc7_positive_fraction": float((f > 0).double().mean()),
        "cams": values(cams),
        "cam_logits": values(cam_logits),
        "scores": values(scores),
        "seg_logits": values(seg_logits),
    }
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "Fixtures", "largefov_reference.json")
    with open(path + ".tmp", "w") as fh:
        json.dump(out, fh, separators=(",", ":"))
    os.replace(path + ".tmp", path)
    print(f"wrote {path}: fc7 {list(f.shape)}, {out['fc7_positive_fraction']:.3f} of fc7 positive, "
          f"max CAM {cams.max().item():.4g}, scores in [{scores.min().item():.4g}, {scores.max().item():.4g}]")


if __name__ == "__main__":
    main()
