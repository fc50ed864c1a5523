#!/usr/bin/env python3
"""Random crops of Debian's KDE wallpapers (plasma-workspace-wallpapers) and a
labelled set of Tux Paint stamps (tuxpaint-stamps-default), for the
split-brain quality check in bench/README.md.

    /usr/bin/python3 bench/data/make_wallpaper_crops.py OUT [--crops 64] [--size 64] [--seed 0]

OUT/wall/      unlabelled: per wallpaper (the largest file of each
               /usr/share/wallpapers/*/contents/images/, dark variants
               left out) `--crops` random square crops of 15-50 % of the
               shorter side, resized to --size x --size, RGB PNG
OUT/stamps/C/  the first 36 PNGs (sorted) of the stamp categories animals,
               food, plants, seasonal, town, RGB (alpha composited on white)
"""
import argparse
import os
import random
import sys

from PIL import Image

ap = argparse.ArgumentParser()
ap.add_argument("out")
ap.add_argument("--crops", type=int, default=64)
ap.add_argument("--size", type=int, default=64)
ap.add_argument("--seed", type=int, default=0)
a = ap.parse_args()
rng = random.Random(a.seed)
Image.MAX_IMAGE_PIXELS = None

root = "/usr/share/wallpapers"
os.makedirs(os.path.join(a.out, "wall"), exist_ok=True)
sources = []
for name in sorted(os.listdir(root)):
    d = os.path.join(root, name, "contents", "images")
    if not os.path.isdir(d):
        continue
    files = [os.path.join(d, f) for f in os.listdir(d) if f.lower().endswith((".jpg", ".png"))]
    if not files:
        continue
    best = max(files, key=lambda f: Image.open(f).size[0] * Image.open(f).size[1])
    sources.append((name, best))
for name, path in sources:
    im = Image.open(path).convert("RGB")
    w, h = im.size
    s = min(w, h)
    for k in range(a.crops):
        side = int(s * rng.uniform(0.15, 0.5))
        x, y = rng.randrange(0, w - side + 1), rng.randrange(0, h - side + 1)
        im.crop((x, y, x + side, y + side)).resize((a.size, a.size), Image.BILINEAR).save(
            os.path.join(a.out, "wall", f"{name}_{k:03d}.png"))
print(f"{len(sources)} wallpapers, {len(sources) * a.crops} crops in {a.out}/wall", file=sys.stderr)

stamps = "/usr/share/tuxpaint/stamps"
n = 0
for cat in ["animals", "food", "plants", "seasonal", "town"]:
    files = []
    for dp, _, fs in os.walk(os.path.join(stamps, cat)):
        files += [os.path.join(dp, f) for f in fs if f.endswith(".png")]
    os.makedirs(os.path.join(a.out, "stamps", cat), exist_ok=True)
    for i, f in enumerate(sorted(files)[:36]):
        im = Image.open(f).convert("RGBA")
        bg = Image.new("RGBA", im.size, (255, 255, 255, 255))
        Image.alpha_composite(bg, im).convert("RGB").save(os.path.join(a.out, "stamps", cat, f"{i:02d}.png"))
        n += 1
print(f"{n} stamps in 5 classes in {a.out}/stamps", file=sys.stderr)
