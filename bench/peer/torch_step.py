#!/usr/bin/env python3
"""PyTorch peer of bench_step / bench_conv (a benchmark peer only; ssl does not
depend on torch).

ResNet-18 in torchvision's layout with the CIFAR stem (conv1 3x3 stride 1,
bn1, relu, no max pool, layer1..4 of BasicBlocks, adaptive average pool, no
fc), written by hand because torchvision is not installed. One training step:
forward in train mode, L = 0.5 * mean_n(sum(features^2)), backward, SGD
(lr 0.01, momentum 0.9, weight decay 5e-4), zero_grad.

Prints one machine-readable line per configuration:
  TORCH config=w16_n256 median_ms=... mean_ms=... min_ms=... cpu_ms=... steps=...
(cpu_ms: process CPU time per step, all threads; OpenMP may spin while waiting,
so it overstates the work somewhat.)
With --conv it also times F.conv2d forward / backward for the conv shapes of
bench_conv.cpp:
  TORCHCONV config=w16_n256 shape=l1_3x3_28 fwd_ms=... bwd_ms=...
"""
import argparse
import statistics
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class BasicBlock(nn.Module):
    def __init__(self, inp, planes, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(inp, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = None
        if stride != 1 or inp != planes:
            self.downsample = nn.Sequential(nn.Conv2d(inp, planes, 1, stride, bias=False), nn.BatchNorm2d(planes))

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        sc = x if self.downsample is None else self.downsample(x)
        return F.relu(out + sc)


class ResNet18Cifar(nn.Module):
    def __init__(self, in_channels, width):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, width, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        layers, inp = [], width
        for s in range(4):
            planes = width << s
            blocks = []
            for b in range(2):
                stride = 2 if (s > 0 and b == 0) else 1
                blocks.append(BasicBlock(inp, planes, stride))
                inp = planes
            layers.append(nn.Sequential(*blocks))
        self.layer1, self.layer2, self.layer3, self.layer4 = layers
        self.pool = nn.AdaptiveAvgPool2d(1)

    def forward(self, x):
        x = F.relu(self.bn1(self.conv1(x)))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return torch.flatten(self.pool(x), 1)


CONFIGS = {"w16_n256": (16, 256), "w64_n128": (64, 128)}


def summary(ms):
    return statistics.median(ms), statistics.mean(ms), min(ms)


def time_step(width, batch, warmup, steps):
    torch.manual_seed(0)
    net = ResNet18Cifar(1, width).train()
    opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    x = torch.randn(batch, 1, 28, 28)
    ms = []
    cpu0 = 0.0
    for i in range(warmup + steps):
        if i == warmup:
            cpu0 = time.process_time()
        t0 = time.perf_counter()
        f = net(x)
        loss = 0.5 * f.pow(2).sum(dim=1).mean()
        loss.backward()
        opt.step()
        opt.zero_grad()
        dt = (time.perf_counter() - t0) * 1e3
        if i >= warmup:
            ms.append(dt)
    cpu_ms = (time.process_time() - cpu0) * 1e3 / steps
    return ms, cpu_ms


def conv_shapes(w):
    # name, cin, cout, kernel, stride, pad, hw (same list as bench/shapes.hpp)
    return [("stem_3x3_28", 1, w, 3, 1, 1, 28), ("l1_3x3_28", w, w, 3, 1, 1, 28),
            ("l2_3x3s2_28", w, 2 * w, 3, 2, 1, 28), ("l2_3x3_14", 2 * w, 2 * w, 3, 1, 1, 14),
            ("l2_ds1x1s2_28", w, 2 * w, 1, 2, 0, 28), ("l3_3x3s2_14", 2 * w, 4 * w, 3, 2, 1, 14),
            ("l3_3x3_7", 4 * w, 4 * w, 3, 1, 1, 7), ("l3_ds1x1s2_14", 2 * w, 4 * w, 1, 2, 0, 14),
            ("l4_3x3s2_7", 4 * w, 8 * w, 3, 2, 1, 7), ("l4_3x3_4", 8 * w, 8 * w, 3, 1, 1, 4),
            ("l4_ds1x1s2_7", 4 * w, 8 * w, 1, 2, 0, 7)]


def time_conv(width, batch, reps=5):
    out = []
    for name, cin, cout, k, s, p, hw in conv_shapes(width):
        x = torch.randn(batch, cin, hw, hw, requires_grad=True)
        wt = torch.randn(cout, cin, k, k, requires_grad=True)
        y = F.conv2d(x, wt, None, s, p)
        dy = torch.randn_like(y)
        fwd, bwd = [], []
        for i in range(reps + 1):
            t0 = time.perf_counter()
            with torch.no_grad():
                F.conv2d(x, wt, None, s, p)
            t1 = time.perf_counter()
            y = F.conv2d(x, wt, None, s, p)
            t2 = time.perf_counter()
            gx, gw = torch.autograd.grad(y, (x, wt), dy)
            t3 = time.perf_counter()
            if i:
                fwd.append((t1 - t0) * 1e3)
                bwd.append((t3 - t2) * 1e3)
        out.append((name, statistics.median(fwd), statistics.median(bwd)))
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--config", action="append", choices=sorted(CONFIGS), help="default: all")
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--steps", type=int, default=0, help="timed steps (default 15 at width 16, 8 at width 64)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--conv", action="store_true", help="also time the single conv shapes")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    print(f"# torch {torch.__version__}, threads {torch.get_num_threads()}, mkldnn {torch.backends.mkldnn.is_available()}",
          flush=True)
    for name in a.config or sorted(CONFIGS):
        width, batch = CONFIGS[name]
        steps = a.steps or (15 if width <= 16 else 8)
        ms, cpu_ms = time_step(width, batch, a.warmup, steps)
        med, mean, mn = summary(ms)
        print(f"TORCH config={name} median_ms={med:.1f} mean_ms={mean:.1f} min_ms={mn:.1f} cpu_ms={cpu_ms:.1f} "
              f"steps={steps}", flush=True)
        if a.conv:
            for shape, f, b in time_conv(width, batch):
                print(f"TORCHCONV config={name} shape={shape} fwd_ms={f:.2f} bwd_ms={b:.2f}", flush=True)


if __name__ == "__main__":
    main()
