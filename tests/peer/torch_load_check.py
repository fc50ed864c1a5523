#!/usr/bin/env python3
"""Peer check: a ResNet-18 checkpoint written by ssl loads into PyTorch.

    torch_load_check.py CHECKPOINT [IO_FILE]

CHECKPOINT is a safetensors file from ssl::save_checkpoint of an
ssl::resnet18<float>. It is parsed here with json + struct only (not the
`safetensors` package), loaded with load_state_dict(strict=True) into a
hand-written torch module that uses torchvision's module names (torchvision
itself is not needed), and every value is compared with the file.

IO_FILE, if given, is a safetensors file with tensors "input" (N, C, H, W) and
"output": the ssl model's eval-mode output for that input. The torch model
must reproduce it.

Prints OK and exits 0 on success; exits 1 with a message otherwise.
"""
import json
import struct
import sys

import torch
from torch import nn

DTYPES = {
    "F64": torch.float64,
    "F32": torch.float32,
    "F16": torch.float16,
    "BF16": torch.bfloat16,
    "I64": torch.int64,
    "I32": torch.int32,
    "I16": torch.int16,
    "I8": torch.int8,
    "U8": torch.uint8,
    "BOOL": torch.bool,
}
ITEMSIZE = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U8": 1, "BOOL": 1}


def read_safetensors(path):
    """(tensors by name, metadata) of a safetensors file, checked on the way."""
    with open(path, "rb") as f:
        raw = f.read()
    if len(raw) < 8:
        raise ValueError(f"{path}: shorter than 8 bytes")
    (n,) = struct.unpack("<Q", raw[:8])
    if 8 + n > len(raw):
        raise ValueError(f"{path}: header length {n} exceeds the file")
    if (8 + n) % 8:
        raise ValueError(f"{path}: data section not 8-byte aligned (header length {n})")
    header = json.loads(raw[8 : 8 + n].decode("utf-8"))
    data = raw[8 + n :]
    metadata = header.pop("__metadata__", {})
    tensors, spans = {}, []
    for name, e in header.items():
        dt, shape, (begin, end) = e["dtype"], e["shape"], e["data_offsets"]
        numel = 1
        for d in shape:
            numel *= d
        if end - begin != numel * ITEMSIZE[dt] or end > len(data):
            raise ValueError(f"{path}: tensor {name}: bad offsets {begin, end} for {dt} {shape}")
        spans.append((begin, end))
        if numel == 0:
            t = torch.empty(shape, dtype=DTYPES[dt])
        else:
            t = torch.frombuffer(bytearray(data[begin:end]), dtype=DTYPES[dt]).reshape(shape)
        tensors[name] = t
    pos = 0
    for begin, end in sorted(spans):
        if begin != pos:
            raise ValueError(f"{path}: data section not covered exactly at byte {pos}")
        pos = end
    if pos != len(data):
        raise ValueError(f"{path}: {len(data) - pos} trailing bytes")
    return tensors, metadata


class BasicBlock(nn.Module):
    """torchvision.models.resnet.BasicBlock, same attribute names."""

    def __init__(self, inplanes, planes, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = None
        if stride != 1 or inplanes != planes:
            self.downsample = nn.Sequential(nn.Conv2d(inplanes, planes, 1, stride, bias=False), nn.BatchNorm2d(planes))

    def forward(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        identity = x if self.downsample is None else self.downsample(x)
        return self.relu(out + identity)


class ResNet18(nn.Module):
    """torchvision.models.resnet18's layout; stem 'imagenet' (7x7/2 + max pool)
    or 'cifar' (3x3/1, no max pool); fc only when num_classes > 0."""

    def __init__(self, in_channels, width, stem, num_classes):
        super().__init__()
        if stem == "imagenet":
            self.conv1 = nn.Conv2d(in_channels, width, 7, 2, 3, bias=False)
            self.maxpool = nn.MaxPool2d(3, 2, 1)
        else:
            self.conv1 = nn.Conv2d(in_channels, width, 3, 1, 1, bias=False)
            self.maxpool = nn.Identity()
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        inplanes = width
        for i in range(4):
            planes = width << i
            blocks = [BasicBlock(inplanes, planes, 2 if i > 0 else 1), BasicBlock(planes, planes, 1)]
            setattr(self, f"layer{i + 1}", nn.Sequential(*blocks))
            inplanes = planes
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(inplanes, num_classes) if num_classes else None

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        x = torch.flatten(self.avgpool(x), 1)
        return self.fc(x) if self.fc is not None else x


def main(argv):
    if len(argv) not in (2, 3):
        print(__doc__, file=sys.stderr)
        return 2
    sd, meta = read_safetensors(argv[1])
    if meta.get("format") != "ssl":
        print(f"FAIL: metadata format is {meta.get('format')!r}, expected 'ssl'", file=sys.stderr)
        return 1
    w = sd["conv1.weight"]
    width, in_channels, k = w.shape[0], w.shape[1], w.shape[2]
    stem = "imagenet" if k == 7 else "cifar"
    num_classes = sd["fc.weight"].shape[0] if "fc.weight" in sd else 0
    model = ResNet18(in_channels, width, stem, num_classes)
    model.load_state_dict(sd, strict=True)  # raises on any missing/unexpected name or shape mismatch
    for name, t in model.state_dict().items():
        if t.dtype != sd[name].dtype or not torch.equal(t, sd[name]):
            print(f"FAIL: {name} differs after loading", file=sys.stderr)
            return 1
    msg = f"{len(sd)} tensors, resnet18 in_channels={in_channels} width={width} stem={stem} classes={num_classes}"
    if len(argv) == 3:
        io, _ = read_safetensors(argv[2])
        model.eval()
        with torch.no_grad():
            y = model(io["input"].float())
        ref = io["output"].float()
        err = (y - ref).abs().max().item()
        scale = ref.abs().max().item()
        msg += f"; forward max |torch - ssl| = {err:.3g} (max |y| = {scale:.3g})"
        if y.shape != ref.shape or err > 1e-4 * max(1.0, scale):
            print(f"FAIL: {msg}", file=sys.stderr)
            return 1
    print(f"OK: {msg}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
