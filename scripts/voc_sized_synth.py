#!/usr/bin/env python3
"""Turns a square synthetic dataset (`aepsl synth --size 500`) into one of PASCAL VOC's
typical shape, 500x375, for timing the VOC recipe (BENCHMARKS.md: VOC-scale cost).

    python3 scripts/voc_sized_synth.py SRC DST [--width 500 --height 375]

Images are resized with bilinear filtering (JPEG quality 90), masks with nearest neighbour
(palette kept), so every object keeps its label; the annotation XML's <size> is rewritten
(its boxes are not: aepsl reads only the object names). The lists and classes.txt are copied.
Needs Pillow (pip install pillow).
"""
import argparse
import os
import re
import shutil

from PIL import Image


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("src")
    parser.add_argument("dst")
    parser.add_argument("--width", type=int, default=500)
    parser.add_argument("--height", type=int, default=375)
    args = parser.parse_args()
    size = (args.width, args.height)
    for sub in ["JPEGImages", "SegmentationClass", "Annotations", "ImageSets/Segmentation"]:
        os.makedirs(os.path.join(args.dst, sub), exist_ok=True)
    for name in os.listdir(os.path.join(args.src, "JPEGImages")):
        with Image.open(os.path.join(args.src, "JPEGImages", name)) as im:
            im.convert("RGB").resize(size, Image.BILINEAR).save(os.path.join(args.dst, "JPEGImages", name), quality=90)
    for name in os.listdir(os.path.join(args.src, "SegmentationClass")):
        with Image.open(os.path.join(args.src, "SegmentationClass", name)) as mask:
            small = mask.resize(size, Image.NEAREST)
            small.putpalette(mask.getpalette())
            small.save(os.path.join(args.dst, "SegmentationClass", name))
    for name in os.listdir(os.path.join(args.src, "Annotations")):
        with open(os.path.join(args.src, "Annotations", name)) as fh:
            xml = fh.read()
        xml = re.sub(r"<width>\d+</width>", f"<width>{args.width}</width>", xml, count=1)
        xml = re.sub(r"<height>\d+</height>", f"<height>{args.height}</height>", xml, count=1)
        with open(os.path.join(args.dst, "Annotations", name), "w") as fh:
            fh.write(xml)
    lists = os.path.join(args.src, "ImageSets/Segmentation")
    for name in os.listdir(lists):
        shutil.copy(os.path.join(lists, name), os.path.join(args.dst, "ImageSets/Segmentation", name))
    for name in ["classes.txt"]:
        if os.path.exists(os.path.join(args.src, name)):
            shutil.copy(os.path.join(args.src, name), os.path.join(args.dst, name))


if __name__ == "__main__":
    main()
