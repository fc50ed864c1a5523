#!/usr/bin/env python3
"""PyTorch peer of `ssl train --method split_brain` (bench/README.md, "Split-brain
on wallpaper crops"): the same recipe on the same files, side by side.

A quality peer only: ssl does not depend on torch.

    /usr/bin/python3 bench/peer/torch_split_brain.py --data DIR/wall --eval-data DIR/stamps \
        [--epochs 3] [--batch 64] [--width 16] [--size 32] [--holdout 0.2] [--seed 0] [--threads 2] [--baseline]

The recipe, mirroring include/ssl/split_brain.hpp and its parts:

* data: every PNG of --data (unlabelled), and of --eval-data's class folders,
  read as RGB, centre-cropped to a square and resized to --size (PIL,
  bilinear with antialias); --holdout of each class of --eval-data held out
  (seeded, stratified: a different draw of the 20 % than ssl's, so the test
  images differ);
* views: random resized crop scale (0.5, 1), ratio (3/4, 4/3), flip 0.5, then
  sRGB -> CIE Lab (D65), input [L / 50 - 1, a / 100, b / 100];
* targets: per cell of an 8 x 8 grid (4 x 4 px at 32 px) the cell's mean Lab
  colour: its ab bin among the in-gamut bins of the 10-unit grid (nearest
  centre; a cell out of gamut goes to the nearest in-gamut centre; the set
  computed from the faces of the 8-bit sRGB cube: 261 bins) and its L bin
  (100 uniform bins on [0, 100]);
* network: two ResNet-18s (CIFAR stem) of half width (--width / 2), one on
  L, one on ab; each a hypercolumn head on its own taps (the stem's relu,
  layer1 .. layer4) resized bilinearly to the 8 x 8 grid, concatenated,
  Linear(D, 256) - ReLU - Dropout(0.5) - Linear(256, Q): half 1 predicts the
  261 ab bins, half 2 the 100 L bins; loss CE(ab) + CE(L), row means;
* optimizer: SGD momentum 0.9, weight decay 5e-4, lr 0.1 x batch / 256,
  linear warm-up over half an epoch then cosine (torch_ssl.lr_at);
* evaluation: both halves' pooled features concatenated (128 at width 16) of
  the whole image (resize + centre crop as above, Lab scaled), kNN k 200
  T 0.1 and the linear probe (torch_ssl's), on the held-out stamps.

Prints one line at the end:
  TORCH_SPLIT_BRAIN epochs=... steps=... train_seconds=... first_loss=... last_loss=... knn_top1=... linear_top1=...
"""
import argparse
import math
import os
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch_ssl  # noqa: E402  (ResNet18Cifar, knn_top1, linear_probe_top1, lr_at)


def read_rgb(path, size):
    im = Image.open(path).convert("RGB")
    w, h = im.size
    s = min(w, h)
    im = im.crop(((w - s) // 2, (h - s) // 2, (w - s) // 2 + s, (h - s) // 2 + s))
    im = im.resize((size, size), Image.BILINEAR)
    return np.asarray(im, dtype=np.uint8).transpose(2, 0, 1)


def read_folder(d, size):
    names = sorted(f for f in os.listdir(d) if f.lower().endswith(".png"))
    return np.stack([read_rgb(os.path.join(d, f), size) for f in names])


def read_classes(d, size):
    xs, ys = [], []
    for k, c in enumerate(sorted(e for e in os.listdir(d) if os.path.isdir(os.path.join(d, e)))):
        x = read_folder(os.path.join(d, c), size)
        xs.append(x)
        ys += [k] * len(x)
    return np.concatenate(xs), np.array(ys, dtype=np.int64)


def srgb_to_lab(x):
    """(N, 3, H, W) in [0, 1] -> (N, 3, H, W) CIE L*a*b* (D65)."""
    lin = torch.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055) ** 2.4)
    m = torch.tensor([[0.4124564, 0.3575761, 0.1804375],
                      [0.2126729, 0.7151522, 0.0721750],
                      [0.0193339, 0.1191920, 0.9503041]], dtype=x.dtype)
    xyz = torch.einsum("ij,njhw->nihw", m, lin)
    white = torch.tensor([0.95047, 1.0, 1.08883], dtype=x.dtype).view(1, 3, 1, 1)
    t = xyz / white
    d = 6.0 / 29.0
    f = torch.where(t > d ** 3, t.clamp_min(1e-12) ** (1.0 / 3.0), t / (3 * d * d) + 4.0 / 29.0)
    L = 116 * f[:, 1] - 16
    a = 500 * (f[:, 0] - f[:, 1])
    b = 200 * (f[:, 1] - f[:, 2])
    return torch.stack([L, a, b], 1)


class AbBins:
    """The in-gamut ab bins of the 10-unit grid, from the 6 faces of the 8-bit cube."""

    def __init__(self):
        v = torch.arange(256, dtype=torch.float64) / 255
        g1, g2 = torch.meshgrid(v, v, indexing="ij")
        faces = []
        for axis in range(3):
            for value in (0.0, 1.0):
                rgb = [None, None, None]
                rgb[axis] = torch.full_like(g1, value)
                others = [i for i in range(3) if i != axis]
                rgb[others[0]], rgb[others[1]] = g1, g2
                faces.append(torch.stack(rgb, 0).reshape(3, -1))
        rgb = torch.cat(faces, 1).T.reshape(-1, 3, 1, 1)
        lab = srgb_to_lab(rgb).reshape(-1, 3)
        cells = torch.round(lab[:, 1:] / 10).to(torch.int64)
        uniq = sorted(set(map(tuple, cells.tolist())))
        self.centres = torch.tensor(uniq, dtype=torch.float64) * 10
        self.count = len(uniq)
        # a lookup over the cells -15..15: the bin of a cell, or of the nearest in-gamut centre
        self.lo, n = -15, 31
        ii, jj = torch.meshgrid(torch.arange(n) + self.lo, torch.arange(n) + self.lo, indexing="ij")
        pts = torch.stack([ii, jj], -1).reshape(-1, 2).to(torch.float64) * 10
        index = {c: k for k, c in enumerate(uniq)}
        table = torch.empty(n * n, dtype=torch.int64)
        for q, (i, j) in enumerate(torch.stack([ii, jj], -1).reshape(-1, 2).tolist()):
            table[q] = index.get((i, j), -1)
        far = table < 0
        table[far] = torch.cdist(pts[far], self.centres).argmin(1)
        self.table, self.n = table, n

    def bin_of(self, a, b):
        i = (torch.round(a / 10).to(torch.int64) - self.lo).clamp(0, self.n - 1)
        j = (torch.round(b / 10).to(torch.int64) - self.lo).clamp(0, self.n - 1)
        return self.table[i * self.n + j]


def random_resized_crop_flip(x, size, g):
    """x (N, C, H, W) float -> (N, C, size, size): crop scale (0.5, 1), ratio (3/4, 4/3), flip 0.5."""
    n, _, H, W = x.shape
    out = torch.empty(n, x.shape[1], size, size)
    for i in range(n):
        for _ in range(10):
            area = H * W * float(torch.empty(1).uniform_(0.5, 1.0, generator=g))
            logr = float(torch.empty(1).uniform_(math.log(3 / 4), math.log(4 / 3), generator=g))
            w = int(round(math.sqrt(area * math.exp(logr))))
            h = int(round(math.sqrt(area / math.exp(logr))))
            if 0 < w <= W and 0 < h <= H:
                break
        else:
            h, w = H, W
        top = int(torch.randint(0, H - h + 1, (1,), generator=g))
        left = int(torch.randint(0, W - w + 1, (1,), generator=g))
        c = x[i:i + 1, :, top:top + h, left:left + w]
        c = F.interpolate(c, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
        if float(torch.rand(1, generator=g)) < 0.5:
            c = c.flip(3)
        out[i] = c[0]
    return out.clamp(0, 1)


def scaled(lab):
    return torch.stack([lab[:, 0] / 50 - 1, lab[:, 1] / 100, lab[:, 2] / 100], 1)


class Half(nn.Module):
    """A half-width ResNet-18 and its hypercolumn head."""

    def __init__(self, in_channels, width, grid, hidden, outputs):
        super().__init__()
        self.net = torch_ssl.ResNet18Cifar(in_channels, width)
        d = width + width + 2 * width + 4 * width + 8 * width
        self.grid = grid
        self.fc1, self.fc2 = nn.Linear(d, hidden), nn.Linear(hidden, outputs)
        self.drop = nn.Dropout(0.5)

    def taps(self, x):
        t = [F.relu(self.net.bn1(self.net.conv1(x)))]
        for stage in self.net.layers:
            t.append(stage(t[-1]))
        return t

    def forward(self, x):
        t = self.taps(x)
        h = torch.cat([F.interpolate(m, size=(self.grid, self.grid), mode="bilinear", align_corners=False) for m in t], 1)
        h = h.permute(0, 2, 3, 1).reshape(-1, h.shape[1])  # one row per (image, cell)
        return self.fc2(self.drop(F.relu(self.fc1(h))))

    def features(self, x):
        return self.taps(x)[-1].mean(dim=(2, 3))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", required=True)
    ap.add_argument("--eval-data", required=True)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--width", type=int, default=16)
    ap.add_argument("--size", type=int, default=32)
    ap.add_argument("--grid", type=int, default=8)
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--holdout", type=float, default=0.2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--baseline", action="store_true", help="also evaluate the random-init encoder (same split)")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    g = torch.Generator().manual_seed(a.seed)
    train = torch.from_numpy(read_folder(a.data, a.size)).float() / 255
    ex, ey = read_classes(a.eval_data, a.size)
    rng = np.random.default_rng(a.seed)
    test_idx = []
    for c in np.unique(ey):
        members = np.flatnonzero(ey == c)
        test_idx += list(rng.choice(members, int(round(a.holdout * len(members))), replace=False))
    test_mask = np.zeros(len(ey), bool)
    test_mask[test_idx] = True
    bins = AbBins()
    print(f"{len(train)} training images; eval {int((~test_mask).sum())} train / {int(test_mask.sum())} test; "
          f"{bins.count} in-gamut ab bins", flush=True)
    half = a.width // 2
    h1 = Half(1, half, a.grid, a.hidden, bins.count)  # L -> ab
    h2 = Half(2, half, a.grid, a.hidden, 100)         # ab -> L
    def evaluate():
        h1.eval(), h2.eval()
        with torch.no_grad():
            x = scaled(srgb_to_lab(torch.from_numpy(ex).float() / 255))
            f = torch.cat([h1.features(x[:, :1]), h2.features(x[:, 1:])], 1)
        y = torch.from_numpy(ey)
        tr, te = torch.from_numpy(~test_mask), torch.from_numpy(test_mask)
        return (torch_ssl.knn_top1(f[tr], y[tr], f[te], y[te]),
                torch_ssl.linear_probe_top1(f[tr], y[tr], f[te], y[te])[0])

    if a.baseline:
        knn0, lin0 = evaluate()
        print(f"random-init encoder: kNN {knn0:.2f} %, linear {lin0:.2f} %", flush=True)
    params = list(h1.parameters()) + list(h2.parameters())
    opt = torch.optim.SGD(params, lr=0.0, momentum=0.9, weight_decay=5e-4)
    base = 0.1 * a.batch / 256
    steps_per_epoch = len(train) // a.batch
    total, warmup = steps_per_epoch * a.epochs, int(0.5 * steps_per_epoch)
    step, first, last = 0, None, None
    t0 = time.time()
    for epoch in range(a.epochs):
        perm = torch.randperm(len(train), generator=g)
        for s in range(steps_per_epoch):
            idx = perm[s * a.batch:(s + 1) * a.batch]
            lab = srgb_to_lab(random_resized_crop_flip(train[idx], a.size, g))
            x = scaled(lab)
            cs = a.size // a.grid
            cell = F.avg_pool2d(lab, cs)  # (B, 3, G, G): the cells' mean Lab colour
            cell = cell.permute(0, 2, 3, 1).reshape(-1, 3)
            q_ab = bins.bin_of(cell[:, 1].double(), cell[:, 2].double())
            q_l = (cell[:, 0].clamp(0, 100) / 100 * 100).floor().clamp(max=99).to(torch.int64)
            h1.train(), h2.train()
            loss = F.cross_entropy(h1(x[:, :1]), q_ab) + F.cross_entropy(h2(x[:, 1:]), q_l)
            for group in opt.param_groups:
                group["lr"] = torch_ssl.lr_at(step, base, warmup, total)
            opt.zero_grad()
            loss.backward()
            opt.step()
            step += 1
            first = float(loss) if first is None else first
            last = float(loss)
        print(f"epoch {epoch + 1}: loss {last:.4f}", flush=True)
    seconds = time.time() - t0
    knn, lin = evaluate()
    print(f"TORCH_SPLIT_BRAIN epochs={a.epochs} steps={step} train_seconds={seconds:.1f} first_loss={first:.4f} "
          f"last_loss={last:.4f} knn_top1={knn:.2f} linear_top1={lin:.2f}")


if __name__ == "__main__":
    main()
