#!/usr/bin/env python3
"""Where each erasing step's regions go: a diagnostic of a finished `aepsl erase`, scored
against the training split's ground truth (evaluation only: nothing in aepsl reads it).

    python3 scripts/erased_regions.py RUN DATASET

Per step t, the region R_t is what the run's erasing rule, delta and later-regions rule
(RUN/erase/configuration.json) make of every labelled class's CAM (RUN/erase/step-t/cams), as
`ErasingRule.region` and `StepRegions` do (`erased_by`, `touching_parts`). Printed per step,
over all training images:
  region     R_t, as a share of all pixels
  in-earlier the share of R_t inside what steps 1..t-1 erased (RUN/erase/step-(t-1)/erased)
  precision  the share of R_t on an object of the class whose CAM made it
  new        the right pixels R_t adds, as a share of all object pixels
  recall     the object pixels covered so far by right regions
With --figure OUT.jpg [--also RUN2] it draws, for --images training images, each step's new
region (green on the class's object, red off it, grey erased before), one row per run.
Needs numpy and Pillow (`pip install numpy pillow`).
"""
import argparse
import json
import os

import numpy as np
from PIL import Image


def erased_by(cam, rule, delta):
    """The pixels of one CAM that `rule` erases (none for an all-zero CAM)."""
    if cam.max() <= 0:
        return np.zeros(cam.shape, bool)
    if rule == "max-ratio":
        threshold = (1 - delta) * cam.max()
    else:  # top-fraction: the ceil(delta * n) highest, ties included
        keep = int(np.ceil(cam.size * delta))
        threshold = np.sort(cam, axis=None)[::-1][min(keep, cam.size) - 1]
    return (cam >= threshold) & (cam > 0)


def reach(config, width, height):
    """One CAM cell in image pixels, as `EraseConfiguration.stepRegions` computes it (both
    networks have an output stride of 8)."""
    side = config["imageSide"]
    side = config["cropSize"] if side == "crop" else None if side == "own" else int(side)
    scale = side / max(width, height) if side else 1.0
    return max(1, int(np.ceil(8 / scale - 1e-9)))


def touching_parts(region, earlier, r):
    """The 8-connected components of `region` with a pixel within r pixels (along x and y) of
    one of `earlier`."""
    h, w = region.shape
    near = earlier.copy()
    for dy in range(-r, r + 1):
        for dx in range(-r, r + 1):
            near[max(dy, 0):h + min(dy, 0), max(dx, 0):w + min(dx, 0)] |= \
                earlier[max(-dy, 0):h + min(-dy, 0), max(-dx, 0):w + min(-dx, 0)]
    kept = np.zeros_like(region)
    seen = np.zeros_like(region)
    for start in zip(*np.nonzero(region)):
        if seen[start]:
            continue
        seen[start] = True
        component, touches, k = [start], False, 0
        while k < len(component):
            y, x = component[k]
            k += 1
            touches = touches or near[y, x]
            for ny in range(max(y - 1, 0), min(y + 2, h)):
                for nx in range(max(x - 1, 0), min(x + 2, w)):
                    if region[ny, nx] and not seen[ny, nx]:
                        seen[ny, nx] = True
                        component.append((ny, nx))
        if touches:
            for p in component:
                kept[p] = True
    return kept


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("run")
    p.add_argument("dataset")
    p.add_argument("--figure", help="draw the steps' regions into this image file")
    p.add_argument("--also", help="a second run drawn under the first, image by image")
    p.add_argument("--images", default="0,2,5", help="indices of the training images drawn")
    a = p.parse_args()
    if a.figure:
        figure(a)
        return
    config = json.load(open(f"{a.run}/erase/configuration.json"))
    rule, delta = config["rule"], config["delta"]
    touching = config.get("laterRegions", "all") == "touching"
    ids = open(f"{a.dataset}/ImageSets/Segmentation/train.txt").read().split()
    steps = 0  # the steps with CAMs (a step erasing dropped may have none)
    while os.path.exists(f"{a.run}/erase/step-{steps + 1}/cams/{ids[0]}.npy"):
        steps += 1
    totals = np.zeros((steps, 4))  # region, in earlier, right, new right
    objects = pixels = 0
    for i in ids:
        truth = np.array(Image.open(f"{a.dataset}/SegmentationClass/{i}.png"))
        labels = sorted(set(np.unique(truth).tolist()) - {0, 255})  # the CAM files' order
        objects += ((truth > 0) & (truth != 255)).sum()
        pixels += truth.size
        earlier = np.zeros(truth.shape, bool)
        covered = np.zeros(truth.shape, bool)
        mined = {c: np.zeros(truth.shape, bool) for c in labels}
        for t in range(steps):
            cams = np.load(f"{a.run}/erase/step-{t + 1}/cams/{i}.npy").astype(np.float32)
            region = np.zeros(truth.shape, bool)
            right = np.zeros(truth.shape, bool)
            for cam, c in zip(cams, labels):
                r = erased_by(cam, rule, delta)
                if touching and mined[c].any():
                    r = touching_parts(r, mined[c], reach(config, truth.shape[1], truth.shape[0]))
                mined[c] |= r
                region |= r
                right |= r & (truth == c)
            totals[t] += [region.sum(), (region & earlier).sum(), right.sum(), (right & ~covered).sum()]
            covered |= right
            earlier = np.array(Image.open(f"{a.run}/erase/step-{t + 1}/erased/{i}.png")) > 0
    print(f"objects cover {100 * objects / pixels:.1f}% of the pixels of {len(ids)} training images")
    print("step  region%  in-earlier%  precision%  new%  recall%")
    recall = 0.0
    for t, (region, inside, right, new) in enumerate(totals):
        recall += new
        print(f"{t + 1:4d}  {100 * region / pixels:7.2f}  {100 * inside / max(region, 1):11.1f}  "
              f"{100 * right / max(region, 1):10.1f}  {100 * new / objects:4.1f}  {100 * recall / objects:7.1f}")


def figure(a):
    ids = open(f"{a.dataset}/ImageSets/Segmentation/train.txt").read().split()
    pad = lambda t: np.pad(t, ((2, 2), (2, 2), (0, 0)), constant_values=255)
    rows = []
    for i in (ids[int(k)] for k in a.images.split(",")):
        image = np.array(Image.open(f"{a.dataset}/JPEGImages/{i}.jpg").convert("RGB"))
        truth = np.array(Image.open(f"{a.dataset}/SegmentationClass/{i}.png"))
        on_object = (truth > 0) & (truth != 255)
        for n, run in enumerate([a.run] + ([a.also] if a.also else [])):
            blank = np.full_like(image, 255)
            tiles = [image, np.repeat(on_object[..., None], 3, 2).astype(np.uint8) * 255] if n == 0 else [blank, blank]
            before = np.zeros(on_object.shape, bool)
            t = 1
            while os.path.exists(f"{run}/erase/step-{t}/erased/{i}.png"):
                after = np.array(Image.open(f"{run}/erase/step-{t}/erased/{i}.png")) > 0
                tile = image // 3
                tile[before] = (90, 90, 90)
                tile[after & ~before & on_object] = (0, 230, 0)
                tile[after & ~before & ~on_object] = (240, 0, 0)
                tiles.append(tile)
                before, t = after, t + 1
            rows.append(np.concatenate([pad(x) for x in tiles], 1))
    width = max(r.shape[1] for r in rows)
    rows = [np.pad(r, ((0, 0), (0, width - r.shape[1]), (0, 0)), constant_values=255) for r in rows]
    Image.fromarray(np.concatenate(rows, 0)).save(a.figure, quality=85)


if __name__ == "__main__":
    main()
