#!/usr/bin/env python3
"""The PyTorch side of `aepsl bench engine --compare-pytorch` (BENCHMARKS.md).

Runs the networks of the Swift benchmark in PyTorch on the CPU: `tiny` (128x128, batch 32)
and `largefov` (DeepLab-LargeFOV on VGG-16, 321x321, batch 2), each a classifier with
global average pooling and a 20-class linear layer, trained with the squared error of sigmoid
scores (Caffe's Euclidean loss, as the engine's) and SGD (momentum 0.9, weight decay 5e-4).
For every network it measures the default (contiguous NCHW) and channels_last layouts, each
in a fresh child process (so that peak memory is per network and layout), and picks the
best of the two per figure.

Prints one JSON object on stdout. Progress goes to stderr.

    python scripts/bench_engine_pytorch.py --threads 2 --networks tiny,largefov
"""

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time

NETWORKS = {
    # name: (side, batch, default warm-up iterations, default timed iterations)
    "tiny": (128, 32, 3, 20),
    "largefov": (321, 2, 1, 5),
}
CLASSES = 20
LAYOUTS = ["contiguous", "channels_last"]


def current_rss_mib():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def peak_rss_mib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def build(name):
    import torch.nn as nn

    def conv(cin, cout, k=3, pad=1, dil=1, bn=False):
        if bn:
            return [nn.Conv2d(cin, cout, k, padding=pad, dilation=dil, bias=False),
                    nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]
        return [nn.Conv2d(cin, cout, k, padding=pad, dilation=dil), nn.ReLU(inplace=True)]

    layers = []
    if name == "tiny":
        # Sources/AEPSLEngine/NetworkSpec.swift, BackboneSpec.tiny: 9 batch-normalised convs.
        c = 3
        for i, width in enumerate([16, 32, 64, 128]):
            layers += conv(c, width, bn=True) + conv(width, width, bn=True)
            c = width
            if i < 3:
                layers.append(nn.MaxPool2d(2, 2))
        layers += conv(128, 256, pad=2, dil=2, bn=True)
        features = 256
    elif name == "largefov":
        # BackboneSpec.largeFOV: VGG-16, pools 3/2/1 (x3) and 3/1/1 (x2) with ceil mode,
        # conv5 dilated by 2, fc6 3x3 dilation 12 (1024), fc7 1x1 (1024), dropout 0.5.
        def pool(stride):
            return nn.MaxPool2d(3, stride=stride, padding=1, ceil_mode=True)

        c = 3
        for width, count, stride, dil in [(64, 2, 2, 1), (128, 2, 2, 1), (256, 3, 2, 1), (512, 3, 1, 1), (512, 3, 1, 2)]:
            for _ in range(count):
                layers += conv(c, width, pad=dil, dil=dil)
                c = width
            layers.append(pool(stride))
        layers += conv(512, 1024, pad=12, dil=12) + [nn.Dropout(0.5)]
        layers += conv(1024, 1024, k=1, pad=0) + [nn.Dropout(0.5)]
        features = 1024
    else:
        raise SystemExit(f"unknown network {name}")

    class Classifier(nn.Module):
        def __init__(self):
            super().__init__()
            self.backbone = nn.Sequential(*layers)
            self.classifier = nn.Linear(features, CLASSES)

        def forward(self, x):
            return self.classifier(self.backbone(x).mean(dim=(2, 3)))

    return Classifier()


def run_child(name, layout, threads, warmup, iterations, seed):
    import torch

    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    side, batch, _, _ = NETWORKS[name]
    baseline = current_rss_mib()

    model = build(name)
    x = torch.randn(batch, 3, side, side)
    y = (torch.rand(batch, CLASSES) < 0.5).float()
    if layout == "channels_last":
        model = model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    opt = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9, weight_decay=5e-4)

    def timed(step, n):
        times = []
        for _ in range(n):
            t0 = time.perf_counter()
            step()
            times.append(time.perf_counter() - t0)
        return times

    # Inference first (then training), as the Swift side does: the peak after inference is
    # inference's, the peak after training is training's.
    model.eval()

    def infer():
        with torch.inference_mode():
            model(x)

    timed(infer, warmup)
    infer_times = timed(infer, iterations)
    peak_infer = peak_rss_mib()

    model.train()
    losses = []

    def train():
        opt.zero_grad(set_to_none=True)
        # The engine's loss (Loss.sigmoidSquaredError, Caffe's Euclidean loss):
        # 1 / (2N) sum over images and classes of (sigmoid(z) - y)^2.
        loss = (torch.sigmoid(model(x)) - y).pow(2).sum() / (2 * batch)
        loss.backward()
        opt.step()
        losses.append(loss.item())

    timed(train, warmup)
    train_times = timed(train, iterations)
    peak_train = peak_rss_mib()

    def figures(times):
        med = statistics.median(times)
        return {"images_per_s": batch / med, "median_s": med, "iteration_s": times}

    return {
        "network": name, "layout": layout, "batch": batch, "input": [batch, 3, side, side],
        "threads": torch.get_num_threads(),
        "train": figures(train_times), "infer": figures(infer_times),
        "rss_mib": {"baseline": baseline, "peak_after_inference": peak_infer, "peak_after_training": peak_train,
                    "inference_increase": peak_infer - baseline, "training_increase": peak_train - baseline},
        "loss_first": losses[0], "loss_last": losses[-1],
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--networks", default="tiny,largefov")
    ap.add_argument("--warmup", type=int, help="warm-up iterations (default: tiny 3, largefov 1)")
    ap.add_argument("--iterations", type=int, help="timed iterations (default: tiny 20, largefov 5)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--layouts", default=",".join(LAYOUTS))
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--layout", help=argparse.SUPPRESS)
    ap.add_argument("--output", help=argparse.SUPPRESS)
    a = ap.parse_args()

    if a.child:
        result = run_child(a.child, a.layout, a.threads, a.warmup, a.iterations, a.seed)
        with open(a.output, "w") as f:
            json.dump(result, f)
        return

    import torch

    out = {"torch_version": torch.__version__, "threads": a.threads, "python": sys.version.split()[0],
           "mkldnn": torch.backends.mkldnn.is_available(), "networks": {}}
    env = dict(os.environ, OMP_NUM_THREADS=str(a.threads), MKL_NUM_THREADS=str(a.threads))
    for name in a.networks.split(","):
        if name not in NETWORKS:
            raise SystemExit(f"unknown network {name}; known: {', '.join(NETWORKS)}")
        _, _, dw, di = NETWORKS[name]
        warmup = dw if a.warmup is None else a.warmup
        iterations = di if a.iterations is None else a.iterations
        runs = {}
        for layout in a.layouts.split(","):
            print(f"pytorch {name} {layout}: {warmup} warm-up + {iterations} timed iterations", file=sys.stderr, flush=True)
            with tempfile.NamedTemporaryFile(suffix=".json") as tmp:
                subprocess.run([sys.executable, os.path.abspath(__file__), "--child", name, "--layout", layout,
                                "--threads", str(a.threads), "--warmup", str(warmup), "--iterations", str(iterations),
                                "--seed", str(a.seed), "--output", tmp.name],
                               check=True, env=env, stdout=sys.stderr)
                with open(tmp.name) as f:
                    runs[layout] = json.load(f)
            r = runs[layout]
            print(f"  train {r['train']['images_per_s']:.2f} images/s, infer {r['infer']['images_per_s']:.2f} images/s, "
                  f"peak RSS +{r['rss_mib']['training_increase']:.0f} MiB", file=sys.stderr, flush=True)
        best_train = max(runs, key=lambda k: runs[k]["train"]["images_per_s"])
        best_infer = max(runs, key=lambda k: runs[k]["infer"]["images_per_s"])
        best_mem = min(runs, key=lambda k: runs[k]["rss_mib"]["training_increase"])
        best_mem_inf = min(runs, key=lambda k: runs[k]["rss_mib"]["inference_increase"])
        out["networks"][name] = {
            "warmup": warmup, "iterations": iterations, "layouts": runs,
            "best": {
                "train_images_per_s": runs[best_train]["train"]["images_per_s"], "train_layout": best_train,
                "infer_images_per_s": runs[best_infer]["infer"]["images_per_s"], "infer_layout": best_infer,
                "training_rss_increase_mib": runs[best_mem]["rss_mib"]["training_increase"], "training_rss_layout": best_mem,
                "inference_rss_increase_mib": runs[best_mem_inf]["rss_mib"]["inference_increase"],
                "inference_rss_layout": best_mem_inf,
            },
        }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
