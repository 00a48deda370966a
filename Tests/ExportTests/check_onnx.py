"""Runs an ONNX model written by `aepsl export` in onnxruntime and compares it with aepsl.

    check_onnx.py MODEL.onnx CASES_DIR

CASES_DIR holds, per case K, input_K.npy (the normalised image batch [N, 3, H, W]) and what
aepsl computed for it: one <output>_K.npy per graph output (scores, upsampled_scores,
confidences for a segmenter; cams, confidences for a classifier). For every output the
check is

    max |onnx - aepsl| <= 1e-4 + 1e-3 * max |aepsl|      (the stated tolerance)

and, for score maps, the argmax over channels agrees on at least 99.9% of pixels. The model
is first validated by onnx.checker (full check, with shape inference), and its metadata must
name the classes. Prints one JSON line of results; exits 1 when a check fails.
Needs numpy, onnx and onnxruntime (scripts/python-test-env.sh installs them in .venv-test).
"""
import glob
import json
import os
import sys

import numpy as np
import onnx
import onnxruntime as ort

ABSOLUTE, RELATIVE, AGREEMENT = 1e-4, 1e-3, 0.999
MAPS = {"scores", "upsampled_scores", "cams"}


def main(model_path, cases_dir):
    onnx.checker.check_model(model_path, full_check=True)
    session = ort.InferenceSession(model_path, providers=["CPUExecutionProvider"])
    meta = session.get_modelmeta().custom_metadata_map
    classes = json.loads(meta["class_names"])
    outputs = [o.name for o in session.get_outputs()]
    failures, results = [], []
    for key in ("normalization_mean", "normalization_std"):
        if len(json.loads(meta[key])) != 3:
            failures.append(f"metadata {key} is not 3 numbers: {meta[key]}")
    inputs = sorted(glob.glob(os.path.join(cases_dir, "input_*.npy")))
    if not inputs:
        failures.append(f"no input_*.npy in {cases_dir}")
    for path in inputs:
        case = os.path.basename(path)[len("input_"):-len(".npy")]
        image = np.load(path)
        got = dict(zip(outputs, session.run(outputs, {"image": image})))
        for name in outputs:
            want = np.load(os.path.join(cases_dir, f"{name}_{case}.npy"))
            have = got[name]
            if have.shape != want.shape:
                failures.append(f"case {case} {name}: shape {have.shape}, aepsl {want.shape}")
                continue
            diff = float(np.max(np.abs(have - want)))
            bound = ABSOLUTE + RELATIVE * float(np.max(np.abs(want)))
            row = {"case": case, "output": name, "shape": list(want.shape), "max_abs_diff": diff, "bound": bound}
            if diff > bound:
                failures.append(f"case {case} {name}: max |diff| {diff:.3g} > {bound:.3g}")
            if name in MAPS:
                agree = float(np.mean(np.argmax(have, axis=1) == np.argmax(want, axis=1)))
                row["argmax_agreement"] = agree
                if agree < AGREEMENT:
                    failures.append(f"case {case} {name}: argmax agrees on {100 * agree:.3f}% of pixels")
            if name == "confidences" and want.shape[1] != len(classes):
                failures.append(f"case {case}: {want.shape[1]} confidences for {len(classes)} class names")
            results.append(row)
    print(json.dumps({"model": model_path, "classes": classes, "results": results, "failures": failures}))
    return 1 if failures else 0


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    sys.exit(main(sys.argv[1], sys.argv[2]))
