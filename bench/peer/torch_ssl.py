#!/usr/bin/env python3
"""PyTorch peer of `ssl train` for the quality comparison (bench/run_quality.sh).

A quality peer only: ssl does not depend on torch. Trains SimCLR, BYOL,
MoCo v2, RotNet, InstDisc or Jigsaw on Fashion-MNIST with the recipe `ssl train` uses by default, then
evaluates the frozen backbone the way `ssl train` does (kNN and linear probe on
the test set), and prints one machine-readable line at the end:

  TORCH_QUALITY method=simclr epochs=5 train_seconds=... knn_top1=... linear_top1=... [more key=value]

(accuracies in percent). The recipe, mirroring examples/ssl.cpp and the
headers under include/ssl/:

* data: Fashion-MNIST IDX .gz files read here (gzip + struct + numpy), pixels
  /255; --train-limit N trains on the first N images, --eval-limit N uses the
  first N train images as the kNN / probe train set (the test set is always
  the full 10k).
* backbone: ResNet-18 in torchvision's layout with the CIFAR stem (3x3 conv
  stride 1, no max pool), 1 input channel, base width --width (16: channels
  16-32-64-128); convs kaiming_normal_(fan_out, relu), BN weight 1 / bias 0.
  Features: global average pool (128 at width 16).
* SimCLR: projector Linear(no bias) - BN1d - ReLU - Linear(no bias) - BN1d,
  2048 hidden, 128 out (the output batch norm since issue 24); NT-Xent with
  temperature 0.2 (images under 32 px); two views from one pipeline: random resized crop scale (0.5, 1) below 32 px (ssl's
  simclr_config), ratio (3/4, 4/3), flip 0.5,
  color jitter (0.4, 0.4, 0.4, 0.1) p 0.8, grayscale p 0.2, normalize. No
  blur at 28 px (the preset drops it at or below 32 px).
* BYOL: projector and predictor of the same MLP shape, 1024 hidden, 128 out;
  target = EMA copy of backbone + projector (parameters only; its batch norms
  run in train mode on the target's own batches), tau from 0.99 to 1 on BYOL's
  cosine schedule over all steps; loss (2 - 2 cos(p0, z1')) + (2 - 2 cos(p1, z0'))
  batch means summed; asymmetric views: the SimCLR crop / flip, jitter
  (0.4, 0.4, 0.2, 0.1) p 0.8, grayscale p 0.2, Gaussian blur (kernel 3 at
  28 px, sigma U(0.1, 2), reflect padding) with p 1.0 / 0.1, solarize
  (threshold 0.5) with p 0.0 / 0.2.
* MoCo v2 (ssl::moco_v2_config, small: the `ssl` program's default): query
  encoder backbone + fc(2048) - ReLU - fc(128), no batch norm; key encoder an
  EMA copy (m 0.99, parameters only); keys through shuffled batch norm (a
  random permutation cut into 8 equal groups); queue of 4096 keys (random
  unit rows at first); InfoNCE at temperature 0.1, both directions summed;
  views: the SimCLR ops with crop scale (0.2, 1) below 32 px, no blur at
  <= 32 px; lr base 0.06, weight decay 1e-4. The class is the one
  tests/peer/step_check.py checks our MoCo step against.
* RotNet: random resized crop scale (0.5, 1), flip 0.5, then every image at
  0/90/180/270 degrees clockwise (labels 0-3, same crop and flip for the four)
  in one batch of 4N; a 4-way linear classifier; cross entropy.
* InstDisc (NPID, Wu et al. 2018; include/ssl/instdisc.hpp, loss/nce.hpp,
  target_update/memory_bank.hpp): one SimCLR view per image (augment::one_view);
  head Linear(feature_dim, 128) with bias, then L2 normalize
  (head::embedding); a memory bank V (N, 128), N = the number of training
  images, each row uniform in [-sqrt(3/d), sqrt(3/d)] and then normalized,
  kept as a plain tensor. Per step: m = 4096 noise indices per sample drawn
  uniform over [0, N) with replacement (a sample's own index may be among
  them); x = v . f / T - log Z - log(m / N), T 0.1 at <= 32 px (0.07 above);
  loss mean_b [ softplus(-x_pos) + sum_k softplus(x_k)
  + lambda ||f_b - v_{i_b}||^2 ], lambda 30, the proximal term only for rows
  that already hold a feature (`written`); the bank and Z are constants in
  the gradient. Z = N mean_{b,k} exp(v_{j_bk} . f_b / T) over the batch's
  noise, estimated: until-filled (default) on every batch as long as some
  bank row has never been written (checked before the batch), then fixed;
  first-batch once; every-batch always. After the optimizer's step:
  v_i <- normalize(0.5 v_i + 0.5 f_i) (index_copy_) with the features of the
  forward before the step (a row's first write mixes with its random
  initialization too; --first-write replace stores normalize(f)), then the
  rows are flagged written. lr base 0.03. For the diagnosis the summary also
  has head_knn_top1, the kNN on the L2-normalized 128-d head embedding (the
  paper's protocol; knn_top1 stays on the backbone's pooled features, as for
  every method).
* Each view goes through the network in its own forward (batch norm sees one
  view at a time), as ssl::method does.
* Color jitter on 1 channel: brightness x -> clamp(f x) and contrast
  x -> clamp(f x + (1 - f) mean(x)) in a random order (saturation and hue do
  nothing to 1-channel images); grayscale is a no-op on 1 channel.
* Resampling: F.interpolate(mode="bilinear", antialias=True) of each crop,
  the PIL-style triangle filter ssl's random_resized_crop uses.
* Normalize with mean 0.2860, std 0.3530.
* Optimizer: torch.optim.SGD, momentum 0.9, weight decay 5e-4 on every
  parameter, lr = base * batch / 256 (base 0.3 for SimCLR and BYOL, 0.1 for
  RotNet, 0.03 for InstDisc), linear warm-up from 0 over int(0.5 * steps per epoch) steps, then
  cosine to 0 at the last step; shuffled, drop_last.
* Evaluation: features of the un-augmented, normalized images in eval mode.
  kNN: L2-normalized features, cosine similarity, k = 200 nearest train
  features vote with exp(s / 0.1). Linear probe: features standardized with
  the train mean / population std, multinomial logistic regression in float64
  over the classes present in the train set, mean cross entropy +
  (1e-4 / 2) ||W||^2 (bias not decayed), full-batch torch.optim.LBFGS
  (history 10, strong-Wolfe line search) from W = 0, b = 0 until
  ||grad|| <= 1e-5 ||grad at start|| or 500 iterations.

Usage:
  /usr/bin/python3 bench/peer/torch_ssl.py --method simclr|byol|moco|rotnet|instdisc|jigsaw [--epochs 5] [--batch 256]
      [--width 16] [--threads 2] [--seed 0] [--train-limit N] [--eval-limit N]
      [--data /usr/share/datasets/fashion-mnist]
  InstDisc only (as `ssl train --method instdisc`): [--temperature T] [--proximal L]
      [--nce-z until-filled|first-batch|every-batch] [--first-write mix|replace]
      [--nce-negatives M] (M: the peer's own option; ours is fixed at 4096)
"""
import argparse
import copy
import gzip
import math
import os
import struct
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

MEAN, STD = 0.2860, 0.3530
BASE_LR = {"simclr": 0.3, "byol": 0.3, "moco": 0.06, "rotnet": 0.1, "instdisc": 0.03, "jigsaw": 0.1}


def log(msg):
    print(msg, file=sys.stderr, flush=True)


# ---------------------------------------------------------------- data ----

def read_idx_gz(path):
    """An IDX file (gzip-compressed) as a numpy array."""
    with gzip.open(path, "rb") as f:
        raw = f.read()
    zero, dtype_code, ndim = struct.unpack(">HBB", raw[:4])
    if zero != 0 or dtype_code != 0x08:
        raise ValueError(f"{path}: not an unsigned-byte IDX file (header {raw[:4].hex()})")
    dims = struct.unpack(">" + "I" * ndim, raw[4:4 + 4 * ndim])
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if data.size != int(np.prod(dims)):
        raise ValueError(f"{path}: {data.size} bytes of data for dimensions {dims}")
    return data.reshape(dims)


def load_fashion_mnist(directory):
    def pair(prefix):
        x = read_idx_gz(os.path.join(directory, f"{prefix}-images-idx3-ubyte.gz"))
        y = read_idx_gz(os.path.join(directory, f"{prefix}-labels-idx1-ubyte.gz"))
        return torch.from_numpy(x.copy()).unsqueeze(1), torch.from_numpy(y.astype(np.int64))
    return pair("train"), pair("t10k")


def to_float(images_u8):
    return images_u8.float().div_(255.0)


# --------------------------------------------------------- augmentation ----

class Augment:
    """The augmentation ops of ssl's presets, batched over torch tensors
    (N, 1, H, W) with values in [0, 1]. Random parameters come from one
    numpy Generator."""

    def __init__(self, seed, size, crop_min_scale=None):
        self.rng = np.random.default_rng(seed)
        self.size = size
        self.crop_min_scale = crop_min_scale  # None: the recipe's

    def crop_scale(self, default_lo):
        return (self.crop_min_scale if self.crop_min_scale else default_lo, 1.0)

    def _uniform(self, n, lo, hi):
        return torch.from_numpy(self.rng.uniform(lo, hi, size=n).astype(np.float32)).view(n, 1, 1, 1)

    def _coin(self, n, p):
        return torch.from_numpy(self.rng.random(n) < p).view(n, 1, 1, 1)

    def crop_boxes(self, n, h, w, scale, ratio=(3.0 / 4.0, 4.0 / 3.0), attempts=10):
        """torchvision RandomResizedCrop's box draw: (top, left, height, width) per image."""
        area = float(h * w)
        log_lo, log_hi = math.log(ratio[0]), math.log(ratio[1])
        boxes = []
        for _ in range(n):
            for _ in range(attempts):
                target = area * self.rng.uniform(scale[0], scale[1])
                aspect = math.exp(self.rng.uniform(log_lo, log_hi))
                cw = round(math.sqrt(target * aspect))  # Python's round: half to even
                ch = round(math.sqrt(target / aspect))
                if 0 < cw <= w and 0 < ch <= h:
                    top = int(self.rng.integers(0, h - ch + 1))
                    left = int(self.rng.integers(0, w - cw + 1))
                    boxes.append((top, left, ch, cw))
                    break
            else:  # central crop clamped to the ratio range
                in_ratio = w / h
                ch, cw = h, w
                if in_ratio < ratio[0]:
                    ch = round(w / ratio[0])
                elif in_ratio > ratio[1]:
                    cw = round(h * ratio[1])
                ch, cw = min(max(ch, 1), h), min(max(cw, 1), w)
                boxes.append(((h - ch) // 2, (w - cw) // 2, ch, cw))
        return boxes

    def resized_crop(self, x, boxes):
        out = torch.empty(x.shape[0], x.shape[1], self.size, self.size)
        for i, (t, l, h, w) in enumerate(boxes):
            patch = x[i:i + 1, :, t:t + h, l:l + w]
            if h == self.size and w == self.size:
                out[i] = patch[0]
            else:
                out[i] = F.interpolate(patch, size=(self.size, self.size), mode="bilinear",
                                       align_corners=False, antialias=True)[0]
        return out

    def random_resized_crop(self, x, scale):
        return self.resized_crop(x, self.crop_boxes(x.shape[0], x.shape[2], x.shape[3], scale))

    def flip(self, x, p=0.5):
        return torch.where(self._coin(x.shape[0], p), x.flip(3), x)

    def color_jitter(self, x, brightness, contrast, p):
        """ColorJitter on 1 channel: brightness and contrast in a random order
        (saturation and hue are the identity on gray images)."""
        n = x.shape[0]
        active = self._coin(n, p)
        brightness_first = self._coin(n, 0.5)  # of a random order of the 4 adjustments
        fb = self._uniform(n, max(0.0, 1 - brightness), 1 + brightness)
        fc = self._uniform(n, max(0.0, 1 - contrast), 1 + contrast)

        def adj_b(y):
            return (y * fb).clamp_(0, 1)

        def adj_c(y):
            m = y.mean(dim=(1, 2, 3), keepdim=True)
            return (fc * y + (1 - fc) * m).clamp_(0, 1)

        y = torch.where(brightness_first, adj_c(adj_b(x)), adj_b(adj_c(x)))
        return torch.where(active, y, x)

    def gaussian_blur(self, x, p, sigma=(0.1, 2.0)):
        """Separable Gaussian blur, kernel int(0.1 * side) made odd (at least 3),
        sigma uniform per image, reflect padding."""
        n, _, h, w = x.shape
        k = min(h, w) // 10
        if k % 2 == 0:
            k += 1
        k = max(k, 3)
        r = k // 2
        active = self._coin(n, p)
        s = self._uniform(n, sigma[0], sigma[1]).view(n, 1)
        taps = torch.arange(-r, r + 1, dtype=torch.float32).view(1, k)
        kern = torch.exp(-0.5 * (taps / s) ** 2)
        kern = kern / kern.sum(dim=1, keepdim=True)  # (n, k)
        xp = F.pad(x, (r, r, 0, 0), mode="reflect")
        y = sum(kern[:, i].view(n, 1, 1, 1) * xp[:, :, :, i:i + w] for i in range(k))
        yp = F.pad(y, (0, 0, r, r), mode="reflect")
        z = sum(kern[:, i].view(n, 1, 1, 1) * yp[:, :, i:i + h, :] for i in range(k))
        return torch.where(active, z, x)

    def solarize(self, x, p, threshold=0.5):
        active = self._coin(x.shape[0], p)
        return torch.where(active & (x >= threshold), 1 - x, x)

    @staticmethod
    def normalize(x):
        return (x - MEAN) / STD

    # ---- the method's views ----
    def simclr_view(self, x):
        # ssl's simclr_config: at least half the image below 32 px
        scale = self.crop_scale(0.5 if self.size < 32 else 0.08)
        v = self.random_resized_crop(x, scale)
        v = self.flip(v)
        v = self.color_jitter(v, 0.4, 0.4, 0.8)
        # random grayscale p 0.2: identity on 1 channel; no blur at <= 32 px
        if self.size > 32:
            v = self.gaussian_blur(v, 0.5)
        return self.normalize(v)

    def moco_view(self, x):
        """ssl's augment::two_views: the SimCLR ops with the shared crop
        default (0.2 below 32 px, else 0.08); no blur at <= 32 px."""
        v = self.random_resized_crop(x, self.crop_scale(0.2 if self.size < 32 else 0.08))
        v = self.flip(v)
        v = self.color_jitter(v, 0.4, 0.4, 0.8)
        if self.size > 32:
            v = self.gaussian_blur(v, 0.5)
        return self.normalize(v)

    def byol_view(self, x, blur_p, solarize_p):
        scale = self.crop_scale(0.2 if self.size < 32 else 0.08)
        v = self.random_resized_crop(x, scale)
        v = self.flip(v)
        v = self.color_jitter(v, 0.4, 0.4, 0.8)
        v = self.gaussian_blur(v, blur_p)
        v = self.solarize(v, solarize_p)
        return self.normalize(v)

    def rotations(self, x):
        """(4N, 1, H, W) with rotation labels: [all at 0, all at 90 cw, 180, 270]."""
        v = self.random_resized_crop(x, self.crop_scale(0.5))
        v = self.flip(v)
        views = [torch.rot90(v, -k, dims=(2, 3)) for k in range(4)]  # -k: clockwise
        labels = torch.arange(4).repeat_interleave(x.shape[0])
        return self.normalize(torch.cat(views)), labels


# -------------------------------------------------------------- models ----

class BasicBlock(nn.Module):
    def __init__(self, inp, planes, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(inp, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.shortcut = None
        if stride != 1 or inp != planes:
            self.shortcut = nn.Sequential(nn.Conv2d(inp, planes, 1, stride, bias=False), nn.BatchNorm2d(planes))

    def forward(self, x):
        y = F.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return F.relu(y + (x if self.shortcut is None else self.shortcut(x)))


class ResNet18Cifar(nn.Module):
    """ResNet-18, CIFAR stem, no classifier: returns pooled features."""

    def __init__(self, in_channels, width):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, width, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        stages, inp = [], width
        for s in range(4):
            planes = width << s
            stages.append(nn.Sequential(BasicBlock(inp, planes, 1 if s == 0 else 2), BasicBlock(planes, planes, 1)))
            inp = planes
        self.layers = nn.Sequential(*stages)
        self.feature_dim = inp
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, x):
        x = F.relu(self.bn1(self.conv1(x)))
        x = self.layers(x)
        return x.mean(dim=(2, 3))


def mlp(inp, hidden, out, out_bias=True):
    return nn.Sequential(nn.Linear(inp, hidden, bias=False), nn.BatchNorm1d(hidden), nn.ReLU(inplace=True),
                         nn.Linear(hidden, out, bias=out_bias))


class SimCLR(nn.Module):
    def __init__(self, backbone, size):
        super().__init__()
        self.backbone = backbone
        # the projector ends in a batch norm (ssl's simclr_config, SimCLR's code)
        self.head = nn.Sequential(*mlp(backbone.feature_dim, 2048, 128, out_bias=False), nn.BatchNorm1d(128))
        self.temperature = 0.2 if size < 32 else 0.5

    def loss(self, images, aug, ids=None):
        z = [self.head(self.backbone(aug.simclr_view(images))) for _ in range(2)]
        u = F.normalize(torch.cat(z), dim=1, eps=1e-12)
        n2 = u.shape[0]
        logits = (u @ u.t()) / self.temperature
        logits = logits.masked_fill(torch.eye(n2, dtype=torch.bool), float("-inf"))
        positive = (torch.arange(n2) + n2 // 2) % n2
        return F.cross_entropy(logits, positive)

    def after_step(self, step, total_steps):
        pass


class BYOL(nn.Module):
    def __init__(self, backbone, tau_base=0.99):
        super().__init__()
        self.backbone = backbone
        self.projector = mlp(backbone.feature_dim, 1024, 128)
        self.predictor = mlp(128, 1024, 128)
        self.tau_base = tau_base
        # the target: a copy of backbone + projector, updated by EMA only
        self.target_backbone = copy.deepcopy(self.backbone)
        self.target_projector = copy.deepcopy(self.projector)
        for p in list(self.target_backbone.parameters()) + list(self.target_projector.parameters()):
            p.requires_grad_(False)

    def online_parameters(self):
        return (list(self.backbone.parameters()) + list(self.projector.parameters()) +
                list(self.predictor.parameters()))

    @staticmethod
    def regression(p, z):
        return (2 - 2 * (F.normalize(p, dim=1, eps=1e-12) * F.normalize(z, dim=1, eps=1e-12)).sum(dim=1)).mean()

    def loss(self, images, aug, ids=None):
        views = [aug.byol_view(images, 1.0, 0.0), aug.byol_view(images, 0.1, 0.2)]
        p = [self.predictor(self.projector(self.backbone(v))) for v in views]
        self.target_backbone.train(True)  # target batch norms use batch statistics
        self.target_projector.train(True)
        with torch.no_grad():
            z = [self.target_projector(self.target_backbone(v)) for v in views]
        return self.regression(p[0], z[1]) + self.regression(p[1], z[0])

    @torch.no_grad()
    def after_step(self, step, total_steps):
        r = min(1.0, step / total_steps) if total_steps else 1.0
        tau = 1 - (1 - self.tau_base) * (math.cos(math.pi * r) + 1) / 2
        for tgt, src in ((self.target_backbone, self.backbone), (self.target_projector, self.projector)):
            for t, o in zip(tgt.parameters(), src.parameters()):
                t.mul_(tau).add_(o, alpha=1 - tau)


class MoCo(nn.Module):
    """MoCo v2 as ssl::moco_v2_config(small) sets it (include/ssl/moco.hpp):
    query encoder = backbone + head fc(2048) - ReLU - fc(128), both with bias,
    no batch norm; key encoder = an EMA copy (m 0.99, parameters only; its
    batch norms run in train mode on its own batches); keys through shuffled
    batch norm: a random permutation cut into 8 equal groups, each its own
    batch; queue of K 4096 keys, initially random unit rows; InfoNCE with
    temperature 0.1, symmetrised by summing both directions (MoCo's CIFAR-10
    demo); after the step: EMA, then view 0's keys and view 1's are enqueued."""

    def __init__(self, backbone, seed=0, queue_size=4096, momentum=0.99, temperature=0.1, groups=8):
        super().__init__()
        self.backbone = backbone
        self.head = nn.Sequential(nn.Linear(backbone.feature_dim, 2048), nn.ReLU(inplace=True), nn.Identity(),
                                  nn.Linear(2048, 128))  # indices 0 and 3 as ours (1, the BN, is off)
        self.target_backbone = copy.deepcopy(self.backbone)
        self.target_projector = copy.deepcopy(self.head)
        for p in list(self.target_backbone.parameters()) + list(self.target_projector.parameters()):
            p.requires_grad_(False)
        g = torch.Generator().manual_seed(seed + 77)
        self.register_buffer("queue", F.normalize(torch.randn(queue_size, 128, generator=g), dim=1))
        self.queue_ptr = 0
        self.momentum, self.temperature, self.groups = momentum, temperature, groups
        self.shuffle_rng = torch.Generator().manual_seed(seed + 78)
        self._keys = None

    def online_parameters(self):
        return list(self.backbone.parameters()) + list(self.head.parameters())

    @torch.no_grad()
    def keys(self, view, perm=None):
        """Normalized keys of `view` through shuffled batch norm; `perm`: the
        permutation (its 8 equal parts are the groups), random if None."""
        self.target_backbone.train(True)
        self.target_projector.train(True)
        n = view.shape[0]
        if perm is None:
            perm = torch.randperm(n, generator=self.shuffle_rng)
        count = max(1, min(self.groups, n // 2))
        k = torch.cat([self.target_projector(self.target_backbone(c)) for c in torch.chunk(view[perm], count)])
        out = torch.empty_like(k)
        out[perm] = k
        return F.normalize(out, dim=1, eps=1e-12)

    def loss_on(self, views, perms=(None, None)):
        q = [F.normalize(self.head(self.backbone(v)), dim=1, eps=1e-12) for v in views]
        self._keys = [self.keys(views[v], perms[v]) for v in range(2)]
        total = 0
        for a, b in ((0, 1), (1, 0)):
            pos = (q[a] * self._keys[b]).sum(dim=1, keepdim=True)
            logits = torch.cat([pos, q[a] @ self.queue.t()], dim=1) / self.temperature
            total = total + F.cross_entropy(logits, torch.zeros(q[a].shape[0], dtype=torch.long))
        return total

    def loss(self, images, aug, ids=None):
        return self.loss_on([aug.moco_view(images), aug.moco_view(images)])

    @torch.no_grad()
    def after_step(self, step, total_steps):
        for tgt, src in ((self.target_backbone, self.backbone), (self.target_projector, self.head)):
            for t, o in zip(tgt.parameters(), src.parameters()):
                t.mul_(self.momentum).add_(o, alpha=1 - self.momentum)
        for k in self._keys:
            idx = (torch.arange(k.shape[0]) + self.queue_ptr) % self.queue.shape[0]
            self.queue[idx] = k
            self.queue_ptr = (self.queue_ptr + k.shape[0]) % self.queue.shape[0]


class RotNet(nn.Module):
    def __init__(self, backbone):
        super().__init__()
        self.backbone = backbone
        self.head = nn.Linear(backbone.feature_dim, 4)

    def loss(self, images, aug, ids=None):
        x, y = aug.rotations(images)
        return F.cross_entropy(self.head(self.backbone(x)), y)

    def after_step(self, step, total_steps):
        pass


def maximal_hamming_permutations(count, seed):
    """ssl's rule (augment/jigsaw.hpp): greedy from all 9! permutations, each
    new one maximising the minimal Hamming distance to those chosen (ties to
    the lowest lexicographic index); the first drawn from the seed (numpy's
    generator here, so the first choice, and with it the set, differs from
    ours; the construction is the same)."""
    import itertools
    allp = np.array(list(itertools.permutations(range(9))), dtype=np.uint8)  # lexicographic
    mind = np.full(allp.shape[0], 10, dtype=np.uint8)
    nxt = int(np.random.default_rng(seed).integers(0, allp.shape[0]))
    chosen = []
    for _ in range(count):
        c = allp[nxt]
        chosen.append(c)
        mind = np.minimum(mind, (allp != c).sum(axis=1).astype(np.uint8))
        nxt = int(np.argmax(mind))  # the first maximum: the lowest index
    return np.stack(chosen)


class Jigsaw(nn.Module):
    """ssl's jigsaw recipe (jigsaw.hpp, augment/jigsaw.hpp): the image
    random-resized-cropped (scale 0.6-1) to a 48 px grid of 3x3 cells of 16 px,
    a 14 px tile at a random offset in each cell, brightness / contrast jitter
    0.4 per tile, each tile normalised to zero mean and unit variance (std
    floored at 1e-2), the tiles shuffled by one of P permutations; the shared
    tower per tile, fc 128 + ReLU per tile, concatenation, fc 512 + ReLU, fc P,
    cross entropy over the permutation index. Evaluation sees whole images
    resized to the grid and standardised per image (eval_transform)."""

    def __init__(self, backbone, permutations=100, seed=0, grid=48, row=128, hidden=512):
        super().__init__()
        self.backbone = backbone
        self.perms = torch.from_numpy(maximal_hamming_permutations(permutations, seed).astype(np.int64))
        self.grid, self.cell = grid, grid // 3
        self.tile = max(1, round(self.cell * 64 / 75))
        self.row = nn.Sequential(nn.Linear(backbone.feature_dim, row), nn.ReLU(inplace=True))
        self.joint = nn.Sequential(nn.Linear(9 * row, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, permutations))
        self.grid_aug = None

    def tiles(self, images, aug):
        if self.grid_aug is None:
            self.grid_aug = Augment(int(aug.rng.integers(1 << 31)), self.grid)
        x = self.grid_aug.random_resized_crop(images, (0.6, 1.0))  # (N, C, 48, 48)
        n, t, c = x.shape[0], self.tile, self.cell
        k = torch.from_numpy(aug.rng.integers(0, self.perms.shape[0], size=n))
        offs = aug.rng.integers(0, c - t + 1, size=(n, 9, 2))
        out = torch.empty(9, n, x.shape[1], t, t)
        for i in range(n):
            p = self.perms[k[i]]
            for r in range(9):
                cell = int(p[r])
                oy, ox = (cell // 3) * c + offs[i, r, 0], (cell % 3) * c + offs[i, r, 1]
                out[r, i] = x[i, :, oy:oy + t, ox:ox + t]
        out = out.reshape(9 * n, x.shape[1], t, t)  # row r * N + i: slot r of sample i
        out = aug.color_jitter(out, 0.4, 0.4, 1.0)
        mean = out.mean(dim=(2, 3), keepdim=True)
        std = out.var(dim=(2, 3), keepdim=True, unbiased=False).sqrt().clamp_min(1e-2)
        return (out - mean) / std, k

    def loss(self, images, aug, ids=None):
        x, y = self.tiles(images, aug)
        n = y.shape[0]
        r = self.row(self.backbone(x))  # (9N, row)
        g = r.view(9, n, -1).transpose(0, 1).reshape(n, -1)  # sample i: [slot 0 | ... | slot 8]
        return F.cross_entropy(self.joint(g), y)

    def eval_transform(self, x):
        """Whole images at the tiles' pixel scale (resized to the grid), each
        standardised per channel as the tiles were."""
        x = F.interpolate(x, size=(self.grid, self.grid), mode="bilinear", align_corners=False, antialias=True)
        mean = x.mean(dim=(2, 3), keepdim=True)
        std = x.var(dim=(2, 3), keepdim=True, unbiased=False).sqrt().clamp_min(1e-2)
        return (x - mean) / std

    def after_step(self, step, total_steps):
        pass


def derived_seed(seed, tag):
    """A 63-bit seed for a torch.Generator from (seed, tag): separate streams."""
    return int(np.random.SeedSequence([seed, tag]).generate_state(1, dtype=np.uint64)[0] >> np.uint64(1))


class BankScores(torch.autograd.Function):
    """s[b, k] = bank[idx[b, k]] . f[b] for a constant bank (no gradient into
    it), without keeping the (B, K, d) gathered rows (512 MB at B 256, K 4096,
    d 128): forward and backward each gather them `chunk` samples at a time.
    Measured here (1 thread, 60k x 128 bank): ~0.2 s + ~0.16 s per step, where
    a dense B x N score GEMM took ~1 s each way with this torch's generic BLAS.
    The bank must not change between forward and backward (after_step runs
    after the optimizer's step)."""

    @staticmethod
    def forward(ctx, f, bank, idx, chunk=4):
        out = f.new_empty(idx.shape)
        for b0 in range(0, f.shape[0], chunk):
            rows = bank.index_select(0, idx[b0:b0 + chunk].reshape(-1)).view(-1, idx.shape[1], bank.shape[1])
            out[b0:b0 + chunk] = (rows * f[b0:b0 + chunk, None, :]).sum(dim=2)
        ctx.save_for_backward(idx)
        ctx.bank, ctx.chunk = bank, chunk
        return out

    @staticmethod
    def backward(ctx, grad):
        (idx,) = ctx.saved_tensors
        bank, chunk = ctx.bank, ctx.chunk
        gf = grad.new_empty(grad.shape[0], bank.shape[1])
        for b0 in range(0, grad.shape[0], chunk):
            rows = bank.index_select(0, idx[b0:b0 + chunk].reshape(-1)).view(-1, idx.shape[1], bank.shape[1])
            gf[b0:b0 + chunk] = torch.bmm(grad[b0:b0 + chunk, None, :], rows).squeeze(1)
        return gf, None, None, None


class InstDisc(nn.Module):
    """InstDisc / NPID with NCE against a memory bank, as ssl::instdisc
    (include/ssl/instdisc.hpp, loss/nce.hpp, target_update/memory_bank.hpp)."""

    Z_MODES = ("until-filled", "first-batch", "every-batch")

    def __init__(self, backbone, instances, size, seed, dim=128, negatives=4096, temperature=None, proximal=30.0,
                 momentum=0.5, z_mode="until-filled", first_write="mix"):
        super().__init__()
        if negatives <= 0:
            raise ValueError("instdisc: the number of noise samples must be > 0 (ours refuses 0 as well)")
        if z_mode not in self.Z_MODES:
            raise ValueError(f"instdisc: unknown Z mode {z_mode}")
        self.backbone = backbone
        self.head = nn.Linear(backbone.feature_dim, dim)  # bias, nn.Linear's init (head::embedding)
        self.n, self.dim, self.m = instances, dim, negatives
        # instdisc_temperature(size): 0.1 for <= 32 px, 0.07 above
        self.temperature = temperature if temperature is not None else (0.1 if size <= 32 else 0.07)
        self.proximal, self.momentum = proximal, momentum
        self.z_mode, self.replace_first = z_mode, first_write == "replace"
        g = torch.Generator().manual_seed(derived_seed(seed, 0xBA4C1417))
        a = math.sqrt(3.0 / dim)  # init_bank: uniform in [-a, a], then every row normalized
        self.bank = F.normalize((torch.rand(instances, dim, generator=g) * 2 - 1) * a, dim=1, eps=1e-12)
        self.written = torch.zeros(instances, dtype=torch.bool)
        self.noise_gen = torch.Generator().manual_seed(derived_seed(seed, 0xBA4C4015))
        self.z = 0.0              # <= 0: estimate on the next batch
        self.filled = False       # cache of written.all() (only goes False -> True)
        self.z_fixed_at = None    # the first step whose Z was not re-estimated (until-filled)
        self.z_estimates = 0
        self.steps = 0
        self._last = None         # (ids, features) of the last loss() for after_step
        self.stats = {}

    def embed_head(self, feats):
        return F.normalize(self.head(feats), dim=1, eps=1e-12)

    def loss(self, images, aug, ids=None):
        if ids is None:
            raise ValueError("instdisc: loss() needs the batch's instance indices")
        ids = ids.long()
        f = self.embed_head(self.backbone(aug.simclr_view(images)))  # one_view = simclr_pipeline
        bsz, n, m, tau = f.shape[0], self.n, self.m, self.temperature
        # memory_bank::targets: noise first, then the Z policy, all before the loss
        noise = torch.randint(0, n, (bsz, m), generator=self.noise_gen)
        if self.z_mode == "until-filled" and not self.filled:
            self.filled = bool(self.written.all())
            if self.filled:
                self.z_fixed_at = self.steps
            else:
                self.z = 0.0
        elif self.z_mode == "every-batch":
            self.z = 0.0
        v_pos = self.bank.index_select(0, ids)  # the bank is a constant: no grad into it
        s_pos = (f * v_pos).sum(dim=1)
        s_noise = BankScores.apply(f, self.bank, noise)
        if not (self.z > 0 and math.isfinite(self.z)):
            with torch.no_grad():
                z = n * float(torch.exp(s_noise.detach().double() / tau).mean())
            if not (math.isfinite(z) and z > 0):
                raise FloatingPointError(f"instdisc: the estimate of Z is {z}")
            self.z = z
            self.z_estimates += 1
        c = math.log(self.z) + math.log(m / n)  # log Z + log(m P_n), P_n = 1 / N
        x_pos = s_pos / tau - c
        x_noise = s_noise / tau - c
        nce = F.softplus(-x_pos) + F.softplus(x_noise).sum(dim=1)  # -log h - sum log(1 - h)
        has_memory = self.written.index_select(0, ids).to(f.dtype)  # before this step's update
        prox = self.proximal * ((f - v_pos) ** 2).sum(dim=1) * has_memory if self.proximal > 0 else torch.zeros_like(nce)
        self._last = (ids, f.detach())
        with torch.no_grad():
            self.stats = {"nce": float(nce.mean()), "prox": float(prox.mean()),
                          "pos_sim": float(s_pos.mean()),
                          "h_noise_sum": float(torch.sigmoid(x_noise).sum(dim=1).mean()), "z": self.z}
        return (nce + prox).mean()

    @torch.no_grad()
    def after_step(self, step, total_steps):
        ids, f = self._last
        self._last = None
        # update_bank: v <- normalize(momentum v + (1 - momentum) f); with
        # replace_first a never-written row takes normalize(f). The batch comes
        # from a permutation: no id repeats, so one index_copy_ is the
        # sequential update.
        a = torch.full((ids.numel(), 1), self.momentum)
        if self.replace_first:
            a = torch.where(self.written.index_select(0, ids).view(-1, 1), a, torch.zeros_like(a))
        v = a * self.bank.index_select(0, ids) + (1 - a) * f
        self.bank.index_copy_(0, ids, F.normalize(v, dim=1, eps=1e-12))
        self.written[ids] = True
        self.steps += 1

    def progress(self):
        s = self.stats
        return (f" nce {s['nce']:.4f} prox {s['prox']:.4f} pos_sim {s['pos_sim']:.4f} "
                f"sum_h_noise {s['h_noise_sum']:.3f} Z {s['z']:.4g}") if s else ""


def lr_at(step, base, warmup, total):
    if step < warmup:
        return base * step / warmup
    if step >= total:
        return 0.0
    return base * (1 + math.cos(math.pi * (step - warmup) / (total - warmup))) / 2


# ---------------------------------------------------------- evaluation ----

@torch.no_grad()
def embed(backbone, images_u8, chunk=1024, transform=None):
    """Features in eval mode; transform: images in [0, 1] -> network input
    (default: normalize, ours' eval pipeline at the native size)."""
    transform = transform or Augment.normalize
    was = backbone.training
    backbone.eval()
    out = torch.cat([backbone(transform(to_float(images_u8[i:i + chunk])))
                     for i in range(0, images_u8.shape[0], chunk)])
    backbone.train(was)
    return out


@torch.no_grad()
def knn_top1(train_f, train_y, test_f, test_y, k=200, temperature=0.1, chunk=256):
    tr = F.normalize(train_f, dim=1, eps=1e-12)
    te = F.normalize(test_f, dim=1, eps=1e-12)
    classes = int(max(train_y.max(), test_y.max())) + 1
    k = min(k, tr.shape[0])
    correct = 0
    for i in range(0, te.shape[0], chunk):
        s, idx = (te[i:i + chunk] @ tr.t()).topk(k, dim=1)
        w = torch.exp((s - s[:, :1]) / temperature)  # exp(s / T) up to a per-query factor
        votes = torch.zeros(s.shape[0], classes).scatter_add_(1, train_y[idx], w)
        correct += int((votes.argmax(dim=1) == test_y[i:i + chunk]).sum())
    return 100.0 * correct / te.shape[0]


def linear_probe_top1(train_f, train_y, test_f, test_y, weight_decay=1e-4, max_iterations=500, tolerance=1e-5):
    x = train_f.double()
    mean = x.mean(dim=0)
    std = x.std(dim=0, unbiased=False)
    std = torch.where(std > 0, std, torch.ones_like(std))
    x = (x - mean) / std
    xt = (test_f.double() - mean) / std
    present = torch.unique(train_y)  # classes present in the train set are the outputs
    remap = torch.full((int(present.max()) + 1,), -1, dtype=torch.long)
    remap[present] = torch.arange(present.numel())
    y = remap[train_y]
    kk, d = present.numel(), x.shape[1]
    W = torch.zeros(kk, d, dtype=torch.float64, requires_grad=True)
    b = torch.zeros(kk, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([W, b], lr=1, max_iter=1, max_eval=25, history_size=10,
                            tolerance_grad=0.0, tolerance_change=0.0, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        f = F.cross_entropy(x @ W.t() + b, y) + 0.5 * weight_decay * (W * W).sum()
        f.backward()
        return f

    def grad_norm():
        f = closure()
        return float(f), math.sqrt(float((W.grad ** 2).sum() + (b.grad ** 2).sum()))

    f, g0 = grad_norm()
    best, stale, it, converged = f, 0, 0, g0 == 0
    while not converged and it < max_iterations:
        opt.step(closure)
        it += 1
        f, g = grad_norm()
        if not math.isfinite(f):
            break
        converged = g <= tolerance * g0
        if f < best:
            best, stale = f, 0
        else:
            stale += 1
            if stale >= 20:
                break
    with torch.no_grad():
        pred = present[(xt @ W.t() + b).argmax(dim=1)]
        top1 = 100.0 * float((pred == test_y).double().mean())
    return top1, it, converged


# ----------------------------------------------------------------- main ----

def train_loop(a, n, opt, base_lr, batch_loss, after_step, name, progress=None):
    """The peers' training loop: a.epochs epochs of n // a.batch shuffled
    batches (torch.randperm from a Generator seeded with a.seed, drop_last),
    lr by lr_at (warm-up over half an epoch, then cosine to 0), SGD on
    batch_loss(idx), then after_step(step, total). Returns (first loss,
    last loss, seconds)."""
    steps_per_epoch = n // a.batch
    total, warmup = steps_per_epoch * a.epochs, int(0.5 * steps_per_epoch)
    order_rng = torch.Generator().manual_seed(a.seed)
    step, first_loss, last_loss = 0, None, None
    t0 = time.perf_counter()
    for epoch in range(a.epochs):
        perm = torch.randperm(n, generator=order_rng)
        epoch_loss = 0.0
        for i in range(steps_per_epoch):
            idx = perm[i * a.batch:(i + 1) * a.batch]
            lr = lr_at(step, base_lr, warmup, total)
            for g in opt.param_groups:
                g["lr"] = lr
            opt.zero_grad(set_to_none=True)
            loss = batch_loss(idx)
            value = float(loss)
            if not math.isfinite(value):
                sys.exit(f"{name}: training diverged, loss {value} at step {step}")
            loss.backward()
            opt.step()
            if after_step:
                after_step(step, total)
            step += 1
            epoch_loss += value
            first_loss = value if first_loss is None else first_loss
            last_loss = value
            if a.log_every and step % a.log_every == 0:
                extra = progress() if progress else ""
                log(f"  step {step}/{total} loss {value:.4f}{extra} lr {lr:.4g} {time.perf_counter() - t0:.0f} s")
        log(f"epoch {epoch + 1}/{a.epochs}: mean loss {epoch_loss / steps_per_epoch:.4f}, "
            f"{time.perf_counter() - t0:.1f} s")
    return first_loss, last_loss, time.perf_counter() - t0


def add_run_arguments(ap, epochs=5, threads=2):
    """The options every peer trainer shares (also bench/peer/lightly_simclr.py)."""
    ap.add_argument("--epochs", type=int, default=epochs)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--width", type=int, default=16)
    ap.add_argument("--threads", type=int, default=threads)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--train-limit", type=int, default=0, help="train on the first N images only")
    ap.add_argument("--eval-limit", type=int, default=0,
                    help="use only the first N train images as the kNN / probe train set")
    ap.add_argument("--data", default="/usr/share/datasets/fashion-mnist")
    ap.add_argument("--log-every", type=int, default=50, help="progress line every N steps (stderr)")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--method", required=True, choices=["simclr", "byol", "moco", "rotnet", "instdisc", "jigsaw"])
    add_run_arguments(ap)
    # InstDisc only, as `ssl train --method instdisc` (None: the method's default)
    ap.add_argument("--temperature", type=float, default=None,
                    help="instdisc: NCE temperature (default 0.1 for <= 32 px images, else 0.07)")
    ap.add_argument("--proximal", type=float, default=None, help="instdisc: proximal lambda (default 30; 0: off)")
    ap.add_argument("--nce-z", choices=list(InstDisc.Z_MODES), default=None,
                    help="instdisc: when Z is estimated (default until-filled)")
    ap.add_argument("--first-write", choices=["mix", "replace"], default=None,
                    help="instdisc: a bank row's first write mixes with its random init (default) or replaces it")
    ap.add_argument("--nce-negatives", type=int, default=None,
                    help="instdisc: noise samples per sample (default 4096; ours has no such option)")
    # recipe levers, as `ssl train` (None: the method's)
    ap.add_argument("--lr", type=float, default=None, help="peak learning rate (default: base x batch / 256)")
    ap.add_argument("--weight-decay", type=float, default=None, help="default 5e-4 (MoCo 1e-4, as ssl's recipe)")
    ap.add_argument("--crop-scale", type=float, default=None,
                    help="smallest area fraction of the random resized crop (default 0.2 below 32 px, else 0.08; "
                         "RotNet 0.5)")
    a = ap.parse_args()
    if a.crop_scale is not None and not 0 < a.crop_scale <= 1:
        sys.exit(f"torch_ssl: --crop-scale must be in (0, 1], got {a.crop_scale}")
    if a.method != "instdisc":  # as ours: method-specific options are refused for other methods
        for opt in ("temperature", "proximal", "nce_z", "first_write", "nce_negatives"):
            if getattr(a, opt) is not None:
                ap.error(f"--{opt.replace('_', '-')} applies only to --method instdisc")
    if a.temperature is not None and not a.temperature > 0:
        ap.error("--temperature must be > 0")
    if a.proximal is not None and not a.proximal >= 0:
        ap.error("--proximal must be >= 0")
    if a.nce_negatives is not None and a.nce_negatives <= 0:
        ap.error("--nce-negatives must be > 0")

    torch.set_num_threads(a.threads)
    torch.set_num_interop_threads(1)
    torch.manual_seed(a.seed)

    (train_x, train_y), (test_x, test_y) = load_fashion_mnist(a.data)
    eval_x, eval_y = train_x, train_y
    if a.eval_limit and a.eval_limit < eval_x.shape[0]:
        eval_x, eval_y = eval_x[:a.eval_limit], eval_y[:a.eval_limit]
    if a.train_limit and a.train_limit < train_x.shape[0]:
        train_x = train_x[:a.train_limit]
    size = train_x.shape[2]

    backbone = ResNet18Cifar(train_x.shape[1], a.width)
    if a.method == "simclr":
        model = SimCLR(backbone, size)
        params = list(model.parameters())
    elif a.method == "byol":
        model = BYOL(backbone)
        params = model.online_parameters()
    elif a.method == "moco":
        model = MoCo(backbone, seed=a.seed)
        params = model.online_parameters()
    elif a.method == "rotnet":
        model = RotNet(backbone)
        params = list(model.parameters())
    elif a.method == "jigsaw":
        model = Jigsaw(backbone, seed=a.seed)
        params = list(model.parameters())
    else:
        m = 4096 if a.nce_negatives is None else a.nce_negatives
        if m >= train_x.shape[0]:
            # ours has no check: it draws m of N with replacement whatever m is
            log(f"warning: {m} noise samples for a bank of {train_x.shape[0]} rows (NCE assumes N >> m); "
                f"drawn with replacement, as ours does")
        model = InstDisc(backbone, train_x.shape[0], size, a.seed, negatives=m, temperature=a.temperature,
                         proximal=30.0 if a.proximal is None else a.proximal,
                         z_mode=a.nce_z or "until-filled", first_write=a.first_write or "mix")
        params = list(model.parameters())  # backbone + head; the bank is a plain tensor, not a parameter
        log(f"instdisc: bank {model.n} x {model.dim}, m {model.m}, T {model.temperature}, lambda {model.proximal}, "
            f"momentum {model.momentum}, Z {model.z_mode}, first write {'replace' if model.replace_first else 'mix'}")

    n = train_x.shape[0]
    steps_per_epoch = n // a.batch
    if steps_per_epoch == 0:
        sys.exit(f"torch_ssl: {n} images, fewer than one batch of {a.batch}")
    total = steps_per_epoch * a.epochs
    base_lr = a.lr if a.lr else BASE_LR[a.method] * a.batch / 256
    weight_decay = a.weight_decay if a.weight_decay is not None else (1e-4 if a.method == "moco" else 5e-4)
    opt = torch.optim.SGD(params, lr=0.0, momentum=0.9, weight_decay=weight_decay)
    aug = Augment(a.seed, size, a.crop_scale)
    log(f"torch {torch.__version__}, {torch.get_num_threads()} threads; training {a.method}, resnet18 width "
        f"{a.width}, {n} images, batch {a.batch}, {a.epochs} epochs ({total} steps), lr {base_lr:.4g}")

    model.train(True)

    def batch_loss(idx):
        return model.loss(to_float(train_x[idx]), aug, idx)

    first_loss, last_loss, train_seconds = train_loop(
        a, n, opt, base_lr, batch_loss, model.after_step, "torch_ssl",
        progress=model.progress if hasattr(model, "progress") else None)

    t1 = time.perf_counter()
    transform = model.eval_transform if hasattr(model, "eval_transform") else None
    ftr, fte = embed(backbone, eval_x, transform=transform), embed(backbone, test_x, transform=transform)
    knn = knn_top1(ftr, eval_y, fte, test_y)
    lin, iters, converged = linear_probe_top1(ftr, eval_y, fte, test_y)
    more = ""
    if isinstance(model, InstDisc):
        with torch.no_grad():  # the paper's kNN: on the L2-normalized 128-d embedding
            head_knn = knn_top1(model.embed_head(ftr), eval_y, model.embed_head(fte), test_y)
            rows = model.bank[torch.randperm(model.n, generator=torch.Generator().manual_seed(1))[:4096]]
            k = rows.shape[0]  # mean cosine over the pairs of up to 4096 random rows (diagonal left out)
            bank_cos = float(((rows @ rows.t()).sum() - k) / max(k * (k - 1), 1))
        log(f"instdisc: head-embedding kNN {head_knn:.2f} %; Z {model.z:.4g} ({model.z_estimates} estimates, "
            f"{'fixed from step %d' % model.z_fixed_at if model.z_fixed_at is not None else 'not fixed by until-filled'}); bank rows written {int(model.written.sum())}/{model.n}; "
            f"mean cosine between bank rows {bank_cos:.3f}")
        more = (f" head_knn_top1={head_knn:.2f} z={model.z:.6g} z_estimates={model.z_estimates} "
                f"z_fixed_at_step={-1 if model.z_fixed_at is None else model.z_fixed_at} "
                f"bank_mean_cos={bank_cos:.4f}")
    eval_seconds = time.perf_counter() - t1
    log(f"evaluation: kNN {knn:.2f} %, linear {lin:.2f} % ({iters} L-BFGS iterations, "
        f"{'converged' if converged else 'not converged'}), {eval_seconds:.1f} s")
    print(f"TORCH_QUALITY method={a.method} epochs={a.epochs} train_seconds={train_seconds:.2f} "
          f"knn_top1={knn:.2f} linear_top1={lin:.2f} steps={total} first_loss={first_loss:.4f} "
          f"last_loss={last_loss:.4f} probe_iterations={iters} probe_converged={int(converged)} "
          f"eval_seconds={eval_seconds:.1f} threads={a.threads} train_images={n} eval_images={eval_x.shape[0]}{more}",
          flush=True)


if __name__ == "__main__":
    main()
