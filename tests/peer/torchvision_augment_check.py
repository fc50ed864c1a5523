#!/usr/bin/env python3
"""Peer check: ssl::augment's ops against torchvision.

    torchvision_augment_check.py DIR

DIR holds fixed.safetensors and dist.safetensors written by
tests/peer/augment_ops.cpp (see its header for the layout). torchvision is a
peer here, never a dependency (Debian: apt-get install python3-torchvision).

1. Fixed parameters: every case of fixed.safetensors is recomputed with
   torchvision.transforms.functional on the same float image (no uint8
   rounding anywhere): resized_crop (bilinear, antialias=True), hflip,
   adjust_brightness / contrast / saturation / hue (in the case's order),
   rgb_to_grayscale, gaussian_blur (reflect border), solarize, normalize.
   Pointwise ops must agree to 2e-6, resampling to 1e-5 (float rounding of
   the filter weights).
2. Recipes: the first draws of every pipeline of dist.safetensors are
   replayed with the functional ops and the parameters ssl drew (exact
   composition), and all of ssl's draws are checked against the
   distributions torchvision's random transforms draw from (coins, factor
   and sigma ranges, the 24 jitter orders).
3. Random parameters: every pipeline of dist.safetensors is rebuilt from
   torchvision's random transforms (RandomResizedCrop's get_params,
   RandomHorizontalFlip, RandomApply(ColorJitter), RandomGrayscale,
   RandomApply(GaussianBlur), RandomSolarize, Normalize) and drawn as many
   times as ssl drew it; the mean over draws of each per-draw statistic
   (mean, std, fraction changed, fraction at the minimum / maximum, gray,
   foreground fraction; for crops the box's area fraction, log aspect ratio,
   centre and the fraction of central fallback boxes) must agree within
   Z_MAX standard errors of the difference (or MEAN_FLOOR).

KNOWN_DIFFERENCES lists where ssl deliberately differs from torchvision; each
is checked to be exactly that difference (the case is recomputed with the
difference applied and must then agree to the normal tolerance), and its size
against plain torchvision is printed.

Prints one line per failure and a summary; exits 0 when all agree, 1 otherwise.
"""
import json
import math
import os
import sys

import torch
import torchvision.transforms as T
import torchvision.transforms.functional as TF
from torchvision.transforms import InterpolationMode

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_load_check import read_safetensors  # noqa: E402

POINTWISE_TOL = 2e-6
RESAMPLE_TOL = 1e-5
Z_MAX = 4.0
# Differences of mean statistics below this are not sampling questions: a
# statistic that is the same on every draw (the std of a flipped image) has
# no sampling error, only float rounding, and the known grayscale weight
# difference moves a mean pixel by up to 1e-4.
MEAN_FLOOR = 1e-4
STAT_NAMES = ["mean", "std", "changed", "at_min", "at_max", "gray", "fg"]

# ssl's grayscale is 0.299 R + 0.587 G + 0.114 B (ITU-R 601, as PIL);
# torchvision's tensor path uses 0.2989 for R. It reaches grayscale, and
# through the grayscale mean / image, contrast and saturation.
SSL_GRAY = (0.299, 0.587, 0.114)
KNOWN_DIFFERENCES = {
    "gray weights": "ssl's grayscale uses R weight 0.299, torchvision's 0.2989 "
                    "(grayscale, the mean of contrast and the gray of saturation, 3-channel images)",
}


def ssl_kernel_size(k, h, w):
    """ssl's gaussian_blur kernel: kernel_size, or for 0 int(0.1 min(h, w)) made odd, at least 3."""
    if k:
        return int(k)
    k = min(h, w) // 10
    if k % 2 == 0:
        k += 1
    return max(k, 3)


def gray_ssl(img):
    r, g, b = img.double().unbind(0)
    return (SSL_GRAY[0] * r + SSL_GRAY[1] * g + SSL_GRAY[2] * b).float().unsqueeze(0)


def contrast_ssl(img, f):
    m = (gray_ssl(img) if img.shape[0] == 3 else img).mean()
    return (f * img + (1 - f) * m).clamp(0, 1)


def saturation_ssl(img, f):
    if img.shape[0] == 1:
        return img
    return (f * img + (1 - f) * gray_ssl(img)).clamp(0, 1)


def params_dict(name, v):
    """augment_ops.cpp's params_values of op `name` as a dict."""
    if name == "random_resized_crop":
        return {"top": int(v[0]), "left": int(v[1]), "height": int(v[2]), "width": int(v[3])}
    if name == "horizontal_flip":
        return {"flip": bool(v[0])}
    if name == "color_jitter":
        return {"active": bool(v[0]), "order": [int(a) for a in v[1:5]], "brightness": v[5], "contrast": v[6],
                "saturation": v[7], "hue": v[8]}
    if name in ("random_grayscale", "solarize"):
        return {"active": bool(v[0])}
    if name == "gaussian_blur":
        return {"active": bool(v[0]), "sigma": v[1]}
    return {}


PARAM_WIDTH = {"random_resized_crop": 4, "horizontal_flip": 1, "color_jitter": 9, "random_grayscale": 1,
               "solarize": 1, "gaussian_blur": 2, "normalize": 0}


def jitter_fixed(img, q, gray_weights_ssl):
    """ColorJitter's adjustments with fixed factors in the given order (an identity factor is skipped)."""
    out = img
    for a in q["order"]:
        if a == 0 and q["brightness"] != 1:
            out = TF.adjust_brightness(out, q["brightness"])
        elif a == 1 and q["contrast"] != 1:
            out = contrast_ssl(out, q["contrast"]) if gray_weights_ssl else TF.adjust_contrast(out, q["contrast"])
        elif a == 2 and q["saturation"] != 1:
            out = saturation_ssl(out, q["saturation"]) if gray_weights_ssl else TF.adjust_saturation(out, q["saturation"])
        elif a == 3 and q["hue"] != 0:
            out = TF.adjust_hue(out, q["hue"])
    return out


def apply_fixed(img, op, q, gray_weights_ssl=False):
    """torchvision's functional op with the parameters ssl drew (a dict of
    params_dict); (output, tolerance)."""
    name = op["op"]
    if name == "random_resized_crop":
        size = [int(op["size"][0]), int(op["size"][1])]
        out = TF.resized_crop(img, q["top"], q["left"], q["height"], q["width"], size,
                              InterpolationMode.BILINEAR, antialias=True)
        return out, RESAMPLE_TOL
    if name == "horizontal_flip":
        return (TF.hflip(img) if q["flip"] else img), 0.0
    if name == "normalize":
        return TF.normalize(img, op["mean"], op["std"]), POINTWISE_TOL
    if not q["active"]:
        return img, 0.0
    if name == "color_jitter":
        return jitter_fixed(img, q, gray_weights_ssl), POINTWISE_TOL
    if name == "random_grayscale":
        if img.shape[0] == 1:
            return img, 0.0
        g = gray_ssl(img) if gray_weights_ssl else TF.rgb_to_grayscale(img, 1)
        return g.expand(3, -1, -1), POINTWISE_TOL
    if name == "gaussian_blur":
        k = ssl_kernel_size(op["kernel_size"], img.shape[1], img.shape[2])
        return TF.gaussian_blur(img, [k, k], [q["sigma"], q["sigma"]]), POINTWISE_TOL
    if name == "solarize":
        return TF.solarize(img, op["threshold"]), 0.0
    raise ValueError(f"no torchvision counterpart for {name}")


def uses_gray(op, q, channels):
    """Whether the case goes through grayscale weights (3 channels only)."""
    if channels != 3:
        return False
    if op["op"] == "random_grayscale":
        return True
    return op["op"] == "color_jitter" and (q["contrast"] != 1 or q["saturation"] != 1)


def check_fixed(path):
    tensors, meta = read_safetensors(path)
    failures, known = [], {}
    worst = {}
    for key in sorted(k for k in meta if k.startswith("case/")):
        name = key[len("case/"):]
        case = json.loads(meta[key])
        img = tensors["image/" + case["image"]].float()
        ours = tensors["out/" + name].float()
        q = params_dict(case["op"]["op"], case["params"])
        ref, tol = apply_fixed(img, case["op"], q)
        if ref.shape != ours.shape:
            failures.append(f"fixed {name}: shape {tuple(ours.shape)}, torchvision {tuple(ref.shape)}")
            continue
        err = (ours - ref).abs().max().item()
        kind = case["op"]["op"]
        worst[kind] = max(worst.get(kind, 0.0), err)
        if uses_gray(case["op"], q, img.shape[0]):
            # Known difference: must match torchvision with ssl's weights, and
            # its size against plain torchvision is reported.
            alt, _ = apply_fixed(img, case["op"], q, gray_weights_ssl=True)
            alt_err = (ours - alt).abs().max().item()
            if alt_err > tol:
                failures.append(f"fixed {name}: max |ssl - torchvision with ssl's gray weights| = {alt_err:.3g} > {tol:g}")
            known.setdefault("gray weights", []).append((name, err))
            continue
        if err > tol:
            failures.append(f"fixed {name}: max |ssl - torchvision| = {err:.3g} > {tol:g}")
    for kind, e in sorted(worst.items()):
        print(f"  fixed {kind}: worst max |ssl - torchvision| = {e:.3g}")
    for what, cases in known.items():
        worst_name, worst_err = max(cases, key=lambda c: c[1])
        print(f"  known difference ({KNOWN_DIFFERENCES[what]}): {len(cases)} cases, "
              f"largest max |ssl - torchvision| = {worst_err:.3g} ({worst_name})")
    n = sum(1 for k in meta if k.startswith("case/"))
    return failures, n


# ---------------------------------------------------------------- random ----

def draw_stats(x, o, chunk=256):
    """The per-draw statistics of augment_ops.cpp, in its order: x the input
    (C, H, W), o the outputs of all draws (N, C', H', W'); (N, 7). Sums in
    double, comparisons in float (as the C++ side, up to values within float
    rounding of a threshold)."""
    if o.shape[0] > chunk:
        return torch.cat([draw_stats(x, o[i:i + chunk]) for i in range(0, o.shape[0], chunk)])
    n = o.shape[0]
    flat = o.reshape(n, -1)
    size = flat.shape[1]
    mean = flat.double().sum(1) / size
    dev = flat - mean.float().unsqueeze(1)
    std = ((dev * dev).double().sum(1) / size).sqrt()
    lo, hi = flat.min(1, keepdim=True).values, flat.max(1, keepdim=True).values

    def frac(mask):
        return mask.sum(1).double() / size

    nan = torch.full((n,), math.nan, dtype=torch.float64)
    changed = frac((flat - x.reshape(1, -1)).abs() > 1e-6) if o.shape[1:] == x.shape else nan
    gray = nan
    if o.shape[1] == 3:
        same = ((o[:, 0] - o[:, 1]).abs() <= 1e-6) & ((o[:, 0] - o[:, 2]).abs() <= 1e-6)
        gray = same.reshape(n, -1).all(1).double()
    return torch.stack([mean, std, changed, frac(flat <= lo + 1e-5), frac(flat >= hi - 1e-5), gray,
                        frac(flat > mean.float().unsqueeze(1))], 1)


class CropRecorder:
    """RandomResizedCrop with its box recorded (get_params + resized_crop, antialiased bilinear)."""

    def __init__(self, op):
        self.size = [int(op["size"][0]), int(op["size"][1])]
        self.scale, self.ratio = tuple(op["scale"]), tuple(op["ratio"])
        self.boxes = []

    def __call__(self, img):
        t, l, h, w = T.RandomResizedCrop.get_params(img, self.scale, self.ratio)
        self.boxes.append((t, l, h, w))
        return TF.resized_crop(img, t, l, h, w, self.size, InterpolationMode.BILINEAR, antialias=True)


class Blur:
    """RandomApply(GaussianBlur) with ssl's kernel size for the image it gets."""

    def __init__(self, op):
        self.op = op

    def __call__(self, img):
        k = ssl_kernel_size(self.op["kernel_size"], img.shape[1], img.shape[2])
        return T.RandomApply([T.GaussianBlur(k, tuple(self.op["sigma"]))], p=self.op["p"])(img)


def torchvision_transform(op):
    name = op["op"]
    if name == "random_resized_crop":
        return CropRecorder(op)
    if name == "horizontal_flip":
        return T.RandomHorizontalFlip(op["p"])
    if name == "color_jitter":
        cj = T.ColorJitter(op["brightness"], op["contrast"], op["saturation"], op["hue"])
        return T.RandomApply([cj], p=op["p"])
    if name == "random_grayscale":
        return T.RandomGrayscale(op["p"])
    if name == "gaussian_blur":
        return Blur(op)
    if name == "solarize":
        return T.RandomSolarize(op["threshold"], op["p"])
    if name == "normalize":
        return T.Normalize(op["mean"], op["std"])
    raise ValueError(f"no torchvision transform for {name}")


def box_stats(boxes, img, ratio):
    """Per box: area fraction, log(width / height), centre row / column fraction, central fallback or not."""
    h, w = img.shape[1], img.shape[2]
    # torchvision's own fallback box: a scale of 4 fails every attempt at any ratio.
    fallback = tuple(T.RandomResizedCrop.get_params(img, [4.0, 4.0], list(ratio)))
    return torch.tensor([[bh * bw / (h * w), math.log(bw / bh), (t + bh / 2) / h, (l + bw / 2) / w,
                          float((t, l, bh, bw) == fallback)] for t, l, bh, bw in boxes], dtype=torch.float64)


def compare_means(label, names, ours, theirs, failures, report):
    """z-test on the mean over draws of each column; NaN columns are skipped."""
    for j, stat in enumerate(names):
        a, b = ours[:, j], theirs[:, j]
        if torch.isnan(a).all() and torch.isnan(b).all():
            continue
        ma, mb = a.mean().item(), b.mean().item()
        se = math.sqrt(a.var().item() / len(a) + b.var().item() / len(b))
        z = (ma - mb) / se if se > 0 else (0.0 if ma == mb else math.inf)
        if abs(ma - mb) > MEAN_FLOOR:
            report.append((abs(z), f"{label} {stat}: ssl {ma:.5g}, torchvision {mb:.5g}, z = {z:+.2f}"))
        if not (abs(z) <= Z_MAX or abs(ma - mb) <= MEAN_FLOOR):
            failures.append(f"dist {label} {stat}: ssl {ma:.5g}, torchvision {mb:.5g} (z = {z:+.2f}, |z| > {Z_MAX})")


def replay(name, ops, img, params, outputs):
    """ssl's first draws of a pipeline, redone with torchvision's functional
    ops and the parameters ssl drew (ssl's gray weights: a known difference)."""
    failures = []
    for i in range(outputs.shape[0]):
        o, tol, at = img, 0.0, 0
        for op in ops:
            width = PARAM_WIDTH[op["op"]]
            o, t = apply_fixed(o, op, params_dict(op["op"], params[i, at:at + width].tolist()), gray_weights_ssl=True)
            if op["op"] == "normalize":
                tol /= min(op["std"])
            tol = max(tol, t)
            at += width
        err = (o - outputs[i]).abs().max().item()
        if o.shape != outputs[i].shape or err > tol:
            failures.append(f"replay {name} draw {i}: max |ssl - torchvision| = {err:.3g} > {tol:g} "
                            f"(params {params[i].tolist()})")
    return failures


def ks_uniform(values, lo, hi):
    """Kolmogorov-Smirnov distance of values from U[lo, hi) (0 when lo == hi and all equal it)."""
    v = sorted(values)
    n = len(v)
    if hi == lo:
        return 0.0 if all(x == lo for x in v) else 1.0
    d = 0.0
    for i, x in enumerate(v):
        f = min(max((x - lo) / (hi - lo), 0.0), 1.0)
        d = max(d, (i + 1) / n - f, f - i / n)
    return d


def ks_limit(n):
    """KS distance exceeded with probability about 1e-4 for n samples."""
    return math.sqrt(-math.log(0.5e-4) / (2 * n))


def chi2_limit(df):
    """chi-square quantile at 1 - 1e-4 (Wilson-Hilferty)."""
    z = 3.72
    return df * (1 - 2 / (9 * df) + z * math.sqrt(2 / (9 * df))) ** 3


def check_params(name, ops, params, failures):
    """ssl's drawn parameters against the distributions torchvision's
    transforms draw from: coins against p (binomial z), factors and sigma
    against torchvision's uniform ranges (Kolmogorov-Smirnov), the jitter
    order against torch.randperm's 24 equally likely orders (chi-square)."""
    n, at = params.shape[0], 0
    for op in ops:
        kind, width = op["op"], PARAM_WIDTH[op["op"]]
        cols = params[:, at:at + width]
        at += width

        def coin(label, col, p):
            frac = col.double().mean().item()
            sd = math.sqrt(p * (1 - p) / n)
            if (sd == 0 and frac != p) or (sd > 0 and abs(frac - p) > Z_MAX * sd):
                failures.append(f"params {name} {label}: ssl's fraction {frac:.4f}, torchvision's p {p}")

        def uniform(label, col, lo, hi):
            d = ks_uniform(col.tolist(), lo, hi)
            if d > ks_limit(n):
                failures.append(f"params {name} {label}: KS distance {d:.4f} from torchvision's U[{lo:g}, {hi:g}) "
                                f"(limit {ks_limit(n):.4f})")

        if kind == "horizontal_flip":
            coin("flip", cols[:, 0], op["p"])
        elif kind in ("random_grayscale", "solarize"):
            coin("active", cols[:, 0], op["p"])
        elif kind == "gaussian_blur":
            coin("active", cols[:, 0], op["p"])
            sigma = T.GaussianBlur(3, tuple(op["sigma"])).sigma
            uniform("sigma", cols[:, 1], sigma[0], sigma[1])
        elif kind == "color_jitter":
            coin("active", cols[:, 0], op["p"])
            cj = T.ColorJitter(op["brightness"], op["contrast"], op["saturation"], op["hue"])
            for j, what in enumerate(["brightness", "contrast", "saturation", "hue"]):
                r = getattr(cj, what)
                lo, hi = (r[0], r[1]) if r is not None else ((0.0, 0.0) if what == "hue" else (1.0, 1.0))
                uniform(what, cols[:, 5 + j], lo, hi)
            counts = {}
            for row in cols[:, 1:5].tolist():
                counts[tuple(row)] = counts.get(tuple(row), 0) + 1
            expected = n / 24
            chi2 = sum((c - expected) ** 2 / expected for c in counts.values()) + expected * (24 - len(counts))
            if len(counts) > 24 or chi2 > chi2_limit(23):
                failures.append(f"params {name} order: {len(counts)} distinct orders, chi-square {chi2:.1f} "
                                f"against torch.randperm's uniform orders (limit {chi2_limit(23):.1f})")


def check_dist(path):
    tensors, meta = read_safetensors(path)
    torch.manual_seed(0)
    failures, report = [], []
    cases = sorted(k[len("dist/"):] for k in meta if k.startswith("dist/"))
    images = {}
    for name in cases:
        case = json.loads(meta["dist/" + name])
        ours = tensors["stats/" + name]
        if case["image"] not in images:
            images[case["image"]] = read_image(case["image"])
        img = images[case["image"]]
        failures += replay(name, case["ops"], img, tensors["params/" + name], tensors["replay/" + name])
        check_params(name, case["ops"], tensors["params/" + name], failures)
        steps = [torchvision_transform(op) for op in case["ops"]]
        outs = []
        for _ in range(ours.shape[0]):
            o = img
            for s in steps:
                o = s(o)
            outs.append(o)
        theirs = draw_stats(img, torch.stack(outs))
        compare_means(name, STAT_NAMES, ours, theirs, failures, report)
        if isinstance(steps[0], CropRecorder):
            ratio = tuple(case["ops"][0]["ratio"])
            ob = box_stats([tuple(int(v) for v in r[:4]) for r in tensors["params/" + name].tolist()], img, ratio)
            tb = box_stats(steps[0].boxes, img, ratio)
            compare_means(name + " box", ["area", "log_aspect", "centre_y", "centre_x", "fallback"], ob, tb,
                          failures, report)
    report.sort(reverse=True)
    print(f"  random: {len(cases)} pipelines; largest |z| of the differences above {MEAN_FLOOR:g}:")
    for _, line in report[:5]:
        print("    " + line)
    return failures, len(cases)


def read_image(name):
    return IMAGES[name]


IMAGES = {}


def main(argv):
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    torch.set_num_threads(1)  # small images: threads only add overhead
    fixed_path, dist_path = os.path.join(argv[1], "fixed.safetensors"), os.path.join(argv[1], "dist.safetensors")
    tensors, _ = read_safetensors(fixed_path)
    IMAGES.update({k[len("image/"):]: v.float() for k, v in tensors.items() if k.startswith("image/")})
    f1, n1 = check_fixed(fixed_path)
    f2, n2 = check_dist(dist_path)
    failures = f1 + f2
    for f in failures:
        print("FAIL: " + f)
    status = "FAIL" if failures else "OK"
    print(f"{status}: {n1} fixed-parameter cases, {n2} random pipelines against torchvision "
          f"{__import__('torchvision').__version__}; {len(failures)} disagreements")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
