#!/usr/bin/env python3
"""Writes "glyphs": a sparse-stroke data set in Fashion-MNIST's file layout.

A held-out data set for the short-budget comparisons of bench/README.md
(issue 24): 28 x 28 grayscale images of thin white strokes on black that
cover a small part of the frame, unlike Fashion-MNIST's dense, centred
garments. Class c (0-9) is the digit c rendered from one of the TrueType
fonts Debian ships (fonts-dejavu-core, fonts-freefont-ttf; no bold faces,
so strokes stay 1-2 px wide) at a random height of 10-16 px, rotated by up to
+-15 degrees, at a random position that keeps the glyph inside the frame.
Rendering is at 4x and box-filtered down (anti-aliased edges). Deterministic
for a seed: the train and test splits use seeds `seed` and `seed + 1`.

Usage: /usr/bin/python3 bench/data/make_glyphs.py OUT_DIR [--train 8000] [--test 2000] [--seed 0]
           [--height MIN MAX] [--jitter PIXELS]
"glyphs-c" of bench/README.md (centred): --height 14 20 --jitter 3
Then:  ssl train --data fashion-mnist:OUT_DIR ...
(Needs python3-pil and the two font packages; a bench tool, not part of ssl.)
"""
import argparse
import glob
import gzip
import os
import struct

import numpy as np
from PIL import Image, ImageDraw, ImageFont

SIDE, SCALE = 28, 4
FONT_GLOBS = ["/usr/share/fonts/truetype/dejavu/DejaVu*.ttf", "/usr/share/fonts/truetype/freefont/Free*.ttf"]


def fonts():
    paths = sorted(p for g in FONT_GLOBS for p in glob.glob(g)
                   if "Bold" not in os.path.basename(p) and "Math" not in os.path.basename(p))
    if not paths:
        raise SystemExit("make_glyphs: no fonts found; apt-get install fonts-dejavu-core fonts-freefont-ttf")
    return paths


def render(rng, font_paths, digit, cache, heights, jitter):
    path = font_paths[rng.integers(len(font_paths))]
    height = int(rng.integers(heights[0], heights[1] + 1)) * SCALE
    key = (path, height)
    if key not in cache:
        cache[key] = ImageFont.truetype(path, height)
    font = cache[key]
    text = str(digit)
    left, top, right, bottom = font.getbbox(text)
    glyph = Image.new("L", (right - left + 8 * SCALE, bottom - top + 8 * SCALE), 0)
    ImageDraw.Draw(glyph).text((4 * SCALE - left, 4 * SCALE - top), text, fill=255, font=font)
    glyph = glyph.rotate(float(rng.uniform(-15, 15)), resample=Image.BILINEAR, expand=True)
    bbox = glyph.getbbox()
    glyph = glyph.crop(bbox)
    big = SIDE * SCALE
    if glyph.width > big or glyph.height > big:  # never at these sizes; stay safe
        glyph = glyph.resize((min(glyph.width, big), min(glyph.height, big)), Image.BILINEAR)
    canvas = Image.new("L", (big, big), 0)
    free_x, free_y = big - glyph.width, big - glyph.height
    if jitter is None:  # anywhere in the frame
        x, y = int(rng.integers(0, free_x + 1)), int(rng.integers(0, free_y + 1))
    else:  # centred, then moved by up to `jitter` pixels
        j = jitter * SCALE
        x = min(max(free_x // 2 + int(rng.integers(-j, j + 1)), 0), free_x)
        y = min(max(free_y // 2 + int(rng.integers(-j, j + 1)), 0), free_y)
    canvas.paste(glyph, (x, y))
    return np.asarray(canvas.resize((SIDE, SIDE), Image.BOX), dtype=np.uint8)


def write_idx(path, array):
    with gzip.open(path, "wb", compresslevel=6) as f:
        if array.ndim == 3:
            f.write(struct.pack(">IIII", 0x803, *array.shape))
        else:
            f.write(struct.pack(">II", 0x801, array.shape[0]))
        f.write(array.tobytes())


def make(n, seed, font_paths, heights, jitter):
    rng = np.random.default_rng(seed)
    labels = np.arange(n, dtype=np.uint8) % 10
    rng.shuffle(labels)
    cache = {}
    images = np.stack([render(rng, font_paths, int(c), cache, heights, jitter) for c in labels])
    return images, labels


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--train", type=int, default=8000)
    ap.add_argument("--test", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--height", type=int, nargs=2, default=(10, 16), metavar=("MIN", "MAX"),
                    help="glyph height range in pixels (default 10 16)")
    ap.add_argument("--jitter", type=int, default=None,
                    help="centre the glyphs and move them by up to this many pixels (default: anywhere)")
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    font_paths = fonts()
    for split, n, seed in (("train", a.train, a.seed), ("t10k", a.test, a.seed + 1)):
        images, labels = make(n, seed, font_paths, a.height, a.jitter)
        write_idx(os.path.join(a.out, f"{split}-images-idx3-ubyte.gz"), images)
        write_idx(os.path.join(a.out, f"{split}-labels-idx1-ubyte.gz"), labels)
        print(f"{split}: {n} images, mean pixel {images.mean() / 255:.4f}, "
              f"nonzero {np.count_nonzero(images) / images.size:.3f}, fonts {len(font_paths)}")


if __name__ == "__main__":
    main()
