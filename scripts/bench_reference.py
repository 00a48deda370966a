#!/usr/bin/env python3
"""The reference side of aepsl's comparison benchmarks (BENCHMARKS.md): one runner, two subcommands.

    python3 scripts/bench_reference.py engine --threads 2 --networks tiny,largefov
    python3 scripts/bench_reference.py crf --image image.npy --probs probs.npy --out labels.npy

engine (`aepsl bench engine --compare-pytorch`): the networks of the Swift benchmark in
PyTorch on the CPU: `tiny` (128x128, batch 32) and `largefov` (DeepLab-LargeFOV on VGG-16,
321x321, batch 2), each a classifier with global average pooling and a 20-class linear layer,
trained with the squared error of sigmoid scores (Caffe's Euclidean loss, as the engine's) and
SGD (momentum 0.9, weight decay 5e-4); inference runs with batch norm folded into the
convolutions (torch.nn.utils.fusion.fuse_conv_bn_eval), as aepsl's does; and a PSL training
step of the segmenter (backbone, 1x1 score convolution to 21 maps and the classification
branch; loss = classification + CE(scores, mask) + CE(scores, online mask), as aepsl's
train-seg). For every network it measures float32 in the default (contiguous NCHW) and
channels_last layouts, and bfloat16 autocast (channels_last) where the CPU has native bf16
(avx512_bf16 or amx_bf16 in /proc/cpuinfo; elsewhere it says so and skips it), each in a
fresh child process (so that peak memory is per network, precision and layout).

crf (`aepsl bench crf --compare-pydensecrf`): pydensecrf's DenseCRF2D on the image and class
probabilities the Swift benchmark wrote, with the same parameters: unary_from_softmax (-log of
the probabilities clipped at --probability-floor), addPairwiseGaussian(sxy, compat=weight),
addPairwiseBilateral(sxy, srgb, compat=weight), both DIAG_KERNEL with the given normalisation,
then inference(n). One thread (pydensecrf has no threading). Times are medians over --repeats
runs after one warm-up: setup (unary and both pairwise terms, i.e. the lattices) and inference
(the mean-field iterations and the argmax). Writes the labels as float32 .npy to --out.

Each subcommand prints one JSON object on stdout; progress goes to stderr. Each needs its own
packages, and the script finds or makes an interpreter that has them, then re-runs itself with
it: engine (torch, numpy) tries $AEPSL_PYTHON when set, else .venv-bench/bin/python and
/opt/aepsl-torch/bin/python; crf (numpy, pydensecrf2 or pydensecrf) tries .venv-crf/bin/python.
When none can import them, the git-ignored virtual environment (.venv-bench or .venv-crf at the
repository root) is created with `python3 -m venv` and the packages installed with pip, at the
versions scripts/requirements-bench.txt pins (the crf side falls back to the unpinned original
pydensecrf when pydensecrf2 cannot be installed).
"""

import argparse
import contextlib
import copy
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def log(*args):
    print(*args, file=sys.stderr, flush=True)


# MARK: - Environments

class Environment:
    """What a subcommand imports, where its virtual environment lives, what pip installs there."""

    def __init__(self, probe, venv, installs, others=()):
        self.probe = probe
        self.venv = os.path.join(ROOT, venv)
        self.python = os.path.join(self.venv, "bin", "python")
        self.installs = installs
        self.others = list(others)

    def candidates(self):
        return [self.python] + self.others


REQUIREMENTS = os.path.join(ROOT, "scripts", "requirements-bench.txt")


def pinned(*names):
    """The pins of `names` in scripts/requirements-bench.txt (a name it does not pin: unpinned)."""
    pins = {}
    with open(REQUIREMENTS) as f:
        for line in f:
            line = line.split("#", 1)[0].strip()
            if "==" in line:
                pins[line.split("==", 1)[0].strip().lower()] = line
    return [pins.get(name.lower(), name) for name in names]


def engine_environment():
    given = os.environ.get("AEPSL_PYTHON", "")
    # $AEPSL_PYTHON replaces the usual places; .venv-bench is still created when it lacks torch.
    return Environment("import torch, numpy", ".venv-bench", [pinned("torch", "numpy")],
                       others=[given] if given else ["/opt/aepsl-torch/bin/python"])


def crf_environment():
    return Environment("import numpy, pydensecrf.densecrf, pydensecrf.utils", ".venv-crf",
                       [pinned("numpy", "pydensecrf2"), ["numpy", "pydensecrf"]])


def importable(python, probe):
    if not os.access(python, os.X_OK):
        return False
    return subprocess.run([python, "-c", probe], stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL).returncode == 0


def ensure_environment(env):
    """Returns inside an interpreter that has env's packages, else re-executes this script in one."""
    try:
        exec(env.probe, {})
        return
    except ImportError:
        pass
    here = os.path.abspath(sys.executable)
    for python in env.candidates():
        if os.path.abspath(python) != here and importable(python, env.probe):
            os.execv(python, [python, os.path.abspath(__file__)] + sys.argv[1:])
    if here == os.path.abspath(env.python):
        sys.exit("%s cannot import what it needs (%s) even after installing; remove %s and run again"
                 % (env.python, env.probe, env.venv))
    if not os.path.exists(env.python):
        log("creating %s with `python3 -m venv`" % env.venv)
        if subprocess.run([sys.executable, "-m", "venv", env.venv]).returncode != 0:
            sys.exit("python3 -m venv %s failed (on Debian: apt-get install python3-venv)" % env.venv)
    for packages in env.installs:
        log("installing %s into %s with pip (can be a large download)" % (" and ".join(packages), env.venv))
        result = subprocess.run([env.python, "-m", "pip", "install", "-q"] + packages, stdout=sys.stderr)
        if result.returncode == 0 and importable(env.python, env.probe):
            break
    else:
        sys.exit("could not install %s into %s (for pydensecrf, a C++ compiler and Cython are needed "
                 "when no wheel fits this Python)" % (" or ".join(p[-1] for p in env.installs), env.venv))
    os.execv(env.python, [env.python, os.path.abspath(__file__)] + sys.argv[1:])


# MARK: - engine

NETWORKS = {
    # name: (side, batch, default warm-up iterations, default timed iterations)
    "tiny": (128, 32, 3, 20),
    "largefov": (321, 2, 1, 5),
}
CLASSES = 20
LAYOUTS = ["contiguous", "channels_last"]
# (precision, layout) of every PyTorch run; bf16 only where native_bf16() finds the CPU support.
FP32_RUNS = [("fp32", layout) for layout in LAYOUTS]
BF16_RUNS = [("bf16", "channels_last")]
BF16_FLAGS = ["avx512_bf16", "amx_bf16"]


def native_bf16():
    """The CPU's native bf16 flags (from /proc/cpuinfo); empty when it has none."""
    try:
        with open("/proc/cpuinfo") as f:
            line = next((l for l in f if l.startswith("flags")), "")
    except OSError:
        line = ""
    flags = set(line.split(":", 1)[-1].split())
    return [f for f in BF16_FLAGS if f in flags]


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

    class Segmenter(nn.Module):
        """Sources/AEPSLEngine/Models.swift, Segmenter: score maps [N, 21, h, w] and class logits."""

        def __init__(self):
            super().__init__()
            self.backbone = nn.Sequential(*[copy.deepcopy(layer) for layer in layers])
            self.score = nn.Conv2d(features, CLASSES + 1, 1)
            self.classifier = nn.Linear(features, CLASSES)

        def forward(self, x):
            f = self.backbone(x)
            return self.score(f), self.classifier(f.mean(dim=(2, 3)))

    return Classifier(), Segmenter()


def fold_batch_norm(model):
    """An inference copy of `model` with every Conv2d + BatchNorm2d pair of its backbone fused
    into one convolution (PyTorch's fuse_conv_bn_eval), as aepsl folds them for inference."""
    import torch.nn as nn
    from torch.nn.utils.fusion import fuse_conv_bn_eval

    folded = copy.deepcopy(model).eval()
    layers, out = list(folded.backbone), []
    i = 0
    while i < len(layers):
        if (isinstance(layers[i], nn.Conv2d) and i + 1 < len(layers)
                and isinstance(layers[i + 1], nn.BatchNorm2d)):
            out.append(fuse_conv_bn_eval(layers[i], layers[i + 1]))
            i += 2
        else:
            out.append(layers[i])
            i += 1
    folded.backbone = nn.Sequential(*out)
    return folded


def psl_loss(scores, logits, mask, y, image_labels):
    """aepsl's SegmentationLoss(prohibitive: true) with the mse classification term:
    cls(v, y) + CE(f, S) + CE(f, S'), CE the mean over pixels whose label is not 255, S' the
    online mask (Sources/AEPSLMethod/OnlineMask.swift): argmax over background and the image's
    classes of p_k weighted by v_k = sigmoid(logit_k) (background by 1), without gradient."""
    import torch
    import torch.nn.functional as F

    n = scores.shape[0]
    scores, logits = scores.float(), logits.float()
    seg = F.cross_entropy(scores, mask, ignore_index=255)
    with torch.no_grad():
        weights = torch.cat([torch.ones(n, 1), torch.sigmoid(logits)], dim=1)
        weights = torch.where(image_labels, weights, torch.full_like(weights, -1.0))
        online = (torch.softmax(scores, dim=1) * weights[:, :, None, None]).argmax(dim=1)
    cls = (torch.sigmoid(logits) - y).pow(2).sum() / (2 * n)
    return cls + seg + F.cross_entropy(scores, online)


def timed(step, n):
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    return times


def run_child(name, precision, layout, threads, warmup, iterations, seed):
    """One network in one precision and layout: inference (batch norm folded), the classifier's
    training step, then the segmenter's PSL training step, in this order, as the Swift side."""
    import torch

    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    side, batch, _, _ = NETWORKS[name]
    baseline = current_rss_mib()

    model, segmenter = build(name)
    x = torch.randn(batch, 3, side, side)
    y = (torch.rand(batch, CLASSES) < 0.5).float()
    if layout == "channels_last":
        model = model.to(memory_format=torch.channels_last)
        segmenter = segmenter.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    # bf16: torch.autocast runs convolutions and matrix products in bfloat16 and keeps the
    # weights, their gradients and the losses in float32 (mixed precision).
    cast = (lambda: torch.autocast("cpu", dtype=torch.bfloat16)) if precision == "bf16" else contextlib.nullcontext

    # Inference first (then training), as the Swift side does: the peak after inference is
    # inference's, the peak after training is training's.
    model.eval()
    folded = fold_batch_norm(model)

    def infer():
        with torch.inference_mode(), cast():
            folded(x)

    timed(infer, warmup)
    infer_times = timed(infer, iterations)
    peak_infer = peak_rss_mib()
    del folded

    model.train()
    opt = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9, weight_decay=5e-4)
    losses = []

    def train():
        opt.zero_grad(set_to_none=True)
        with cast():
            logits = model(x)
        # The engine's loss (Loss.sigmoidSquaredError, Caffe's Euclidean loss):
        # 1 / (2N) sum over images and classes of (sigmoid(z) - y)^2.
        loss = (torch.sigmoid(logits.float()) - y).pow(2).sum() / (2 * batch)
        loss.backward()
        opt.step()
        losses.append(loss.item())

    timed(train, warmup)
    train_times = timed(train, iterations)
    peak_train = peak_rss_mib()
    del model, opt

    segment_times, segment_losses = run_segmenter(segmenter, x, batch, cast, warmup, iterations)

    def figures(times):
        med = statistics.median(times)
        return {"images_per_s": batch / med, "median_s": med, "iteration_s": times}

    return {
        "network": name, "precision": precision, "layout": layout, "batch": batch, "input": [batch, 3, side, side],
        "threads": torch.get_num_threads(),
        "train": figures(train_times), "infer": figures(infer_times), "segment_train": figures(segment_times),
        "rss_mib": {"baseline": baseline, "peak_after_inference": peak_infer, "peak_after_training": peak_train,
                    "inference_increase": peak_infer - baseline, "training_increase": peak_train - baseline},
        "loss_first": losses[0], "loss_last": losses[-1],
        "segment_loss_first": segment_losses[0], "segment_loss_last": segment_losses[-1],
    }


def run_segmenter(segmenter, x, batch, cast, warmup, iterations):
    """Times the PSL training step of the segmenter on random masks (labels 0..20 at the score
    maps' resolution) with image labels {1, 2}, as Sources/AEPSLBench/BenchNetwork+Segmenter.swift."""
    import torch

    segmenter.train()
    with torch.no_grad():
        h, w = segmenter(x[:1])[0].shape[2:]
    mask = torch.randint(0, CLASSES + 1, (batch, h, w))
    y = (torch.rand(batch, CLASSES) < 0.2).float()
    image_labels = torch.zeros(batch, CLASSES + 1, dtype=torch.bool)
    image_labels[:, :3] = True  # background and classes 1 and 2 (0-based 0 and 1)
    opt = torch.optim.SGD(segmenter.parameters(), lr=1e-3, momentum=0.9, weight_decay=5e-4)
    losses = []

    def step():
        opt.zero_grad(set_to_none=True)
        with cast():
            scores, logits = segmenter(x)
        loss = psl_loss(scores, logits, mask, y, image_labels)
        loss.backward()
        opt.step()
        losses.append(loss.item())

    timed(step, warmup)
    return timed(step, iterations), losses


def best_of(runs, figure, key, lowest=False):
    """The run (key) with the best value of one figure among `runs`."""
    pick = min if lowest else max
    return pick(runs, key=lambda k: runs[k][figure][key])


def engine(a):
    """Times the networks in PyTorch, each precision and layout in a child process; prints one JSON object."""

    import torch

    bf16 = native_bf16()
    plan = FP32_RUNS + (BF16_RUNS if bf16 and not a.no_bf16 else [])
    skipped = None
    if not bf16:
        skipped = ("this CPU has no native bfloat16 (neither %s in /proc/cpuinfo): PyTorch's bf16 "
                   "autocast rows are skipped" % " nor ".join(BF16_FLAGS))
    elif a.no_bf16:
        skipped = "--no-bf16: PyTorch's bf16 autocast rows are skipped"
    out = {"torch_version": torch.__version__, "threads": a.threads, "python": sys.version.split()[0],
           "mkldnn": torch.backends.mkldnn.is_available(), "interpreter": sys.executable,
           "cpu_capability": torch.backends.cpu.get_cpu_capability(), "bf16_flags": bf16,
           "inference": "batch norm folded into the convolutions (torch.nn.utils.fusion.fuse_conv_bn_eval)",
           "networks": {}}
    if skipped:
        out["bf16_skipped"] = skipped
        log(skipped)
    env = dict(os.environ, OMP_NUM_THREADS=str(a.threads), MKL_NUM_THREADS=str(a.threads))
    for name in a.networks.split(","):
        if name not in NETWORKS:
            raise SystemExit(f"unknown network {name}; known: {', '.join(NETWORKS)}")
        _, _, dw, di = NETWORKS[name]
        warmup = dw if a.warmup is None else a.warmup
        iterations = di if a.iterations is None else a.iterations
        runs = {}
        for precision, layout in plan:
            key = f"{precision} {layout}"
            log(f"pytorch {name} {key}: {warmup} warm-up + {iterations} timed iterations")
            with tempfile.NamedTemporaryFile(suffix=".json") as tmp:
                subprocess.run([sys.executable, os.path.abspath(__file__), "engine", "--child", name,
                                "--precision", precision, "--layout", layout,
                                "--threads", str(a.threads), "--warmup", str(warmup), "--iterations", str(iterations),
                                "--seed", str(a.seed), "--output", tmp.name],
                               check=True, env=env, stdout=sys.stderr)
                with open(tmp.name) as f:
                    runs[key] = json.load(f)
            r = runs[key]
            log(f"  train {r['train']['images_per_s']:.2f} images/s, PSL step {r['segment_train']['images_per_s']:.2f} "
                f"images/s, infer {r['infer']['images_per_s']:.2f} images/s, peak RSS +{r['rss_mib']['training_increase']:.0f} MiB")
        fp32 = {k: v for k, v in runs.items() if k.startswith("fp32 ")}
        best_train, best_infer = best_of(fp32, "train", "images_per_s"), best_of(fp32, "infer", "images_per_s")
        best_segment = best_of(fp32, "segment_train", "images_per_s")
        best_mem = best_of(fp32, "rss_mib", "training_increase", lowest=True)
        best_mem_inf = best_of(fp32, "rss_mib", "inference_increase", lowest=True)
        out["networks"][name] = {
            "warmup": warmup, "iterations": iterations, "runs": runs,
            # The best float32 run per figure, for the ratios.
            "best": {
                "train_images_per_s": runs[best_train]["train"]["images_per_s"], "train_layout": best_train,
                "infer_images_per_s": runs[best_infer]["infer"]["images_per_s"], "infer_layout": best_infer,
                "segment_train_images_per_s": runs[best_segment]["segment_train"]["images_per_s"],
                "segment_train_layout": best_segment,
                "training_rss_increase_mib": runs[best_mem]["rss_mib"]["training_increase"], "training_rss_layout": best_mem,
                "inference_rss_increase_mib": runs[best_mem_inf]["rss_mib"]["inference_increase"],
                "inference_rss_layout": best_mem_inf,
            },
        }
    print(json.dumps(out))


# MARK: - crf

def package_name():
    """The pydensecrf distribution installed, with its version."""
    from importlib import metadata
    for name in ["pydensecrf2", "pydensecrf"]:
        try:
            return "%s %s" % (name, metadata.version(name))
        except metadata.PackageNotFoundError:
            continue
    return "pydensecrf"


def crf(a):
    """Times pydensecrf on the arrays the Swift side wrote; writes the labels, prints one JSON object."""

    import numpy as np
    import pydensecrf.densecrf as dcrf
    from pydensecrf.utils import unary_from_softmax

    image = np.ascontiguousarray(np.load(a.image, allow_pickle=False).astype(np.uint8))
    probs = np.load(a.probs, allow_pickle=False).astype(np.float32)
    classes, height, width = probs.shape
    normalization = {"symmetric": dcrf.NORMALIZE_SYMMETRIC, "before": dcrf.NORMALIZE_BEFORE,
                     "after": dcrf.NORMALIZE_AFTER, "none": dcrf.NO_NORMALIZATION}[a.normalization]

    def run():
        t0 = time.perf_counter()
        crf = dcrf.DenseCRF2D(width, height, classes)
        crf.setUnaryEnergy(np.ascontiguousarray(unary_from_softmax(probs, clip=a.probability_floor)))
        if a.gaussian_weight > 0:
            crf.addPairwiseGaussian(sxy=a.gaussian_sxy, compat=a.gaussian_weight,
                                    kernel=dcrf.DIAG_KERNEL, normalization=normalization)
        if a.bilateral_weight > 0:
            crf.addPairwiseBilateral(sxy=a.bilateral_sxy, srgb=a.bilateral_srgb, rgbim=image,
                                     compat=a.bilateral_weight, kernel=dcrf.DIAG_KERNEL,
                                     normalization=normalization)
        t1 = time.perf_counter()
        q = np.array(crf.inference(a.iterations))
        labels = q.argmax(axis=0).reshape(height, width)
        t2 = time.perf_counter()
        return (t1 - t0) * 1e3, (t2 - t1) * 1e3, labels

    log("pydensecrf: %dx%d, %d classes, %d iterations, %d runs + 1 warm-up"
        % (width, height, classes, a.iterations, a.repeats))
    run()
    setups, inferences, totals = [], [], []
    labels = None
    for _ in range(a.repeats):
        setup, inference, labels = run()
        setups.append(setup)
        inferences.append(inference)
        totals.append(setup + inference)
    np.save(a.out, labels.astype(np.float32))
    print(json.dumps({
        "package": package_name(),
        "ms": {"setup": statistics.median(setups), "inference": statistics.median(inferences),
               "total": statistics.median(totals)},
        "runs_ms": {"setup": setups, "inference": inferences},
    }))


# MARK: - Command line

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="command", required=True)

    e = sub.add_parser("engine", help="the engine's networks in PyTorch")
    e.add_argument("--threads", type=int, default=os.cpu_count())
    e.add_argument("--networks", default="tiny,largefov")
    e.add_argument("--warmup", type=int, help="warm-up iterations (default: tiny 3, largefov 1)")
    e.add_argument("--iterations", type=int, help="timed iterations (default: tiny 20, largefov 5)")
    e.add_argument("--seed", type=int, default=0)
    e.add_argument("--no-bf16", action="store_true", help="skip the bf16 autocast runs even where the CPU has bf16")
    e.add_argument("--child", help=argparse.SUPPRESS)
    e.add_argument("--precision", default="fp32", choices=["fp32", "bf16"], help=argparse.SUPPRESS)
    e.add_argument("--layout", help=argparse.SUPPRESS)
    e.add_argument("--output", help=argparse.SUPPRESS)

    c = sub.add_parser("crf", help="the dense CRF in pydensecrf")
    c.add_argument("--image", required=True, help=".npy [height, width, 3], values 0-255")
    c.add_argument("--probs", required=True, help=".npy [classes, height, width] float32")
    c.add_argument("--out", required=True, help="labels, .npy [height, width] float32")
    c.add_argument("--repeats", type=int, default=5)
    c.add_argument("--iterations", type=int, default=10)
    c.add_argument("--gaussian-sxy", type=float, default=3)
    c.add_argument("--gaussian-weight", type=float, default=3)
    c.add_argument("--bilateral-sxy", type=float, default=80)
    c.add_argument("--bilateral-srgb", type=float, default=13)
    c.add_argument("--bilateral-weight", type=float, default=10)
    c.add_argument("--probability-floor", type=float, default=1e-5)
    c.add_argument("--normalization", default="symmetric", choices=["symmetric", "before", "after", "none"])

    a = ap.parse_args()
    if a.command == "engine":
        ensure_environment(engine_environment())
        if a.child:
            result = run_child(a.child, a.precision, a.layout, a.threads, a.warmup, a.iterations, a.seed)
            with open(a.output, "w") as f:
                json.dump(result, f)
            return
        engine(a)
    else:
        ensure_environment(crf_environment())
        crf(a)


if __name__ == "__main__":
    main()
