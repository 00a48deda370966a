#!/usr/bin/env python3
"""Writes Fixtures/torch_reference.json: PyTorch forward values and gradients that
TorchReferenceTests.swift compares the engine against.

Run from anywhere with the project's PyTorch venv:

    /opt/aepsl-torch/bin/python Tests/EngineTests/make_torch_reference.py

Inputs come from fixed formulas (no random state), rounded to 3 decimals so that the JSON
holds them exactly enough; torch computes in float64. Every case stores its inputs, its
configuration, the forward output "y", and the gradients of the scalar sum(proj * y) (or of
the loss itself, for losses) with respect to every input and parameter ("grad_<name>").
"""
import json
import math
import os

import torch
import torch.nn.functional as F

torch.set_default_dtype(torch.float64)


def wave(shape, a=0.7, b=0.3, scale=1.0):
    """A deterministic, irregular-looking tensor: scale * sin(a i + b cos(i)), rounded."""
    n = math.prod(shape)
    v = [round(scale * math.sin(a * i + b * math.cos(1.3 * i)), 3) for i in range(n)]
    return torch.tensor(v).reshape(shape)


def distinct(shape, step=0.01):
    """Distinct values (no ties for max pooling): a fixed permutation of a grid."""
    n = math.prod(shape)
    mult = 7 if n % 7 else 11
    v = [round(((i * mult) % n - (n - 1) / 2) * step, 3) for i in range(n)]
    return torch.tensor(v).reshape(shape)


def entry(t):
    t = t.detach()
    return {"shape": list(t.shape), "values": [float(f"{x:.8g}") for x in t.reshape(-1).tolist()]}


def layer_case(config, inputs, fn, proj_seed):
    """Forward fn(**inputs), then gradients of sum(proj * y)."""
    leaves = {k: v.clone().requires_grad_(True) for k, v in inputs.items()}
    y = fn(**leaves)
    proj = wave(list(y.shape), a=0.37 + 0.01 * proj_seed, b=0.9)
    (y * proj).sum().backward()
    out = {"config": config, "tensors": {k: entry(v) for k, v in inputs.items()}}
    out["tensors"]["proj"] = entry(proj)
    out["tensors"]["y"] = entry(y)
    for k, v in leaves.items():
        out["tensors"][f"grad_{k}"] = entry(v.grad)
    return out


def loss_case(config, inputs, fn, differentiate=("logits",)):
    leaves = {k: (v.clone().requires_grad_(True) if k in differentiate else v) for k, v in inputs.items()}
    loss = fn(**leaves)
    loss.backward()
    out = {"config": config, "tensors": {k: entry(v) for k, v in inputs.items()}}
    out["tensors"]["loss"] = entry(loss.reshape(1))
    for k in differentiate:
        out["tensors"][f"grad_{k}"] = entry(leaves[k].grad)
    return out


cases = {}

# Convolutions: dilated + strided + padded with bias; a plain 3x3 with fused ReLU.
for name, cfg, xs, ws in [
    ("conv_dilated_strided", dict(stride=2, padding=2, dilation=2, bias=1, relu=0), [1, 3, 7, 7], [4, 3, 3, 3]),
    ("conv_dilated", dict(stride=1, padding=2, dilation=2, bias=1, relu=0), [1, 2, 6, 6], [3, 2, 3, 3]),
    ("conv_relu", dict(stride=1, padding=1, dilation=1, bias=1, relu=1), [1, 3, 5, 5], [4, 3, 3, 3]),
]:
    inputs = {"x": wave(xs), "weight": wave(ws, a=1.1, b=0.5, scale=0.4), "bias": wave([ws[0]], a=2.3, scale=0.2)}

    def conv(x, weight, bias, cfg=cfg):
        y = F.conv2d(x, weight, bias, stride=cfg["stride"], padding=cfg["padding"], dilation=cfg["dilation"])
        return F.relu(y) if cfg["relu"] else y

    cases[name] = layer_case(cfg, inputs, conv, proj_seed=len(cases))

# Max pooling as DeepLab's pool1..3 (kernel 3, stride 2, pad 1, ceil mode), and a case where
# the ceil-mode rule drops a window that would start in the padding.
for name, cfg, xs in [
    ("maxpool_k3s2p1_ceil", dict(kernel=3, stride=2, padding=1, ceil=1), [1, 1, 8, 8]),
    ("maxpool_k3s2p1_ceil_odd", dict(kernel=3, stride=2, padding=1, ceil=1), [1, 1, 7, 7]),
    ("maxpool_k3s3p1_ceil_drop", dict(kernel=3, stride=3, padding=1, ceil=1), [1, 1, 5, 5]),
]:
    def pool(x, cfg=cfg):
        return F.max_pool2d(x, cfg["kernel"], cfg["stride"], cfg["padding"], ceil_mode=bool(cfg["ceil"]))

    cases[name] = layer_case(cfg, {"x": distinct(xs)}, pool, proj_seed=len(cases))

# Batch norm in training mode (batch statistics), plus the running statistics after one step.
bn_x = wave([2, 3, 3, 3], scale=1.5) + 0.2
bn_in = {"x": bn_x, "weight": wave([3], a=0.9, scale=0.5) + 1, "bias": wave([3], a=1.7, scale=0.3)}


def bn(x, weight, bias):
    return F.batch_norm(x, None, None, weight, bias, training=True, momentum=0.1, eps=1e-5)


cases["batchnorm_training"] = layer_case(dict(eps=1e-5, momentum=0.1), bn_in, bn, proj_seed=len(cases))
rm, rv = torch.zeros(3), torch.ones(3)
F.batch_norm(bn_x, rm, rv, bn_in["weight"], bn_in["bias"], training=True, momentum=0.1, eps=1e-5)
cases["batchnorm_training"]["tensors"]["running_mean"] = entry(rm)
cases["batchnorm_training"]["tensors"]["running_var"] = entry(rv)

cases["linear"] = layer_case({}, {"x": wave([3, 5]), "weight": wave([4, 5], a=0.5, scale=0.6),
                                  "bias": wave([4], a=1.9, scale=0.3)},
                             lambda x, weight, bias: F.linear(x, weight, bias), proj_seed=len(cases))

for name, cfg, xs in [
    ("bilinear_up_align", dict(out_h=5, out_w=7, align=1), [1, 1, 3, 4]),
    ("bilinear_up", dict(out_h=5, out_w=7, align=0), [1, 1, 3, 4]),
    ("bilinear_down_align", dict(out_h=3, out_w=2, align=1), [1, 1, 7, 5]),
    ("bilinear_down", dict(out_h=3, out_w=2, align=0), [1, 1, 7, 5]),
]:
    def up(x, cfg=cfg):
        return F.interpolate(x, size=(cfg["out_h"], cfg["out_w"]), mode="bilinear", align_corners=bool(cfg["align"]))

    cases[name] = layer_case(cfg, {"x": wave(xs)}, up, proj_seed=len(cases))

cases["channel_softmax"] = layer_case({}, {"x": wave([2, 3, 2, 2], scale=2)}, lambda x: F.softmax(x, dim=1),
                                      proj_seed=len(cases))

# Losses. Labels: a formula over 0..3 with every fifth pixel ignored (255).
labels = torch.tensor([255.0 if i % 5 == 2 else float((i * 3 + i // 4) % 4) for i in range(2 * 3 * 3)])
cases["softmax_cross_entropy"] = loss_case(
    {"ignore_index": 255}, {"logits": wave([2, 4, 3, 3], scale=2), "labels": labels},
    lambda logits, labels: F.cross_entropy(logits, labels.reshape(2, 3, 3).long(), ignore_index=255))
targets = torch.tensor([float((i * 5 + 1) % 3 == 0) for i in range(12)]).reshape(3, 4)
cases["bce_with_logits"] = loss_case(
    {}, {"logits": wave([3, 4], scale=3), "targets": targets},
    lambda logits, targets: F.binary_cross_entropy_with_logits(logits, targets))
cases["sigmoid_squared_error"] = loss_case(
    {}, {"logits": wave([3, 4], scale=3), "targets": targets},
    lambda logits, targets: F.mse_loss(torch.sigmoid(logits), targets, reduction="sum") / (2 * logits.shape[0]))

out = {"generator": "Tests/EngineTests/make_torch_reference.py", "torch": torch.__version__, "cases": cases}
path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "Fixtures", "torch_reference.json")
with open(path, "w") as f:
    json.dump(out, f, separators=(",", ":"), sort_keys=True)
    f.write("\n")
print(f"wrote {path} ({os.path.getsize(path)} bytes, {len(cases)} cases)")
