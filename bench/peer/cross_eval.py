#!/usr/bin/env python3
"""Evaluates an encoder with the PyTorch peer's evaluation code
(torch_ssl.py's embed, kNN and L-BFGS probe): one of our checkpoints or
dumps, the peer's random init, or one with the other's stem.

    cross_eval.py --data DIR [--checkpoint FILE] [--torch-seed S]
                  [--stem-from-torch-seed S] [--width 16] [--jigsaw-eval]
                  [--train-limit 8000] [--test-limit N]

--checkpoint: a safetensors file of ours (last.safetensors, backbone.safetensors,
or peer_step_dump's output: its init/ tensors); without it the peer's own
random init from --torch-seed. --stem-from-torch-seed replaces conv1 with the
peer's draw for that seed. --jigsaw-eval: Jigsaw's 48-px standardised input
(its eval_transform), else the peer's default normalisation.
"""
import argparse
import os
import sys

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "..", "tests", "peer"))
import torch_ssl as peer  # noqa: E402
from step_check import peer_name  # noqa: E402
from torch_load_check import read_safetensors  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True)
    ap.add_argument("--checkpoint")
    ap.add_argument("--torch-seed", type=int, default=0)
    ap.add_argument("--stem-from-torch-seed", type=int)
    ap.add_argument("--width", type=int, default=16)
    ap.add_argument("--jigsaw-eval", action="store_true")
    ap.add_argument("--train-limit", type=int, default=8000)
    ap.add_argument("--test-limit", type=int)
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.torch_seed)
    bb = peer.ResNet18Cifar(1, a.width)
    state = bb.state_dict()
    if a.checkpoint:
        f, _ = read_safetensors(a.checkpoint)
        loaded = 0
        for key, value in f.items():
            key = key[len("init/"):] if key.startswith("init/") else key
            if not key.startswith("backbone."):
                continue
            name = peer_name(key[len("backbone."):])
            if name in state:
                state[name].copy_(value.view_as(state[name]))
                loaded += 1
        want = len([k for k in state if not k.endswith("num_batches_tracked")])
        if loaded < want:
            sys.exit(f"cross_eval: {a.checkpoint} gave {loaded} of the backbone's {want} tensors")
    if a.stem_from_torch_seed is not None:
        torch.manual_seed(a.stem_from_torch_seed)
        with torch.no_grad():
            state["conv1.weight"].copy_(peer.ResNet18Cifar(1, a.width).state_dict()["conv1.weight"])
    (tx, ty), (vx, vy) = peer.load_fashion_mnist(a.data)
    tx, ty = tx[:a.train_limit], ty[:a.train_limit]
    if a.test_limit:
        vx, vy = vx[:a.test_limit], vy[:a.test_limit]
    transform = peer.Jigsaw(bb).eval_transform if a.jigsaw_eval else None
    ftr, fte = peer.embed(bb, tx, transform=transform), peer.embed(bb, vx, transform=transform)
    knn = peer.knn_top1(ftr, ty, fte, vy)
    lin = peer.linear_probe_top1(ftr, ty, fte, vy)[0]
    print(f"CROSS_EVAL knn_top1={knn:.2f} linear_top1={lin:.2f}")


if __name__ == "__main__":
    main()
