#!/usr/bin/env python3
"""SimCLR trained with lightly's recipe pieces: a third column beside `ssl train
--method simclr` and our PyTorch peer (bench/peer/torch_ssl.py).

A quality peer only: ssl does not depend on torch or lightly. Written against
lightly 1.6.0 with torch 1.13 / torchvision 0.14 (torchvision's v1 transforms:
lightly falls back to them when transforms v2 is missing). Run with a Python
that has lightly, e.g. a venv made with --system-site-packages over Debian's
python3-torch and python3-torchvision, lightly installed with --no-deps.
Prints one machine-readable line at the end:

  LIGHTLY_QUALITY method=simclr epochs=3 train_seconds=... knn_top1=... linear_top1=... first_loss=... last_loss=... [more key=value]

(accuracies in percent).

What is lightly's (used as lightly ships it, apart from the parameters listed):

* Views: lightly.transforms.SimCLRTransform, on PIL "L" (1-channel, uint8)
  images, two views per image from one SimCLRViewTransform:
  RandomResizedCrop -> RandomHorizontalFlip -> RandomVerticalFlip ->
  (random rotation) -> RandomApply(ColorJitter) -> RandomGrayscale ->
  lightly GaussianBlur (PIL) -> ToTensor -> Normalize, torchvision's ops.
  Parameters set here, because lightly's defaults are for 224 px RGB ImageNet:
    input_size   28                  (lightly: 224)
    min_scale    0.5, our recipe below 32 px (lightly: 0.08)
    cj_strength  0.5, lightly's own advice for small images such as CIFAR
                 (lightly: 1.0); with lightly's default cj_bright / cj_contrast /
                 cj_sat / cj_hue 0.8 / 0.8 / 0.8 / 0.2 this gives jitter
                 (0.4, 0.4, 0.4, 0.1), our recipe's
    gaussian_blur 0.0: no blur, as our recipe at <= 32 px (lightly: p 0.5,
                 sigmas (0.1, 2))
    normalize    mean 0.2860, std 0.3530, 1 channel, our recipe's (lightly:
                 ImageNet's 3-channel mean / std, which a 1-channel image
                 cannot take)
  Left at lightly's defaults (equal to our recipe): cj_prob 0.8,
  random_gray_scale 0.2 (a no-op on 1-channel images), hf_prob 0.5, vf_prob 0,
  rr_prob 0; crop ratio (3/4, 4/3) and bilinear interpolation are
  torchvision's defaults (PIL's bilinear resize, a triangle filter, as ours).
* Projection head: lightly.models.modules.SimCLRProjectionHead(128, 2048, 128)
  with lightly's defaults num_layers 2, batch_norm True. Its layout is
  Linear(128, 2048, no bias) - BatchNorm1d(2048) - ReLU - Linear(2048, 128,
  no bias) - BatchNorm1d(128): lightly puts a batch norm on the output too
  (as SimCLR's own code). Ours and torch_ssl.py's had no output batch norm
  until issue 24, which this column found: now they end in one too (affine,
  as lightly's). Kept as lightly ships it.
* Loss: lightly.loss.NTXentLoss(temperature=0.2), memory bank off. lightly's
  default temperature is 0.5; 0.2 is our recipe's below 32 px (ours and
  torch_ssl.py use 0.5 at 32 px and above). Its value is ours: cross entropy
  over the 2N views, each against the other 2N - 2 as negatives.

What is ours (imported from bench/peer/torch_ssl.py, so that only lightly's
pieces differ):

* data: load_fashion_mnist (Fashion-MNIST IDX .gz layout), --train-limit /
  --eval-limit as torch_ssl.py; the batch order: torch.randperm from a
  torch.Generator seeded with --seed per epoch, batch 256, drop_last.
* backbone: ResNet18Cifar(1 channel, --width 16), features 128. With the same
  seed the backbone's initial weights, and the head's Linear weights, are
  torch_ssl.py's (same draws in the same order; lightly's head only lacks the
  output bias and adds a BN).
* each view goes through the network in its own forward (as lightly's SimCLR
  examples and ours do).
* optimizer: torch.optim.SGD, momentum 0.9, weight decay 5e-4 on every
  parameter, lr 0.3 x batch / 256, linear warm-up over int(0.5 x steps per
  epoch) steps then cosine to 0 (torch_ssl.lr_at). lightly's examples use other
  optimizers and schedules; not used here.
* evaluation: torch_ssl.embed / knn_top1 / linear_probe_top1 (frozen backbone,
  un-augmented normalized images, kNN k 200 T 0.1, L-BFGS logistic probe).

Differences left between this and torch_ssl.py --method simclr, besides the
head: views are made per image in PIL on uint8 (rounding to 8 bits after the
crop-resize and after each jitter op; PIL's contrast uses the mean rounded to
an integer), where ours works in float on the batch; ColorJitter draws a
random order of all 4 ops (saturation and hue are the identity on "L"
images); random draws come from torch's global generator (and numpy's global
one for lightly's blur coin), not torch_ssl.py's numpy Generator.

Usage:
  .peer-venv/bin/python bench/peer/lightly_simclr.py [--epochs 3] [--batch 256]
      [--width 16] [--threads 1] [--seed 0] [--train-limit N] [--eval-limit N]
      [--temperature 0.2] [--data /usr/share/datasets/fashion-mnist]
"""
import argparse
import os
import sys
import time

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch_ssl as peer  # noqa: E402
from torch_ssl import (BASE_LR, MEAN, STD, ResNet18Cifar, embed, knn_top1,  # noqa: E402
                       linear_probe_top1, load_fashion_mnist, log, to_float)

import lightly  # noqa: E402
from lightly.loss import NTXentLoss  # noqa: E402
from lightly.models.modules import SimCLRProjectionHead  # noqa: E402
from lightly.transforms import SimCLRTransform  # noqa: E402


def make_transform(size):
    return SimCLRTransform(
        input_size=size,
        min_scale=0.5 if size < 32 else 0.08,  # ours (ssl's simclr_config); lightly's default 0.08
        cj_strength=0.5,  # -> jitter (0.4, 0.4, 0.4, 0.1); lightly's default 1.0
        gaussian_blur=0.0 if size <= 32 else 0.5,  # ours: no blur at <= 32 px; lightly's default 0.5
        normalize={"mean": [MEAN], "std": [STD]},  # ours, 1 channel; lightly's default ImageNet RGB
    )


def views(transform, images_u8):
    """(N, 1, H, W) uint8 -> two (N, 1, H, W) float views, per image in PIL."""
    v0, v1 = [], []
    for img in images_u8[:, 0].numpy():
        a, b = transform(Image.fromarray(img, mode="L"))
        v0.append(a)
        v1.append(b)
    return torch.stack(v0), torch.stack(v1)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    peer.add_run_arguments(ap, epochs=3, threads=1)
    ap.add_argument("--temperature", type=float, default=None,
                    help="NT-Xent temperature (default ours: 0.2 below 32 px, else 0.5; lightly's default 0.5)")
    a = ap.parse_args()

    torch.set_num_threads(a.threads)
    torch.set_num_interop_threads(1)
    torch.manual_seed(a.seed)
    np.random.seed(a.seed)  # lightly's GaussianBlur draws its coin from numpy's global generator

    (train_x, train_y), (test_x, test_y) = load_fashion_mnist(a.data)
    eval_x, eval_y = train_x, train_y
    if a.eval_limit and a.eval_limit < eval_x.shape[0]:
        eval_x, eval_y = eval_x[:a.eval_limit], eval_y[:a.eval_limit]
    if a.train_limit and a.train_limit < train_x.shape[0]:
        train_x = train_x[:a.train_limit]
    if train_x.shape[1] != 1:
        sys.exit("lightly_simclr: 1-channel images expected")
    size = train_x.shape[2]
    temperature = a.temperature if a.temperature else (0.2 if size < 32 else 0.5)

    backbone = ResNet18Cifar(train_x.shape[1], a.width)  # ours
    head = SimCLRProjectionHead(backbone.feature_dim, 2048, 128)  # lightly's
    criterion = NTXentLoss(temperature=temperature)  # lightly's
    transform = make_transform(size)  # lightly's
    params = list(backbone.parameters()) + list(head.parameters())

    n = train_x.shape[0]
    steps_per_epoch = n // a.batch
    if steps_per_epoch == 0:
        sys.exit(f"lightly_simclr: {n} images, fewer than one batch of {a.batch}")
    total = steps_per_epoch * a.epochs
    base_lr = BASE_LR["simclr"] * a.batch / 256
    opt = torch.optim.SGD(params, lr=0.0, momentum=0.9, weight_decay=5e-4)
    log(f"lightly {lightly.__version__}, torch {torch.__version__}, {torch.get_num_threads()} threads; "
        f"training simclr, resnet18 width {a.width}, {n} images, batch {a.batch}, {a.epochs} epochs "
        f"({total} steps), lr {base_lr:.4g}, temperature {temperature}")
    log(f"head: {head.layers}")

    backbone.train(True)
    head.train(True)

    def batch_loss(idx):
        x0, x1 = views(transform, train_x[idx])
        return criterion(head(backbone(x0)), head(backbone(x1)))

    first_loss, last_loss, train_seconds = peer.train_loop(a, n, opt, base_lr, batch_loss, None, "lightly_simclr")

    t1 = time.perf_counter()
    ftr, fte = embed(backbone, eval_x), embed(backbone, test_x)  # ours: normalize, eval mode
    knn = knn_top1(ftr, eval_y, fte, test_y)
    lin, iters, converged = linear_probe_top1(ftr, eval_y, fte, test_y)
    eval_seconds = time.perf_counter() - t1
    log(f"evaluation: kNN {knn:.2f} %, linear {lin:.2f} % ({iters} L-BFGS iterations, "
        f"{'converged' if converged else 'not converged'}), {eval_seconds:.1f} s")
    print(f"LIGHTLY_QUALITY method=simclr epochs={a.epochs} train_seconds={train_seconds:.2f} "
          f"knn_top1={knn:.2f} linear_top1={lin:.2f} steps={total} first_loss={first_loss:.4f} "
          f"last_loss={last_loss:.4f} probe_iterations={iters} probe_converged={int(converged)} "
          f"eval_seconds={eval_seconds:.1f} threads={a.threads} train_images={n} "
          f"eval_images={eval_x.shape[0]} temperature={temperature} lightly={lightly.__version__} "
          f"seed={a.seed}", flush=True)


if __name__ == "__main__":
    main()
