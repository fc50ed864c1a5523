#!/usr/bin/env python3
"""Peer check: ssl's issue-20 layers against PyTorch.

    torch_nn_layers_check.py FILE

FILE is layers.safetensors from tests/peer/nn_layers_dump.cpp (see its
header). torch is a peer here, never a dependency.

  upsample     F.interpolate(x, size, mode="bilinear", align_corners=False)
  layer_norm   F.group_norm(x, 1, weight, bias, eps) (one group: statistics
               over (C, H, W) per sample, affine per channel); without affine
               also F.layer_norm(x, x.shape[1:]) (the same function)
  masked_conv  the stored weight has zeros exactly below the kernel's centre
               row (at and below it when strict), and F.conv2d(x, weight,
               bias, padding=k // 2) gives ssl's output; then torch's
               autograd confirms causality: d y[row i] / d x[row r] = 0 for r > i
               (r >= i when strict)
  dropout      values are 0 or x / (1 - p) exactly as F.dropout's (whose
               kept scale is checked on the same x), the kept fraction is
               within 5 sigma of 1 - p for both, and eval is the identity
Float32 tolerance TOL of max(1, |y|). Prints one line per case; exits 0
when all agree, 1 otherwise.
"""
import json
import math
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_load_check import read_safetensors  # noqa: E402

TOL = 2e-6


def close(a, b, tol=TOL):
    return float((a.double() - b.double()).abs().max()), float(b.abs().max().clamp(min=1.0)) * tol


def main():
    tensors, meta = read_safetensors(sys.argv[1])
    cases = sorted(k[len("case/"):] for k in meta if k.startswith("case/"))
    failures = 0
    for c in cases:
        m = json.loads(meta["case/" + c])
        kind = c.split("/")[0]
        t = {k[len(c) + 1:]: v for k, v in tensors.items() if k.startswith(c + "/")}
        ok, detail = True, ""
        if kind == "upsample":
            y = F.interpolate(t["x"], size=(m["out_h"], m["out_w"]), mode="bilinear", align_corners=False)
            err, tol = close(t["y"], y)
            ok, detail = err <= tol, f"max |diff| {err:.3g} (tol {tol:.3g})"
        elif kind == "layer_norm":
            w, b = (t["weight"], t["bias"]) if m["affine"] else (None, None)
            y = F.group_norm(t["x"], 1, w, b, m["eps"])
            err, tol = close(t["y"], y, 1e-5)
            ok, detail = err <= tol, f"group_norm(1) max |diff| {err:.3g}"
            if not m["affine"]:
                y2 = F.layer_norm(t["x"], t["x"].shape[1:], eps=m["eps"])
                err2, _ = close(t["y"], y2, 1e-5)
                ok = ok and err2 <= tol
                detail += f", layer_norm max |diff| {err2:.3g}"
        elif kind == "masked_conv":
            k, centre = m["kernel"], m["include_centre_row"]
            mask = torch.zeros(k, k)
            mask[: (k // 2 + 1 if centre else k // 2)] = 1
            w = t["weight"]
            masked_ok = bool((w * (1 - mask)).abs().max() == 0)
            y = F.conv2d(t["x"], w, t["bias"], padding=k // 2)
            err, tol = close(t["y"], y, 1e-5)
            x = t["x"].clone().requires_grad_(True)
            yy = F.conv2d(x, w, t["bias"], padding=k // 2)
            H = x.shape[2]
            causal = True
            for i in range(H):
                (g,) = torch.autograd.grad(yy[:, :, i].sum(), x, retain_graph=True)
                seen = g.abs().sum(dim=(0, 1, 3)) > 0
                for r in range(H):
                    if (r > i or (not centre and r == i)) and seen[r]:
                        causal = False
            ok = masked_ok and causal and err <= tol
            detail = f"masked {masked_ok}, causal {causal}, conv max |diff| {err:.3g} (tol {tol:.3g})"
        elif kind == "dropout":
            p, x, y = m["p"], t["x"], t["y"]
            torch.manual_seed(0)
            yt = F.dropout(x, p, training=True)
            n = x.numel()
            kept, kept_t = int((y != 0).sum()), int((yt != 0).sum())
            sd = math.sqrt(n * p * (1 - p))
            err = float(((y - x / (1 - p)) * (y != 0)).abs().max())
            err_t = float(((yt - x / (1 - p)) * (yt != 0)).abs().max())
            ok = (abs(kept - n * (1 - p)) < 5 * sd and abs(kept_t - n * (1 - p)) < 5 * sd and err <= 1e-6 * 2
                  and err_t <= 1e-6 * 2 and bool(torch.equal(t["y_eval"], x)))
            detail = (f"kept {kept / n:.4f} (torch {kept_t / n:.4f}, expect {1 - p:.4f}), "
                      f"scale error {err:.3g} (torch {err_t:.3g}), eval identity {bool(torch.equal(t['y_eval'], x))}")
        else:
            ok, detail = False, "unknown case"
        print(f"{'ok  ' if ok else 'FAIL'} {c}: {detail}")
        failures += 0 if ok else 1
    print(f"{len(cases) - failures}/{len(cases)} cases agree with torch {torch.__version__}")
    return 1 if failures or not cases else 0


if __name__ == "__main__":
    sys.exit(main())
