#!/usr/bin/env python3
"""Peer check: ssl's VGG-BN, ResNet v2 and RevNet against PyTorch.

    torch_backbone_check.py DIR

For every case tests/peer/backbone_dump.cpp wrote in DIR: the checkpoint loads
with load_state_dict(strict=True) into the PyTorch network — for VGG,
torchvision's own vgg*_bn `features` (torchvision.models.vgg.make_layers, the
widths scaled as ssl scales them), for ResNet v2 and RevNet a module written
here from He et al. 2016 (eq. 2) and Gomez et al. 2017 (eq. 1) with ssl's
names — and reproduces ssl's features in eval mode and in train mode (batch
statistics) within 1e-4 of their largest magnitude. Exits 77 without torch.
"""
import json
import struct
import sys

try:
    import torch
    from torch import nn
except ImportError:
    print("SKIP: no torch")
    sys.exit(77)

TOL = 1e-4


def read_safetensors(path):
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + n].decode("utf-8"))
    meta = header.pop("__metadata__", {})
    data = raw[8 + n :]
    out = {}
    for name, e in header.items():
        dt = {"F32": torch.float32, "I64": torch.int64}[e["dtype"]]
        b, end = e["data_offsets"]
        t = torch.frombuffer(bytearray(data[b:end]), dtype=dt) if end > b else torch.zeros(0, dtype=dt)
        out[name] = t.reshape(e["shape"]).clone()
    return out, meta


class Branch(nn.Module):
    """F of a pre-activation unit: [bn - relu - conv] x 2 (basic) or x 3 (bottleneck)."""

    def __init__(self, cin, mid, cout, stride, bottleneck):
        super().__init__()
        if bottleneck:
            shapes = [(cin, mid, 1, 1), (mid, mid, 3, stride), (mid, cout, 1, 1)]
        else:
            shapes = [(cin, mid, 3, stride), (mid, cout, 3, 1)]
        self.depth = len(shapes)
        for i, (a, b, k, s) in enumerate(shapes, 1):
            setattr(self, f"bn{i}", nn.BatchNorm2d(a))
            setattr(self, f"conv{i}", nn.Conv2d(a, b, k, s, k // 2, bias=False))

    def forward(self, x, return_pre=False):
        pre = None
        for i in range(1, self.depth + 1):
            x = torch.relu(getattr(self, f"bn{i}")(x))
            if i == 1:
                pre = x
            x = getattr(self, f"conv{i}")(x)
        return (x, pre) if return_pre else x


class PreActUnit(Branch):
    def __init__(self, cin, planes, stride, bottleneck):
        exp = 4 if bottleneck else 1
        super().__init__(cin, planes, planes * exp, stride, bottleneck)
        self.downsample = None
        if stride != 1 or cin != planes * exp:
            self.downsample = nn.Sequential(nn.Conv2d(cin, planes * exp, 1, stride, bias=False))

    def forward(self, x):
        y, pre = super().forward(x, return_pre=True)
        return y + (self.downsample(pre) if self.downsample is not None else x)


class RevUnit(nn.Module):
    def __init__(self, c, bottleneck):
        super().__init__()
        h = c // 2
        mid = max(1, h // 4) if bottleneck else h
        self.f = Branch(h, mid, h, 1, bottleneck)
        self.g = Branch(h, mid, h, 1, bottleneck)

    def forward(self, x):
        x1, x2 = torch.chunk(x, 2, dim=1)
        y1 = x1 + self.f(x2)
        y2 = x2 + self.g(y1)
        return torch.cat([y1, y2], dim=1)


class PreActNet(nn.Module):
    def __init__(self, blocks, bottleneck, reversible, cin, width, stem):
        super().__init__()
        imagenet = stem == "imagenet"
        self.conv1 = nn.Conv2d(cin, width, 7 if imagenet else 3, 2 if imagenet else 1, 3 if imagenet else 1, bias=False)
        self.maxpool = nn.MaxPool2d(3, 2, 1) if imagenet else nn.Identity()
        exp = 4 if bottleneck else 1
        c = width
        for s, n in enumerate(blocks):
            planes = width << s
            units = []
            for b in range(n):
                if b == 0 or not reversible:
                    units.append(PreActUnit(c, planes, 2 if (s > 0 and b == 0) else 1, bottleneck))
                else:
                    units.append(RevUnit(planes * exp, bottleneck))
                c = planes * exp
            setattr(self, f"layer{s + 1}", nn.Sequential(*units))
        self.norm = nn.BatchNorm2d(c)
        self.nstages = len(blocks)

    def forward(self, x):
        x = self.maxpool(self.conv1(x))
        for s in range(self.nstages):
            x = getattr(self, f"layer{s + 1}")(x)
        return torch.relu(self.norm(x)).mean(dim=(2, 3))


class VGG(nn.Module):
    def __init__(self, arch, cin, width, stem):
        super().__init__()
        from torchvision.models import vgg as tv

        cfg = {"vgg11": "A", "vgg13": "B", "vgg16": "D", "vgg19": "E"}[arch]
        layers = [v if v == "M" else v * width // 64 for v in tv.cfgs[cfg]]
        features = tv.make_layers(layers, batch_norm=True)
        # torchvision's make_layers starts from 3 channels
        features[0] = nn.Conv2d(cin, layers[0], 3, padding=1)
        if stem == "cifar":  # ssl's cifar stem drops the last max pool (same indices otherwise)
            features = features[:-1]
        self.features = features

    def forward(self, x):
        return self.features(x).mean(dim=(2, 3))


def build(meta):
    arch, cin, width, stem = meta["arch"], int(meta["in_channels"]), int(meta["width"]), meta["stem"]
    if arch.startswith("vgg"):
        return VGG(arch, cin, width, stem)
    table = {
        "resnet18v2": ([2, 2, 2, 2], False, False),
        "resnet34v2": ([3, 4, 6, 3], False, False),
        "resnet50v2": ([3, 4, 6, 3], True, False),
        "revnet18": ([2, 2, 2, 2], False, True),
        "revnet50": ([3, 4, 6, 3], True, True),
    }
    blocks, bottleneck, reversible = table[arch]
    return PreActNet(blocks, bottleneck, reversible, cin, width, stem)


def compare(case, mode, got, want):
    diff = (got.double() - want.double()).abs().max().item()
    scale = max(want.abs().max().item(), 1e-12)
    ok = diff / scale <= TOL
    print(f"{case:22s} {mode:5s} features {tuple(want.shape)} max|ssl|={scale:.4g} max abs diff={diff:.3g} "
          f"rel={diff / scale:.3g} {'ok' if ok else 'FAIL'}")
    return ok


def main():
    d = sys.argv[1]
    torch.manual_seed(0)
    ok = True
    with open(f"{d}/cases.txt") as f:
        cases = [c.strip() for c in f if c.strip()]
    for case in cases:
        state, meta = read_safetensors(f"{d}/{case}.safetensors")
        io, _ = read_safetensors(f"{d}/{case}_io.safetensors")
        net = build(meta)
        net.load_state_dict(state, strict=True)  # every name and shape, both ways
        net.eval()
        with torch.no_grad():
            ok &= compare(case, "eval", net(io["input"]), io["eval"])
            net.train()
            ok &= compare(case, "train", net(io["input"]), io["train"])
    print("OK" if ok else "FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
