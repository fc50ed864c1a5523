#!/usr/bin/env python3
"""Peer check: ssl's NT-Xent, BYOL and MoCo losses against lightly's.

    lightly_loss_check.py FILE

FILE is losses.safetensors from tests/peer/loss_values.cpp (see its header).
lightly, a maintained SSL library nobody here wrote, is a peer for checks,
never a dependency. Install it beside the system torch without replacing it:

    /usr/bin/python3 -m venv --system-site-packages VENV
    VENV/bin/pip install --no-deps lightly

(lightly's loss modules import with only torch and numpy; a plain
`pip install lightly` pulls in a new torch and pytorch_lightning as well.)
tests/peer/run_lightly_peer.sh looks for it in $SSL_LIGHTLY_PYTHON,
.peer-venv/bin/python (made by SSL_WITH_PEERS=1 scripts/setup.sh), /usr/bin/python3 and python3.

The losses as lightly composes them for its SimCLR, BYOL and MoCo models:
  nt_xent  lightly.loss.NTXentLoss(temperature)(z1, z2): must equal ssl's
           nt_xent, value and gradients.
  byol     0.5 * (NegativeCosineSimilarity()(p1, z2) + NegativeCosineSimilarity()(p2, z1))
           with z detached (lightly's BYOL example). ssl's loss is the
           paper's eq. 2 per direction, summed over both directions:
           (2 - 2 cos(p1, z2)) + (2 - 2 cos(p2, z1)) = 4 + 4 * lightly's, so
           ssl's gradient is exactly 4 times lightly's (checked as such).
  moco     lightly.loss.NTXentLoss(temperature, memory_bank_size=(K, d))(q, k)
           with the memory bank set to ssl's queue (lightly's MoCo example):
           must equal ssl's info_nce, value and gradient w.r.t. q.
Tolerances (TOL): the loss to 1e-6 (float32) / 1e-13 (float64) of
max(1, |loss|), gradients to 1e-4 / 1e-10 of their largest entry.

Prints one line per case; exits 0 when all agree, 1 otherwise.
"""
import json
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_load_check import read_safetensors  # noqa: E402

import lightly  # noqa: E402
from lightly.loss import NegativeCosineSimilarity, NTXentLoss  # noqa: E402

# (value, gradient) tolerances: value relative to max(1, |value|), gradient
# relative to the largest |entry| of ssl's gradient.
TOL = {torch.float32: (1e-6, 1e-4), torch.float64: (1e-13, 1e-10)}
BYOL_SCALE = 4.0  # ssl's symmetrized BYOL loss = 4 + 4 * lightly's (see above)


def leaf(t):
    return t.clone().requires_grad_(True)


def lightly_nt_xent(x, tau):
    z1, z2 = leaf(x["z1"]), leaf(x["z2"])
    loss = NTXentLoss(temperature=tau)(z1, z2)
    loss.backward()
    return loss, {"grad_z1": z1.grad, "grad_z2": z2.grad}


def lightly_byol(x, _tau):
    p1, p2 = leaf(x["p1"]), leaf(x["p2"])
    crit = NegativeCosineSimilarity()
    loss = 0.5 * (crit(p1, x["z2"].detach()) + crit(p2, x["z1"].detach()))
    loss.backward()
    # The documented relation to ssl's loss, applied to lightly's side.
    return BYOL_SCALE + BYOL_SCALE * loss, {"grad_p1": BYOL_SCALE * p1.grad, "grad_p2": BYOL_SCALE * p2.grad}


def lightly_moco(x, tau):
    q = leaf(x["q"])
    queue = x["queue"]
    crit = NTXentLoss(temperature=tau, memory_bank_size=tuple(queue.shape)).to(queue.dtype)
    bank = crit.memory_bank
    bank.bank = queue.clone()  # (K, d); handed to the loss as (d, K)
    bank.bank_ptr.zero_()
    loss = crit(q, x["k"])
    loss.backward()
    return loss, {"grad_q": q.grad}


LIGHTLY = {"nt_xent": lightly_nt_xent, "byol": lightly_byol, "moco": lightly_moco}


def main(argv):
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    tensors, meta = read_safetensors(argv[1])
    failures = 0
    keys = sorted(k for k in meta if k.startswith("case/"))
    for key in keys:
        name = key[len("case/"):]
        case = json.loads(meta[key])
        x = {k[len(name) + 1:]: v for k, v in tensors.items() if k.startswith(name + "/")}
        loss, grads = LIGHTLY[case["loss"]](x, case["temperature"])
        value_tol, grad_tol = TOL[next(iter(grads.values())).dtype]
        errs = []
        ok = True
        value = x["value"].item()
        e = abs(loss.item() - value)
        errs.append(f"value {value:.6f} |d| {e:.2g}")
        ok &= e <= value_tol * max(1.0, abs(value))
        for g, theirs in grads.items():
            ours = x[g]
            scale = ours.abs().max().item()
            e = (ours.double() - theirs.double()).abs().max().item()
            errs.append(f"{g} |d| {e:.2g} (max {scale:.2g})")
            ok &= ours.shape == theirs.shape and e <= grad_tol * scale
        print(f"{'ok  ' if ok else 'FAIL'} {name}: " + ", ".join(errs))
        failures += not ok
    print(f"{'FAIL' if failures else 'OK'}: {len(keys)} cases against lightly "
          f"{lightly.__version__} (torch {torch.__version__}); {failures} disagreements")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
