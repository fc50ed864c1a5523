#!/usr/bin/env python3
"""Differential harness, PyTorch's side (issue 24).

    step_check.py DIR [METHOD ...]

DIR holds <method>.safetensors from peer_step_dump (tests/peer/step_dump.cpp):
our initial weights, the views each step trained on, and our loss, gradients
and weights after each step. Here the PyTorch peer of bench/peer/torch_ssl.py
(the same module classes and loss code that bench/run_quality.sh trains)
starts from our initial weights, is fed our views instead of its own
augmentation, and takes the same steps with torch.optim.SGD. Loss, every
gradient and every parameter and buffer after each step must agree to float
tolerance; the first disagreement is printed with its size.

MoCo v2's key encoder is given the shuffle permutations our step used
(dumped as s<k>/shuffle<v>).

Prints one line per method and step and exits 0 when everything agrees,
1 otherwise.
"""
import math
import os
import sys

import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "bench", "peer"))
sys.path.insert(0, HERE)
import torch_ssl as peer  # noqa: E402
from torch_load_check import read_safetensors  # noqa: E402

LR, MOMENTUM, WEIGHT_DECAY = 0.1, 0.9, 5e-4
LOSS_TOL, GRAD_TOL, PARAM_TOL = 1e-4, 2e-3, 1e-5
GRAD_FLOOR, FLIP_L2 = 1e-3, 5e-2


def peer_name(ours):
    """Our module names -> torch_ssl.py's."""
    n = ours
    for a, b in (("head.projector.", "projector."), ("head.predictor.", "predictor."),
                 ("target.backbone.", "target_backbone."), ("target.head.", "target_projector."),
                 ("target.queue", "queue"), ("head.row.", "row."), ("head.joint.", "joint.")):
        if n.startswith(a):
            n = b + n[len(a):]
    if n.startswith("joint.3."):  # our mlp keeps index 1 for its (here absent) batch norm
        n = "joint.2." + n[len("joint.3."):]
    parts = n.split(".")
    for i, p in enumerate(parts):
        if p.startswith("layer") and p[5:].isdigit():
            parts[i] = "layers." + str(int(p[5:]) - 1)
        if p == "downsample":
            parts[i] = "shortcut"
    return ".".join(parts)


class Replay:
    """Stands in for torch_ssl.Augment: hands out the views our step used."""

    def __init__(self, views, labels=None):
        self.views, self.labels, self.next = views, labels, 0

    def _take(self):
        v = self.views[self.next]
        self.next += 1
        return v

    def simclr_view(self, x):
        return self._take()

    def byol_view(self, x, blur_p, solarize_p):
        return self._take()

    def rotations(self, x):
        return self._take(), self.labels

    def jigsaw_tiles(self, x):
        return self._take(), self.labels


def relative_error(a, b):
    scale = max(b.abs().max().item(), 1e-6)
    return (a - b).abs().max().item() / scale


def relative_l2(a, b):
    return (a - b).double().norm().item() / max(b.double().norm().item(), 1e-12)


class Checker:
    def __init__(self, method):
        self.method, self.failures, self.worst = method, [], {}

    def compare(self, what, ours, theirs, tol):
        err = relative_error(theirs.detach().float(), ours.float())
        kind = what.split("/")[0].split(" ")[0]
        self.worst[kind] = max(self.worst.get(kind, 0.0), err)
        if not math.isfinite(err) or err > tol:
            self.failures.append(f"{what}: relative error {err:.3g} > {tol:g} "
                                 f"(ours max |x| {ours.abs().max().item():.4g})")


@torch.no_grad()
def load(model, f, prefix):
    """Our tensors under `prefix` into the peer's module (every one must map)."""
    state = model.state_dict()
    loaded = set()
    for key, value in f.items():
        if key.startswith(prefix):
            name = peer_name(key[len(prefix):])
            if name not in state:
                raise SystemExit(f"step_check: our tensor {key[len(prefix):]} has no peer ({name})")
            state[name].copy_(value.view_as(state[name]))
            loaded.add(name)
    missing = [k for k in state if k not in loaded and not k.endswith("num_batches_tracked")]
    if missing:
        raise SystemExit(f"step_check: peer tensors not in our dump: {missing[:5]}")


def build(method, width):
    backbone = peer.ResNet18Cifar(1, width)
    if method == "simclr":
        return peer.SimCLR(backbone, 28)
    if method == "byol":
        return peer.BYOL(backbone)
    if method == "rotnet":
        return peer.RotNet(backbone)
    if method == "moco":
        return peer.MoCo(backbone)
    if method == "jigsaw":
        model = peer.Jigsaw(backbone)
        model.tiles = lambda images, aug: aug.jigsaw_tiles(images)  # our tiles and permutation labels
        return model
    raise SystemExit(f"step_check: unknown method {method}")


def peer_step(model, method, f, s, images):
    """The peer's loss and gradients on our views of step prefix `s`."""
    views = [f[s + f"view{v}"] for v in range(8) if s + f"view{v}" in f]
    labels = f[s + "labels"].long() if s + "labels" in f else None
    model.train(True)
    model.zero_grad(set_to_none=True)
    if method == "moco":  # the shuffled batch-norm groups our key encoder used
        loss = model.loss_on(views, [f[s + f"shuffle{v}"].long() for v in range(2)])
    else:
        loss = model.loss(images, Replay(views, labels))
    loss.backward()
    return loss.detach(), {n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad}


@torch.no_grad()
def perturbed(model, ulps=1.0):
    """Multiplies every parameter by 1 + ulps * 2^-23 * N(0, 1); returns the
    originals for restore()."""
    saved = {n: p.detach().clone() for n, p in model.named_parameters()}
    g = torch.Generator().manual_seed(1)
    for p in model.parameters():
        p.mul_(1 + ulps * 2.0 ** -23 * torch.randn(p.shape, generator=g))
    return saved


@torch.no_grad()
def restore(model, saved):
    for n, p in model.named_parameters():
        p.copy_(saved[n])


def check(directory, method):
    """Per step, from our state before it: the loss (tight); every gradient:
    within GRAD_TOL of the peer's largest entry (the largest gradient of the
    step as the floor, for gradients that are zero in exact arithmetic), or,
    where a ReLU input lies within float rounding of zero and flips between
    the two implementations, within FLIP_L2 in relative L2 (one flipped
    ReLU moves a tensor's gradient by about 2 % in L2, measured; a wrong
    formula moves it by O(1)); then the update: our gradients through
    torch.optim.SGD and the method's after_step (tight)."""
    f, _ = read_safetensors(os.path.join(directory, method + ".safetensors"))
    model = build(method, f["init/backbone.conv1.weight"].shape[0])
    params = model.online_parameters() if method == "byol" else [p for p in model.parameters() if p.requires_grad]
    named = {n: p for n, p in model.named_parameters() if p.requires_grad}
    opt = torch.optim.SGD(params, lr=LR, momentum=MOMENTUM, weight_decay=WEIGHT_DECAY)
    images = f["images"]
    steps = sorted({int(k.split("/")[0][1:]) for k in f if k.startswith("s")})
    verbose = bool(os.environ.get("STEP_CHECK_VERBOSE"))
    ok = True
    for k in steps:
        s = f"s{k}/"
        load(model, f, "init/" if k == 0 else f"s{k - 1}/after/")
        c = Checker(method)
        if verbose:  # how far one float ulp of weight noise moves the peer's own gradients
            before = {n: t.clone() for n, t in model.state_dict().items()}
            saved = perturbed(model)
            _, noisy = peer_step(model, method, f, s, images)
            restore(model, saved)
            model.load_state_dict(before)  # the running statistics too
        loss, grads = peer_step(model, method, f, s, images)
        c.compare("loss", f[s + "loss"], loss.view(1), LOSS_TOL)
        ours = {peer_name(key[len(s) + 5:]): value.view_as(grads[peer_name(key[len(s) + 5:])])
                for key, value in f.items() if key.startswith(s + "grad/")}
        floor = GRAD_FLOOR * max(g.abs().max().item() for g in grads.values())
        flipped = []
        for name, value in ours.items():
            theirs = grads[name]
            err = (value - theirs).abs().max().item() / max(theirs.abs().max().item(), floor)
            l2 = relative_l2(value, theirs)
            if verbose:
                print(f"    {name}: max {err:.2g} l2 {l2:.2g} one-ulp noise {relative_error(noisy[name], theirs):.2g}")
            c.worst["grad"] = max(c.worst.get("grad", 0.0), err)
            if err > GRAD_TOL:
                if l2 <= FLIP_L2:
                    flipped.append(name)
                else:
                    c.failures.append(f"grad/{name} (step {k}): relative error {err:.3g} > {GRAD_TOL:g} and "
                                      f"relative L2 {l2:.3g} > {FLIP_L2:g} (ours max |x| {value.abs().max().item():.4g})")
        with torch.no_grad():  # the update from our gradients
            for name, value in ours.items():
                named[name].grad = value.clone()
        opt.step()
        model.after_step(k, len(steps))
        now = model.state_dict()
        for key, value in f.items():
            if key.startswith(s + "after/"):
                name = peer_name(key[len(s) + 6:])
                if method == "moco" and name.startswith("target_") and ("running_" in name or "num_batches" in name):
                    # MoCo's key encoder runs in train mode only, so its batch-norm buffers are never
                    # used; ssl keeps them at their initial values (target_update/queue.hpp), the
                    # reference code updates them to no effect. Its parameters are compared.
                    continue
                c.compare(f"after/{name} (step {k})", value.view_as(now[name]), now[name], PARAM_TOL)
        print(f"{method} step {k}: loss ours {f[s + 'loss'].item():.6f} peer {loss.item():.6f}; worst relative "
              + ", ".join(f"{kind} {err:.2g}" for kind, err in sorted(c.worst.items()))
              + (f"; {len(flipped)} gradients within {FLIP_L2:g} in L2 only (ReLU flips)" if flipped else ""))
        for line in c.failures[:12]:
            print(f"  MISMATCH {method} {line}")
        if len(c.failures) > 12:
            print(f"  ... and {len(c.failures) - 12} more")
        ok = ok and not c.failures
    return ok


def main():
    if len(sys.argv) < 2:
        raise SystemExit(__doc__)
    directory = sys.argv[1]
    methods = sys.argv[2:] or ["simclr", "byol", "rotnet", "moco"]
    torch.set_num_threads(1)
    torch.manual_seed(0)
    ok = all([check(directory, m) for m in methods])
    print("OK" if ok else "FAILED")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
