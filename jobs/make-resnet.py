#!/usr/bin/env python3
"""Writes a ResNet job for 28x28 images (the CIFAR ResNets of He et al. 2016, section 4.2):
a 3x3 stem, three stages of N basic blocks at 16, 32 and 64 channels (28x28, 14x14, 7x7), each
block conv-BN-ReLU-conv-BN plus its input, then ReLU; a stage's first block halves the size
with stride 2 and its shortcut is a 1x1 convolution and batch norm (option B); global average
pooling and one dense layer. Depth 6N + 2: N = 3 is ResNet-20. Convolutions pad
symmetrically (padding = 1 for 3x3), as PyTorch's ResNets do, so that the benchmark's PyTorch
twin (jobs/bench/torch_net.py) is the same network.

  jobs/make-resnet.py [--blocks N] [--width W] > job.ini   (W: the first stage's channels)
"""
import argparse

HEAD = """; Fashion-MNIST with a ResNet-{depth} ({params}): written by jobs/make-resnet.py{args}.
; Run: mpirun -np 2 build/mpinet train {path}
[data]
path = data/fashion-mnist.h5
{data_extra}
[train]
epochs = {epochs}
batch = 128
optimizer = sgd
lr = {lr}
momentum = 0.9
nesterov = true
weight_decay = 5e-4
schedule = cosine
warmup_epochs = 1
seed = 1

[augment]
crop_padding = 2
flip = horizontal
erasing = 0.25

[checkpoint]
dir = runs/fashion-resnet
every_epochs = 1
keep = 3
"""


def layer(**kv):
    return "\n[layer]\n" + "".join(f"{k} = {v}\n" for k, v in kv.items() if v is not None)


def conv_bn(filters, size, stride, name=None, inputs=None, act="relu"):
    """A convolution without bias and its batch norm (named `name`: what others read)."""
    c = dict(inputs=inputs, type="conv2d", filters=filters, size=size,
             stride=stride if stride != 1 else None, padding=size // 2 or None, bias="false")
    b = dict(name=name, type="batchnorm", activation=act)
    return layer(**c) + layer(**b)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--blocks", type=int, default=3)
    ap.add_argument("--width", type=int, default=16)
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--lr", type=float, default=0.1)
    ap.add_argument("--path", default="jobs/fashion-resnet.ini")
    a = ap.parse_args()
    out, prev = [], "stem"
    out.append(conv_bn(a.width, 3, 1, name="stem"))
    for s in range(3):
        ch = a.width << s
        for b in range(a.blocks):
            n = f"s{s + 1}b{b + 1}"
            stride = 2 if s > 0 and b == 0 else 1
            out.append(conv_bn(ch, 3, stride))
            out.append(conv_bn(ch, 3, 1, name=n + "_2", act=None))
            short = prev
            if stride != 1:  # the shortcut halves the size and widens too
                out.append(conv_bn(ch, 1, stride, name=n + "_proj", inputs=prev, act=None))
                short = n + "_proj"
            out.append(layer(name=n, type="add", inputs=f"{short}, {n}_2", activation="relu"))
            prev = n
    out.append(layer(type="global_avgpool"))
    out.append(layer(type="dense", units=10))
    args = "".join(f" --{k} {v}" for k, v in (("blocks", a.blocks), ("width", a.width))
                   if v != {"blocks": 3, "width": 16}[k])
    print(HEAD.format(depth=6 * a.blocks + 2, params=f"width {a.width}", args=args,
                      path=a.path, epochs=a.epochs, lr=a.lr, data_extra="").rstrip("\n"))
    print("".join(out), end="")


if __name__ == "__main__":
    main()
