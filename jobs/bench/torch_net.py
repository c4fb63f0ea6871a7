#!/usr/bin/python3
"""torch_net.py: an mpinet network built from PyTorch's own layers, from the job's config (the
[layer] sections, `inputs` included), optionally loaded from an mpinet checkpoint. The
benchmark trains it side by side with mpinet (torch_bench.py); the tests compare its forward
pass with `mpinet predict` (tests/graph.sh).

  torch_net.py CHECKPOINT.h5 DATA.h5 X PREDICTIONS.h5 [RTOL]
      recomputes the predictions of `mpinet predict` from the checkpoint's arrays (and the
      config it carries) in float64, fails unless every output agrees within RTOL (1e-4)

Layer types: conv2d, batchnorm, dense, add, concat, global_avgpool, maxpool, avgpool,
flatten, reshape, dropout; activations none, relu, tanh, sigmoid, softmax.
"""
import re
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F


def parse_layers(text):
    """The [layer] sections in order, each a dict of its keys."""
    layers, cur = [], None
    for line in text.splitlines():
        line = re.sub(r"[;#].*", "", line).strip()
        if not line:
            continue
        m = re.match(r"\[(\w+)\]", line)
        if m:
            cur = {} if m.group(1) == "layer" else None
            if cur is not None:
                layers.append(cur)
        elif cur is not None:
            k, v = (s.strip() for s in line.split("=", 1))
            cur[k] = v
    return layers


def _pair(s):
    a = [int(v) for v in s.split(",")]
    return (a[0], a[-1])


def _pads(n, k, stride, padding):
    """(before, after, out) along one dimension, as mpinet's conv2d and pools pad."""
    if padding == "same":
        out = (n + stride - 1) // stride
        total = max((out - 1) * stride + k - n, 0)
        return total // 2, total - total // 2, out
    p = 0 if padding in ("valid", None) else int(padding)
    return p, p, (n + 2 * p - k) // stride + 1


ACT = {"none": lambda x: x, "relu": torch.relu, "tanh": torch.tanh, "sigmoid": torch.sigmoid,
       "softmax": lambda x: torch.softmax(x, 1), "leaky_relu": F.leaky_relu, "elu": F.elu}


class Net(nn.Module):
    """Each [layer] a module (or a function of its inputs), wired by `inputs`."""

    def __init__(self, layers, in_shape):
        super().__init__()
        self.spec, self.mods, self.pads = [], nn.ModuleList(), []
        names, shapes = {}, []
        for i, l in enumerate(layers):
            t = l["type"]
            srcs = [s.strip() for s in l["inputs"].split(",")] if "inputs" in l else None
            ins = [i - 1] if srcs is None else [-1 if s == "input" else names[s] for s in srcs]
            shp = [in_shape if j < 0 else shapes[j] for j in ins]
            s0, mod, pad = shp[0], nn.Identity(), None
            if t == "conv2d":
                kh, kw = _pair(l["size"])
                st = int(l.get("stride", 1))
                ph = _pads(s0[1], kh, st, l.get("padding", "valid"))
                pw = _pads(s0[2], kw, st, l.get("padding", "valid"))
                mod = nn.Conv2d(s0[0], int(l["filters"]), (kh, kw), st,
                                bias=l.get("bias", "true") == "true")
                pad, out = (pw[0], pw[1], ph[0], ph[1]), (int(l["filters"]), ph[2], pw[2])
            elif t == "batchnorm":
                bn = nn.BatchNorm2d if len(s0) == 3 else nn.BatchNorm1d
                mod, out = bn(s0[0], eps=float(l.get("eps", 1e-5))), s0
            elif t == "dense":
                n = 1
                for d in s0:
                    n *= d
                mod, out = nn.Linear(n, int(l["units"])), (int(l["units"]),)
            elif t in ("maxpool", "avgpool"):
                k = _pair(l.get("size", "2"))
                st = int(l.get("stride", k[0]))
                ph = _pads(s0[1], k[0], st, l.get("padding", "valid"))
                pw = _pads(s0[2], k[1], st, l.get("padding", "valid"))
                cls = nn.MaxPool2d if t == "maxpool" else nn.AvgPool2d
                mod, out = cls(k, st), (s0[0], ph[2], pw[2])
                pad = (pw[0], pw[1], ph[0], ph[1]) if ph[0] or ph[1] or pw[0] or pw[1] else None
            elif t == "global_avgpool":
                out = (s0[0],)
            elif t == "add":
                out = s0
            elif t == "concat":
                out = (sum(s[0] for s in shp),) + tuple(s0[1:])
            elif t == "flatten":
                n = 1
                for d in s0:
                    n *= d
                out = (n,)
            elif t == "reshape":
                out = tuple(int(v) for v in l["shape"].split(","))
            elif t == "dropout":
                out = s0
            else:
                raise SystemExit(f"torch_net.py: layer type {t} is not translated")
            if "name" in l:
                names[l["name"]] = i
            shapes.append(out)
            self.mods.append(mod)
            self.pads.append(pad)
            self.spec.append((t, ins, out, l.get("activation", "none")))

    def forward(self, x):
        outs = []
        for (t, ins, out, act), mod, pad in zip(self.spec, self.mods, self.pads):
            xs = [x if j < 0 else outs[j] for j in ins]
            h = xs[0]
            if t in ("conv2d", "maxpool", "avgpool"):
                if pad is not None:  # mpinet pads max pools with -inf, others with zeros
                    h = F.pad(h, pad, value=float("-inf") if t == "maxpool" else 0.0)
                h = mod(h)
            elif t == "dense":
                h = mod(h.flatten(1))
            elif t == "batchnorm":
                h = mod(h)
            elif t == "global_avgpool":
                h = h.mean((2, 3))
            elif t == "add":
                h = sum(xs[1:], xs[0])
            elif t == "concat":
                h = torch.cat(xs, 1)
            elif t in ("flatten", "reshape"):
                h = h.reshape((len(h),) + out)
            outs.append(ACT[act](h))
        return outs[-1]


def load(net, ck):
    """The checkpoint's parameters and batch-norm statistics into net (tensors <NN>_<type>)."""
    with torch.no_grad():
        for i, ((t, _, _, _), mod) in enumerate(zip(net.spec, net.mods)):
            g = f"{i:02d}_{t}"
            P = ck["params"][g] if g in ck["params"] else {}
            tensor = lambda a: torch.tensor(a[...]).to(torch.get_default_dtype())
            if t in ("conv2d", "dense"):
                mod.weight[...] = tensor(P["W"]).reshape(mod.weight.shape)
                if mod.bias is not None:
                    mod.bias[...] = tensor(P["b"])
            elif t == "batchnorm":
                mod.weight[...], mod.bias[...] = tensor(P["gamma"]), tensor(P["beta"])
                S = ck["state"][g]
                mod.running_mean[...] = tensor(S["running_mean"])
                mod.running_var[...] = tensor(S["running_var"])


def main():
    import h5py
    import numpy as np

    ckpt, data, xname, pred = sys.argv[1:5]
    rtol = float(sys.argv[5]) if len(sys.argv) > 5 else 1e-4
    torch.set_default_dtype(torch.float64)
    with h5py.File(ckpt, "r") as ck, h5py.File(data, "r") as f, h5py.File(pred, "r") as p:
        cfg = ck.attrs["config"]
        layers = parse_layers(cfg.decode() if isinstance(cfg, bytes) else cfg)
        x = f[xname][...]
        shape = x.shape[1:]
        x = x.reshape(len(x), -1).astype(np.float32) * ck["input/a"][...] + ck["input/b"][...]
        net = Net(layers, shape if len(shape) == 3 else (int(np.prod(shape)),))
        load(net, ck)
        net.eval()
        with torch.no_grad():
            want = net(torch.tensor(x.astype(np.float64)).reshape((len(x),) + shape)).numpy()
        if layers[-1].get("activation", "none") == "none":  # cross-entropy: predict's softmax
            want = torch.softmax(torch.tensor(want), 1).numpy()
        got = p["predictions"][...]
    scale = np.abs(want).max(0)
    worst = (np.abs(got - want).max(0) / np.maximum(scale, 1e-30)).max()
    print(f"{len(got)} rows, {len(layers)} layers: worst relative difference from PyTorch "
          f"{worst:.3g} (limit {rtol})")
    if not worst <= rtol:
        sys.exit(f"FAIL: mpinet predict differs from PyTorch's layers by {worst:.3g}")


if __name__ == "__main__":
    main()
