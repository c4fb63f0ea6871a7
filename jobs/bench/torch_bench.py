#!/usr/bin/python3
"""PyTorch side of mpinet's benchmark suite: the same models, batch, data and thread
settings, one process or DistributedDataParallel over gloo. Prints one JSON line per run.

usage: torch_bench.py MODEL RANKS STEPS   (MODEL: mlp | wide-mlp | cnn | resnet)

resnet is jobs/bench/resnet.ini's graph, built by torch_net.py from PyTorch's own layers.
"""
import gzip, json, os, resource, sys, time

import numpy as np
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn as nn

SRC = "/usr/share/datasets/fashion-mnist"
BATCH = {"mlp": 128, "wide-mlp": 256, "cnn": 128, "resnet": 128}
LR = {"mlp": 0.05, "wide-mlp": 0.05, "cnn": 0.02, "resnet": 0.1}  # as in the .ini files


def load_images():
    with gzip.open(os.path.join(SRC, "train-images-idx3-ubyte.gz")) as f:
        x = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 1, 28, 28)
    with gzip.open(os.path.join(SRC, "train-labels-idx1-ubyte.gz")) as f:
        y = np.frombuffer(f.read(), np.uint8, offset=8).astype(np.int64)
    x = (x.astype(np.float32) / 255.0 - 0.2860) / 0.3530  # the usual whole-set float tensor
    return torch.from_numpy(x), torch.from_numpy(y)


def model(name):
    if name == "resnet":
        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
        import torch_net

        with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "resnet.ini")) as f:
            return torch_net.Net(torch_net.parse_layers(f.read()), (1, 28, 28))
    if name == "mlp":
        return nn.Sequential(nn.Flatten(), nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 128),
                             nn.ReLU(), nn.Linear(128, 10))
    if name == "wide-mlp":
        return nn.Sequential(nn.Flatten(), nn.Linear(784, 1024), nn.ReLU(), nn.Linear(1024, 1024),
                             nn.ReLU(), nn.Linear(1024, 10))
    return nn.Sequential(nn.Conv2d(1, 32, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(32, 64, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Flatten(), nn.Linear(64 * 7 * 7, 1024), nn.ReLU(), nn.Linear(1024, 10))


def run(rank, name, ranks, steps, out):
    torch.set_num_threads(1)
    torch.manual_seed(1)
    if ranks > 1:
        dist.init_process_group("gloo", init_method="tcp://127.0.0.1:29533", rank=rank,
                                world_size=ranks)
    x, y = load_images()
    net = model(name)
    if ranks > 1:
        net = nn.parallel.DistributedDataParallel(net)
    opt = torch.optim.SGD(net.parameters(), lr=LR[name], momentum=0.9)
    loss_fn = nn.CrossEntropyLoss()
    local = BATCH[name] // ranks
    perm = torch.randperm(x.shape[0])
    warmup = max(3, steps // 10)
    for step in range(warmup + steps):
        if step == warmup:
            if ranks > 1:
                dist.barrier()
            t0 = time.perf_counter()
        g = (step * BATCH[name]) % (x.shape[0] - BATCH[name])
        idx = perm[g + rank * local: g + (rank + 1) * local]
        opt.zero_grad()
        loss = loss_fn(net(x[idx]), y[idx])
        loss.backward()
        opt.step()
    if ranks > 1:
        dist.barrier()
    seconds = time.perf_counter() - t0
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    if rank == 0:
        out.put({"impl": "pytorch", "model": name, "ranks": ranks, "batch": BATCH[name],
                 "steps": steps, "samples_per_s": steps * BATCH[name] / seconds,
                 "peak_rss_mb": rss, "torch": torch.__version__})
    if ranks > 1:
        dist.destroy_process_group()


def main():
    name, ranks, steps = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    if ranks == 1:
        run(0, name, 1, steps, out)
    else:
        mp.spawn(run, args=(name, ranks, steps, out), nprocs=ranks, join=True)
    print(json.dumps(out.get()))


if __name__ == "__main__":
    main()
