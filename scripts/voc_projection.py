#!/usr/bin/env python3
"""Projects the time of the VOC 2012 recipe (configs/voc12.json) on full train_aug from
rates measured on two cores (BENCHMARKS.md: VOC-scale cost). Standard library only.

    python3 scripts/voc_projection.py scripts/voc_projection_inputs.json

The inputs file holds images per second with 2 threads on one machine (the committed one:
BENCHMARKS.md, VOC-scale cost, says which figures are measured and which assumed):
  train      largefov training images/s at 321x321 crops (batch 10)
  cam        erasing CAM images/s at 500x375 (forward + CAM + files)
  masks      pseudo-mask images/s
  predict    prediction images/s at 500x375 with the dense CRF (PSL+ masks, and val: aepsl run
             scores PSL and PSL+ there, and the final model's overlays reuse its label maps)
  scaling_1_to_2  training speed-up from 1 to 2 threads (measured)

Assumptions (printed with the table):
- work per image is fixed: VOC counts are 10,582 train_aug and 1,449 val images; 4 erasing
  steps of 5 epochs; PSL and PSL+ 20 epochs each; every image has VOC's size;
- on one machine with c cores, per-image stages (CAMs, masks, prediction) run as c/2
  independent shards of 2 threads (they split images, no communication), so they scale
  linearly from the 2-core rate; training runs as one data-parallel job whose per-core
  speed falls by the measured 1 -> 2 thread efficiency once more for every doubling of
  cores beyond 2 (a pessimistic extrapolation, as oneDNN's convolutions keep more cores busy
  with batch 10 than this implies);
- across M machines of 16 cores (MPI, one rank per machine, global batch 10 for M <= 10 and
  M for M > 10, as every rank needs an image), a training step costs the slowest rank's
  share of the batch plus one ring allreduce of the 82.1 MB of gradients, modelled as in
  BENCHMARKS.md (Data-parallel training): 2 (M - 1) / M x S x 8 / 10 Gbit/s + 2 (M - 1) x
  50 us + 16.9 ms of packing; per-image stages split images over every core of every machine.
"""
import json
import math
import sys

TRAIN_AUG, VAL = 10582, 1449
STEPS, ERASE_EPOCHS, SEG_EPOCHS = 4, 5, 20


def training_rate(rates, cores):
    """Images/s of one training job on `cores` cores of one machine."""
    efficiency = rates["scaling_1_to_2"] / 2  # speed-up per doubling, relative to ideal
    doublings = max(0.0, math.log2(cores / 2))
    return rates["train"] * (cores / 2) * efficiency ** doublings


def stage_hours(rates, cores_per_machine, machines):
    per_image_cores = cores_per_machine * machines
    shard = per_image_cores / 2  # independent 2-thread shards
    train_images = STEPS * ERASE_EPOCHS * TRAIN_AUG
    if machines == 1:
        train_rate = training_rate(rates, cores_per_machine)
        seg_rate = train_rate
    else:
        batch = 10 if machines <= 10 else machines
        per_rank = math.ceil(batch / machines)
        compute = per_rank / training_rate(rates, cores_per_machine)
        communicate = 2 * (machines - 1) / machines * 82.1e6 * 8 / 10e9 + 2 * (machines - 1) * 50e-6 + 0.0169
        train_rate = batch / (compute + communicate)
        seg_rate = train_rate
    hours = {
        "erase: training (4 x 5 epochs)": train_images / train_rate,
        "erase: CAMs (4 x 10,582)": STEPS * TRAIN_AUG / (rates["cam"] * shard),
        "masks (10,582)": TRAIN_AUG / (rates["masks"] * shard),
        "train-seg: PSL (20 epochs)": SEG_EPOCHS * TRAIN_AUG / seg_rate,
        "train-seg: PSL+ masks (predict + CRF, 10,582)": TRAIN_AUG / (rates["predict"] * shard),
        "train-seg: PSL+ (20 epochs)": SEG_EPOCHS * TRAIN_AUG / seg_rate,
        "predict val + CRF (1,449, PSL and PSL+)": 2 * VAL / (rates["predict"] * shard),
    }
    return {k: v / 3600 for k, v in hours.items()}


def main():
    rates = json.load(open(sys.argv[1]))
    setups = [("2 cores", 2, 1), ("16 cores", 16, 1), ("64 cores", 64, 1),
              ("4 machines x 16 cores", 16, 4), ("16 machines x 16 cores", 16, 16)]
    table = {name: stage_hours(rates, c, m) for name, c, m in setups}
    stages = list(next(iter(table.values())).keys())
    print("| stage | " + " | ".join(name for name, _, _ in setups) + " |")
    print("|---|" + "---:|" * len(setups))
    for stage in stages:
        print(f"| {stage} | " + " | ".join(f"{table[name][stage]:.1f}" for name, _, _ in setups) + " |")
    print("| **total (hours)** | " + " | ".join(f"**{sum(table[name].values()):.1f}**" for name, _, _ in setups) + " |")


if __name__ == "__main__":
    main()
