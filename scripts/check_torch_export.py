"""Checks `aepsl export --pytorch` the way Tests/ExportTests checks the ONNX export.

    python check_torch_export.py --aepsl .build/release/aepsl --images DIR \\
        (--run RUN [--model VARIANT | --step N] | --checkpoint FILE)

aepsl exports the network's state dict and writes its own outputs on every image of DIR
(`aepsl export --reference-images`: resized, normalised and padded as aepsl does);
scripts/aepsl_torch.py then loads the state dict and runs the same inputs. For every output

    max |torch - aepsl| <= 1e-4 + 1e-3 * max |aepsl|

and for score maps and CAMs the argmax over channels agrees on at least 99.9% of pixels.
Prints one line per image and output; exits 1 when a check fails. Needs torch, numpy and
safetensors (torch is several GiB: this is not part of `make test`).
"""
import argparse
import glob
import os
import subprocess
import sys
import tempfile

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from aepsl_torch import load  # noqa: E402

ABSOLUTE, RELATIVE, AGREEMENT = 1e-4, 1e-3, 0.999
MAPS = {"scores", "upsampled_scores", "cams"}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--aepsl", required=True, help="the aepsl executable")
    parser.add_argument("--images", required=True, help="directory of .jpg/.png images")
    parser.add_argument("--run")
    parser.add_argument("--model")
    parser.add_argument("--step")
    parser.add_argument("--checkpoint")
    args = parser.parse_args()
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        state, cases = os.path.join(tmp, "state.safetensors"), os.path.join(tmp, "cases")
        command = [args.aepsl, "export", "--pytorch", state, "--reference-images", args.images, "--reference-out", cases]
        for option in ("run", "model", "step", "checkpoint"):
            if getattr(args, option):
                command += [f"--{option}", getattr(args, option)]
        subprocess.run(command, check=True)
        net, meta = load(state)
        failures = []
        print(f"{meta['aepsl_network']} {meta['net']}, classes {meta['class_names']}")
        for path in sorted(glob.glob(os.path.join(cases, "input_*.npy"))):
            case = os.path.basename(path)[len("input_"):-len(".npy")]
            with torch.no_grad():
                got = net(torch.from_numpy(np.load(path)))
            for name, have in got.items():
                have = have.numpy()
                want = np.load(os.path.join(cases, f"{name}_{case}.npy"))
                if have.shape != want.shape:
                    failures.append(f"{case} {name}: shape {have.shape}, aepsl {want.shape}")
                    continue
                diff = float(np.max(np.abs(have - want)))
                bound = ABSOLUTE + RELATIVE * float(np.max(np.abs(want)))
                line = f"{case:>20} {name:>16} {str(list(want.shape)):>18}  max |diff| {diff:.2e} (bound {bound:.2e})"
                if diff > bound:
                    failures.append(f"{case} {name}: max |diff| {diff:.3g} > {bound:.3g}")
                if name in MAPS:
                    agree = float(np.mean(np.argmax(have, axis=1) == np.argmax(want, axis=1)))
                    line += f"  argmax agreement {100 * agree:.3f}%"
                    if agree < AGREEMENT:
                        failures.append(f"{case} {name}: argmax agrees on {100 * agree:.3f}% of pixels")
                print(line)
        print("FAILED:\n  " + "\n  ".join(failures) if failures else "all outputs within tolerance")
        return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
