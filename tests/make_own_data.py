#!/usr/bin/python3
"""make_own_data.py CASE DIR: HDF5 files as users already have them, written by h5py
(tests/own_data.sh). Nothing here is mpinet's layout: other dataset names, many files,
channel-last images, float64, int64 and int16 labels, no test split.

  sim      DIR/sim.h5: /inputs float64 (4000, 64) with per-feature `mean`/`std` array
           attributes, /outputs float64 (4000, 3) in physical units, no train/test split
  shards   DIR/nhwc/shard-0.h5 .. shard-199.h5: /images uint8 (24, 8, 8, 3) channel-last,
           /labels int64; DIR/nchw/...: the same images stored (24, 3, 8, 8). The class is
           the colour of one bright spot at a random place: only a model that reads the
           channels as channels can tell
  series   DIR/series.h5: /X float32 (2000, 20, 6), /y int16 (3 classes), no split
  dtypes   DIR/uint8.h5 .. float64.h5: the same small integers as x in each dtype (scale 1)
  bad      DIR/...: the bad inputs tests/own_data.sh expects one clear error for
"""
import os
import sys

import h5py
import numpy as np


def sim(d):
    rng = np.random.default_rng(1)
    x = rng.normal(size=(4000, 64)) * rng.uniform(0.5, 20, size=64) + rng.uniform(-50, 50, 64)
    z = (x - x.mean(0)) / x.std(0)
    w = rng.normal(size=(64, 3)) / 8
    y = np.tanh(z @ w) * np.array([1.0, 14.0, 0.1]) + np.array([0.0, 300.0, -2.0])
    with h5py.File(os.path.join(d, "sim.h5"), "w") as f:
        f["inputs"] = x
        f["inputs"].attrs["mean"] = x.mean(0)
        f["inputs"].attrs["std"] = x.std(0)
        f["outputs"] = y


def spots(n, seed):
    rng = np.random.default_rng(seed)
    img = rng.integers(0, 60, size=(n, 8, 8, 3), dtype=np.uint8)
    label = rng.integers(0, 3, size=n)
    r, c = rng.integers(0, 6, size=n), rng.integers(0, 6, size=n)
    img[np.arange(n), r, c, label] = 250
    return img, label.astype(np.int64)


def shards(d, files=200, rows=24):
    for layout in ("nhwc", "nchw"):
        os.makedirs(os.path.join(d, layout), exist_ok=True)
    for i in range(files):
        img, label = spots(rows, 100 + i)
        for layout, x in (("nhwc", img), ("nchw", img.transpose(0, 3, 1, 2))):
            with h5py.File(os.path.join(d, layout, f"shard-{i}.h5"), "w") as f:
                f["images"] = np.ascontiguousarray(x)
                f["labels"] = label
                f.attrs["classes"] = 3


def series(d):
    rng = np.random.default_rng(3)
    n = 2000
    y = rng.integers(0, 3, size=n)
    t = np.linspace(0, 2 * np.pi, 20)
    x = rng.normal(scale=0.5, size=(n, 20, 6)).astype(np.float32)
    x[:, :, 0] += np.sin((y[:, None] + 1) * t)  # the class is the frequency of feature 0
    with h5py.File(os.path.join(d, "series.h5"), "w") as f:
        f["X"] = x
        f["y"] = y.astype(np.int16)


def dtypes(d):
    # the same small integers stored as every dtype mpinet reads, scale 1: one training
    rng = np.random.default_rng(7)
    x = rng.integers(0, 100, size=(600, 12))
    y = (x[:, 0] > x[:, 1]).astype(np.int64) + 2 * (x[:, 2] > 50)
    for t in ("uint8", "int8", "uint16", "int16", "int32", "float16", "float32", "float64"):
        with h5py.File(os.path.join(d, f"{t}.h5"), "w") as f:
            f["x"] = x.astype(t)
            f["x"].attrs["scale"] = 1.0
            f["y"] = y.astype({"uint8": "uint8", "int8": "int8"}.get(t, "int64"))
            f.attrs["classes"] = 4


def bad(d):
    # many files, one of which differs: in shape, in dtype; labels out of range in file 137
    for name, shape, dtype, label_at in (("shape", (8, 8, 4), np.uint8, None),
                                         ("dtype", (8, 8, 3), np.float32, None),
                                         ("label", (8, 8, 3), np.uint8, 137)):
        os.makedirs(os.path.join(d, name), exist_ok=True)
        for i in range(200):
            img, label = spots(4, i)
            if i == 137 and label_at is None:
                img = np.zeros((4,) + shape, dtype=dtype)
            if i == label_at:
                label[2] = 7
            with h5py.File(os.path.join(d, name, f"s{i:03d}.h5"), "w") as f:
                f["images"], f["labels"] = img, label
                f.attrs["classes"] = 3
    # y shorter than x in one file of a list
    for i, n in enumerate((30, 29)):
        with h5py.File(os.path.join(d, f"short{i}.h5"), "w") as f:
            f["x"] = np.zeros((30, 4), np.float32)
            f["y"] = np.zeros(n, np.int32)
            f.attrs["classes"] = 2
    # rank-1 samples; normalisation arrays of the wrong length; float y
    rng = np.random.default_rng(5)
    with h5py.File(os.path.join(d, "flat.h5"), "w") as f:
        f["x"] = rng.normal(size=(100, 5)).astype(np.float32)
        f["x"].attrs["mean"] = np.zeros(4)
        f["x"].attrs["std"] = np.ones(4)
        f["y"] = rng.normal(size=100)
        f["labels"] = rng.integers(0, 2, size=100).astype(np.int32)
        f.attrs["classes"] = 2


if __name__ == "__main__":
    case, out = sys.argv[1], sys.argv[2]
    os.makedirs(out, exist_ok=True)
    {"sim": sim, "shards": shards, "series": series, "dtypes": dtypes, "bad": bad}[case](out)
