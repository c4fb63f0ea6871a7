#!/usr/bin/python3
"""predict_check.py KIND CHECKPOINT DATA X PREDICTIONS: recomputes `mpinet predict`'s outputs
outside mpinet, from the checkpoint's own arrays (tests/own_data.sh), and fails unless they
agree: the MLP by an h5py + numpy forward pass (relative 1e-5), the CNN and the LSTM by
PyTorch's own layers loaded with the checkpoint's parameters (relative 1e-4).

  mlp-regression  dense(tanh) -> dense, targets standardised: outputs * std + mean
  cnn-nhwc        conv2d 1x1 (relu) -> maxpool 3 -> dense, softmax; X is channel-last uint8
  lstm            lstm -> dense, softmax
"""
import sys

import h5py
import numpy as np


def inputs(ck, data, name, nhwc=False):
    """The model's input rows: stored values through the checkpoint's /input (a, b)."""
    with h5py.File(data, "r") as f:
        x = f[name][...]
    if nhwc:
        x = x.transpose(0, 3, 1, 2)
    x = x.reshape(len(x), -1).astype(np.float32)  # uint8 exactly; float64 rounded as HDF5 does
    a, b = ck["input/a"][...], ck["input/b"][...]
    return x * a + b


def softmax(z):
    z = z - z.max(1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(1, keepdims=True)


def compare(got, want, rtol, what):
    scale = np.abs(want).max(0)
    worst = (np.abs(got - want).max(0) / np.maximum(scale, 1e-30)).max()
    print(f"{what}: {len(got)} rows, worst relative difference {worst:.3g} (limit {rtol})")
    if not worst <= rtol:
        sys.exit(f"FAIL: {what}: mpinet predict differs from the reference by {worst:.3g}")


def main():
    kind, ckpt, data, xname, pred = sys.argv[1:6]
    with h5py.File(ckpt, "r") as ck, h5py.File(pred, "r") as p:
        got = p["predictions"][...]
        P = {k: ck["params"][k] for k in ck["params"]}
        if kind == "mlp-regression":
            x = inputs(ck, data, xname).astype(np.float64)
            l0, l1 = sorted(P)
            h = np.tanh(x @ P[l0]["W"][...].T.astype(np.float64) + P[l0]["b"][...])
            out = h @ P[l1]["W"][...].T.astype(np.float64) + P[l1]["b"][...]
            want = out * ck["input/target_std"][...] + ck["input/target_mean"][...]
            compare(got, want, 1e-5, "MLP vs numpy")
            return
        import torch

        torch.set_default_dtype(torch.float64)
        with torch.no_grad():
            if kind == "cnn-nhwc":
                conv, dense = sorted(P)[0], sorted(P)[-1]
                W = P[conv]["W"][...]
                x = torch.tensor(inputs(ck, data, xname, nhwc=True).astype(np.float64))
                with h5py.File(data, "r") as f:
                    h, w, c = f[xname].shape[1:]
                layer = torch.nn.Conv2d(c, W.shape[0], W.shape[2])
                layer.weight[...] = torch.tensor(W.astype(np.float64))
                layer.bias[...] = torch.tensor(P[conv]["b"][...].astype(np.float64))
                y = torch.nn.functional.max_pool2d(torch.relu(layer(x.reshape(-1, c, h, w))), 3)
                fc = torch.nn.Linear(P[dense]["W"].shape[1], P[dense]["W"].shape[0])
                fc.weight[...] = torch.tensor(P[dense]["W"][...].astype(np.float64))
                fc.bias[...] = torch.tensor(P[dense]["b"][...].astype(np.float64))
                want = torch.softmax(fc(y.flatten(1)), 1).numpy()
                compare(got, want, 1e-4, "CNN vs PyTorch")
            elif kind == "lstm":
                rec, dense = sorted(P)
                Wx = P[rec]["Wx"][...]
                hidden, feats = Wx.shape[0] // 4, Wx.shape[1]
                lstm = torch.nn.LSTM(feats, hidden, batch_first=True)
                lstm.weight_ih_l0[...] = torch.tensor(Wx.astype(np.float64))
                lstm.weight_hh_l0[...] = torch.tensor(P[rec]["Wh"][...].astype(np.float64))
                lstm.bias_ih_l0[...] = torch.tensor(P[rec]["b"][...].astype(np.float64))
                lstm.bias_hh_l0.zero_()
                x = torch.tensor(inputs(ck, data, xname).astype(np.float64))
                _, (hn, _) = lstm(x.reshape(len(x), -1, feats))
                fc = torch.nn.Linear(hidden, P[dense]["W"].shape[0])
                fc.weight[...] = torch.tensor(P[dense]["W"][...].astype(np.float64))
                fc.bias[...] = torch.tensor(P[dense]["b"][...].astype(np.float64))
                want = torch.softmax(fc(hn[0]), 1).numpy()
                compare(got, want, 1e-4, "LSTM vs PyTorch")
            else:
                sys.exit(f"unknown kind {kind}")
        if "classes" in p:
            if not np.array_equal(p["classes"][...], got.argmax(1)):
                sys.exit("FAIL: /classes is not the argmax of /predictions")


if __name__ == "__main__":
    main()
