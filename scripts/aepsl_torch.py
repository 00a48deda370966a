"""A trained aepsl network in PyTorch, from the state dict `aepsl export --pytorch FILE` writes.

    from aepsl_torch import load
    net, meta = load("segmenter.safetensors")          # an nn.Module in eval mode
    out = net(image)                                    # image: [N, 3, H, W], normalised

`out` holds what the ONNX export gives: for a segmenter `scores` (background + classes on the
stride-8 grid), `upsampled_scores` (bilinear to H x W, as aepsl predict does) and
`confidences` (sigmoid of the classification branch); for an erasing classifier `cams` and
`confidences`. The input is RGB, (pixel - mean) / std with the means and standard
deviations of meta["normalization_mean"] and meta["normalization_std"] on the 0-255 scale;
a segmenter's input padded at the bottom and right with 0 as meta["input_padding"] says.
Batch norm is folded into the convolutions, so the module has none. Needs torch and
safetensors.
"""
import json

import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors import safe_open
from safetensors.torch import load_file


class AEPSLNetwork(nn.Module):
    """The backbone described by `layers` (the file's metadata), then the heads."""

    def __init__(self, layers, classes, kind, align_corners):
        super().__init__()
        self.kind, self.align_corners = kind, align_corners
        self.backbone = nn.Sequential()
        features = 3
        for spec in layers:
            if spec["type"] == "conv":
                self.backbone.add_module(spec["name"], nn.Conv2d(
                    spec["in"], spec["out"], spec["kernel"], stride=spec["stride"], padding=spec["padding"],
                    dilation=spec["dilation"], bias=spec["bias"]))
                if spec["relu"]:
                    self.backbone.add_module(spec["name"] + "_relu", nn.ReLU())
                features = spec["out"]
            elif spec["type"] == "maxpool":
                self.backbone.add_module(spec["name"], nn.MaxPool2d(
                    spec["kernel"], spec["stride"], spec["padding"], ceil_mode=spec["ceil_mode"]))
            else:
                raise ValueError(f"unknown layer type {spec['type']!r}: export with a matching aepsl_torch.py")
        if kind == "segmenter":
            self.score = nn.Conv2d(features, classes + 1, 1)
        self.classifier = nn.Linear(features, classes)

    def forward(self, image):
        f = self.backbone(image)
        confidences = torch.sigmoid(self.classifier(f.mean(dim=(2, 3))))
        if self.kind == "segmenter":
            scores = self.score(f)
            upsampled = F.interpolate(scores, size=image.shape[2:], mode="bilinear", align_corners=self.align_corners)
            return {"scores": scores, "upsampled_scores": upsampled, "confidences": confidences}
        # The CAM of class c: ReLU of the classifier's row c over the last features.
        cams = F.relu(torch.einsum("nkhw,ck->nchw", f, self.classifier.weight))
        return {"cams": cams, "confidences": confidences}


def load(path):
    """The module (eval mode, float32) and the file's metadata (a dict of strings)."""
    with safe_open(path, framework="pt") as f:
        meta = f.metadata()
    classes = json.loads(meta["class_names"])
    net = AEPSLNetwork(json.loads(meta["layers"]), len(classes), meta["aepsl_network"],
                       meta["score_grid"] == "align_corners")
    net.load_state_dict(load_file(path), strict=True)
    return net.eval(), meta
