#!/usr/bin/env python3
"""PyTorch DistributedDataParallel peer of bench_dist (a benchmark peer only;
ssl does not depend on torch).

The setup of `mpirun -np P bench_dist STEPS BATCH WIDTH METHODS`: ResNet-18 in
torchvision's layout with the CIFAR stem (torch_ssl.ResNet18Cifar, 3 input
channels, base width WIDTH) on 32x32x3 images in [0, 1], global batch BATCH
split over P processes (BATCH / P each), SGD (lr 0.05, momentum 0.9, weight
decay 5e-4), hardware threads / P torch threads per process; the first 2
steps are warm-up, steps/s is over the next STEPS. P processes on one
machine over gloo (torch.multiprocessing), the model wrapped in DDP (bucketed
gradient allreduce overlapped with backward; broadcast_buffers off, as two
forwards precede one backward); P = 1 runs without DDP.

  rotnet  the 4 rotations of each image (a random flip first), a 4-way linear
          head, cross entropy over the 4 B / P rows
  simclr  two views (random flip and a random shift by up to 4 px), projector
          Linear - BN1d - ReLU - Linear - BN1d (2048, 128), NT-Xent at
          temperature 0.5 with the negatives of all ranks
          (torch.distributed.nn.all_gather, which carries the gradient back)

--sync-bn converts the batch norms to nn.SyncBatchNorm (ssl synchronizes
them by default); PyTorch 1.13 runs SyncBatchNorm on GPUs only, so the
script says so and runs plain per-rank batch norm when it is refused.

Prints one line per run:
  TORCH_DDP method=rotnet ranks=2 threads=1 sync_bn=0 steps_per_s=... torch=1.13.0
"""
import argparse
import os
import sys
import time

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_ssl import ResNet18Cifar  # noqa: E402


class Model(nn.Module):
    def __init__(self, method, width):
        super().__init__()
        self.method = method
        self.backbone = ResNet18Cifar(3, width)
        d = self.backbone.feature_dim
        if method == "rotnet":
            self.head = nn.Linear(d, 4)
        else:
            self.head = nn.Sequential(nn.Linear(d, 2048, bias=False), nn.BatchNorm1d(2048), nn.ReLU(inplace=True),
                                      nn.Linear(2048, 128, bias=False), nn.BatchNorm1d(128))

    def forward(self, x):
        return self.head(self.backbone(x))


def flip(x, g):
    coin = torch.rand(x.shape[0], 1, 1, 1, generator=g) < 0.5
    return torch.where(coin, x.flip(3), x)


def shift(x, g):
    dy, dx = (int(v) for v in torch.randint(-4, 5, (2,), generator=g))
    return torch.roll(x, shifts=(dy, dx), dims=(2, 3))


def nt_xent(z1, z2, temperature, world):
    z = F.normalize(torch.cat([z1, z2]), dim=1)
    if world > 1:
        import torch.distributed.nn as dnn
        everyone = torch.cat(dnn.all_gather(z))  # rank-major, with the gradient of the gather
    else:
        everyone = z
    n2 = z.shape[0]
    me = dist.get_rank() if world > 1 else 0
    logits = z @ everyone.t() / temperature
    self_idx = torch.arange(n2) + me * n2
    logits[torch.arange(n2), self_idx] = float("-inf")
    positive = (torch.arange(n2) + n2 // 2) % n2 + me * n2
    return F.cross_entropy(logits, positive)


def worker(rank, a, result):
    world = a.ranks
    torch.set_num_threads(a.threads)
    if world > 1:
        os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
        os.environ.setdefault("MASTER_PORT", str(a.port))
        dist.init_process_group("gloo", rank=rank, world_size=world)
    torch.manual_seed(1)
    model = Model(a.method, a.width)
    sync_bn = 0
    if a.sync_bn and world > 1:
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
        sync_bn = 1
    if world > 1:
        try:
            model = nn.parallel.DistributedDataParallel(model, broadcast_buffers=False)
        except ValueError as e:  # SyncBatchNorm on CPU modules (PyTorch 1.13)
            if not sync_bn:
                raise
            result[rank] = "refused: " + str(e).splitlines()[0]
            dist.destroy_process_group()
            return
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
    n = a.batch // world
    g = torch.Generator().manual_seed(100 + rank)
    pool = torch.rand(8 * n, 3, 32, 32, generator=g)
    mean = pool.mean()
    t0 = None
    for step in range(2 + a.steps):
        if step == 2:
            if world > 1:
                dist.barrier()
            t0 = time.perf_counter()
        x = pool[(step % 8) * n:(step % 8 + 1) * n] - mean
        if a.method == "rotnet":
            v = flip(x, g)
            views = torch.cat([torch.rot90(v, -k, dims=(2, 3)) for k in range(4)])
            labels = torch.arange(4).repeat_interleave(n)
            try:
                loss = F.cross_entropy(model(views), labels)
            except ValueError as e:  # SyncBatchNorm on CPU (PyTorch 1.13)
                if sync_bn:
                    result[rank] = "refused: " + str(e).splitlines()[0]
                    return
                raise
        else:
            try:
                z1 = model(shift(flip(x, g), g))
                z2 = model(shift(flip(x, g), g))
            except ValueError as e:
                if sync_bn:
                    result[rank] = "refused: " + str(e).splitlines()[0]
                    return
                raise
            loss = nt_xent(z1, z2, 0.5, world)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    if world > 1:
        dist.barrier()
    result[rank] = "%.4f %d" % (a.steps / (time.perf_counter() - t0), sync_bn)
    if world > 1:
        dist.destroy_process_group()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--method", choices=["rotnet", "simclr"], default="rotnet")
    ap.add_argument("--ranks", type=int, default=2)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--width", type=int, default=16)
    ap.add_argument("--threads", type=int, default=0, help="torch threads per process (0: cores / ranks)")
    ap.add_argument("--sync-bn", action="store_true")
    ap.add_argument("--port", type=int, default=29533)
    a = ap.parse_args()
    if a.batch % a.ranks:
        sys.exit("torch_ddp: the batch %d is not divisible by %d ranks" % (a.batch, a.ranks))
    if a.threads <= 0:
        a.threads = max(1, (os.cpu_count() or 1) // a.ranks)
    manager = mp.Manager()
    result = manager.dict()
    if a.ranks == 1:
        worker(0, a, result)
    else:
        mp.spawn(worker, args=(a, result), nprocs=a.ranks, join=True)
    r = result[0]
    if r.startswith("refused"):
        print("TORCH_DDP method=%s ranks=%d sync_bn=1 %s" % (a.method, a.ranks, r))
        return
    sps, sync_bn = r.split()
    print("TORCH_DDP method=%s ranks=%d threads=%d sync_bn=%s steps_per_s=%s torch=%s"
          % (a.method, a.ranks, a.threads, sync_bn, sps, torch.__version__))


if __name__ == "__main__":
    main()
