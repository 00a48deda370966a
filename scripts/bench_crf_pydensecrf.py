#!/usr/bin/env python3
"""The pydensecrf side of `aepsl bench crf --compare-pydensecrf` (BENCHMARKS.md).

Runs pydensecrf's DenseCRF2D on the image and class probabilities that the Swift benchmark
wrote, with the same parameters: unary_from_softmax (-log of the probabilities clipped at
--probability-floor), addPairwiseGaussian(sxy, compat=weight), addPairwiseBilateral(sxy,
srgb, compat=weight), both DIAG_KERNEL with the given normalisation, then inference(n).
One thread (pydensecrf has no threading). Times are medians over --repeats runs after one
warm-up: setup (unary and both pairwise terms, i.e. the lattices) and inference (the
mean-field iterations and the argmax). Writes the labels as float32 .npy to --out and prints
one JSON object on stdout; progress goes to stderr.

When run by an interpreter without pydensecrf, it creates the git-ignored virtual
environment .venv-crf at the repository root, installs numpy and pydensecrf2 there (falling
back to pydensecrf), and re-runs itself with that interpreter.

    python3 scripts/bench_crf_pydensecrf.py --image image.npy --probs probs.npy --out labels.npy
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VENV = os.path.join(ROOT, ".venv-crf")
VENV_PYTHON = os.path.join(VENV, "bin", "python")
PACKAGES = ["pydensecrf2", "pydensecrf"]


def log(*args):
    print(*args, file=sys.stderr, flush=True)


def have_pydensecrf(python):
    probe = "import numpy, pydensecrf.densecrf, pydensecrf.utils"
    return subprocess.run([python, "-c", probe], stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL).returncode == 0


def ensure_environment():
    """Returns normally inside an interpreter with pydensecrf, else re-executes in .venv-crf."""
    try:
        import numpy  # noqa: F401
        import pydensecrf.densecrf  # noqa: F401
        return
    except ImportError:
        pass
    if os.path.abspath(sys.executable) == os.path.abspath(VENV_PYTHON):
        sys.exit("pydensecrf is not importable in %s even after installing; "
                 "remove .venv-crf and run again" % VENV)
    if not os.path.exists(VENV_PYTHON):
        log("creating %s" % VENV)
        subprocess.run([sys.executable, "-m", "venv", VENV], check=True)
    if not have_pydensecrf(VENV_PYTHON):
        for package in PACKAGES:
            log("installing numpy and %s into %s" % (package, VENV))
            result = subprocess.run([VENV_PYTHON, "-m", "pip", "install", "-q", "numpy", package],
                                    stdout=sys.stderr)
            if result.returncode == 0 and have_pydensecrf(VENV_PYTHON):
                break
        else:
            sys.exit("could not install pydensecrf2 or pydensecrf into %s (a C++ compiler and "
                     "Cython are needed when no wheel fits this Python)" % VENV)
    os.execv(VENV_PYTHON, [VENV_PYTHON, os.path.abspath(__file__)] + sys.argv[1:])


def package_name():
    from importlib import metadata
    for name in PACKAGES:
        try:
            return "%s %s" % (name, metadata.version(name))
        except metadata.PackageNotFoundError:
            continue
    return "pydensecrf"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--image", required=True, help=".npy [height, width, 3], values 0-255")
    parser.add_argument("--probs", required=True, help=".npy [classes, height, width] float32")
    parser.add_argument("--out", required=True, help="labels, .npy [height, width] float32")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--iterations", type=int, default=10)
    parser.add_argument("--gaussian-sxy", type=float, default=3)
    parser.add_argument("--gaussian-weight", type=float, default=3)
    parser.add_argument("--bilateral-sxy", type=float, default=80)
    parser.add_argument("--bilateral-srgb", type=float, default=13)
    parser.add_argument("--bilateral-weight", type=float, default=10)
    parser.add_argument("--probability-floor", type=float, default=1e-5)
    parser.add_argument("--normalization", default="symmetric",
                        choices=["symmetric", "before", "after", "none"])
    args = parser.parse_args()
    ensure_environment()

    import numpy as np
    import pydensecrf.densecrf as dcrf
    from pydensecrf.utils import unary_from_softmax

    image = np.ascontiguousarray(np.load(args.image, allow_pickle=False).astype(np.uint8))
    probs = np.load(args.probs, allow_pickle=False).astype(np.float32)
    classes, height, width = probs.shape
    normalization = {"symmetric": dcrf.NORMALIZE_SYMMETRIC, "before": dcrf.NORMALIZE_BEFORE,
                     "after": dcrf.NORMALIZE_AFTER, "none": dcrf.NO_NORMALIZATION}[args.normalization]

    def run():
        t0 = time.perf_counter()
        crf = dcrf.DenseCRF2D(width, height, classes)
        crf.setUnaryEnergy(np.ascontiguousarray(unary_from_softmax(probs, clip=args.probability_floor)))
        if args.gaussian_weight > 0:
            crf.addPairwiseGaussian(sxy=args.gaussian_sxy, compat=args.gaussian_weight,
                                    kernel=dcrf.DIAG_KERNEL, normalization=normalization)
        if args.bilateral_weight > 0:
            crf.addPairwiseBilateral(sxy=args.bilateral_sxy, srgb=args.bilateral_srgb, rgbim=image,
                                     compat=args.bilateral_weight, kernel=dcrf.DIAG_KERNEL,
                                     normalization=normalization)
        t1 = time.perf_counter()
        q = np.array(crf.inference(args.iterations))
        labels = q.argmax(axis=0).reshape(height, width)
        t2 = time.perf_counter()
        return (t1 - t0) * 1e3, (t2 - t1) * 1e3, labels

    log("pydensecrf: %dx%d, %d classes, %d iterations, %d runs + 1 warm-up"
        % (width, height, classes, args.iterations, args.repeats))
    run()
    setups, inferences, totals = [], [], []
    labels = None
    for _ in range(args.repeats):
        setup, inference, labels = run()
        setups.append(setup)
        inferences.append(inference)
        totals.append(setup + inference)
    np.save(args.out, labels.astype(np.float32))
    print(json.dumps({
        "package": package_name(),
        "ms": {"setup": statistics.median(setups), "inference": statistics.median(inferences),
               "total": statistics.median(totals)},
        "runs_ms": {"setup": setups, "inference": inferences},
    }))


if __name__ == "__main__":
    main()
