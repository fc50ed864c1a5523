#!/usr/bin/env bash
# Installs the Debian packages ssl needs to build and test (only the missing
# ones; apt-get runs only when something is missing). Run as root or with sudo.
#   SSL_WITH_PEERS=1 also installs python3-torch, python3-torchvision and python3-faiss, the peers for benchmarks and
#   the optional PyTorch checks, and .peer-venv with lightly, onnx and onnxruntime (never a dependency of the library),
#   and chromium, which the test cli/report_chromium opens `ssl report`'s page in (it skips without it).
#   SSL_WITH_SANITIZERS=1 also installs what scripts/sanitize.sh and scripts/fuzz.sh need: Ninja,
#   clang-14 and its sanitizer and libFuzzer runtimes.
set -euo pipefail
pkgs=(build-essential cmake libeigen3-dev libxtensor-dev xtl-dev doctest-dev libbenchmark-dev
      libstb-dev nlohmann-json3-dev libcli11-dev zlib1g-dev dataset-fashion-mnist)
if [ "${SSL_WITH_PEERS:-0}" = 1 ]; then pkgs+=(python3-torch python3-torchvision python3-faiss python3-venv python3-pip chromium); fi
if [ "${SSL_WITH_SANITIZERS:-0}" = 1 ]; then pkgs+=(ninja-build clang-14 libclang-rt-14-dev); fi
# SSL_WITH_QEMU=1 (scripts/build_dispatch.sh): qemu-user, whose qemu-x86_64 emulates older x86-64 CPUs for the
# tests of label cpu_levels (they skip without it).
if [ "${SSL_WITH_QEMU:-0}" = 1 ]; then pkgs+=(qemu-user); fi
root=$(cd "$(dirname "$0")/.." && pwd)
# Python peers beside Debian's torch, in .peer-venv; a failed download only
# makes their check skip: lightly (a maintained SSL library,
# tests/peer/lightly_loss_check.py), onnx and onnxruntime (the ONNX export's
# checker and runtime, tests/peer/onnx_runtime_check.py).
peer_venv() {
  [ "${SSL_WITH_PEERS:-0}" = 1 ] || return 0
  local py="$root/.peer-venv/bin/python"
  [ -x "$py" ] || /usr/bin/python3 -m venv --system-site-packages "$root/.peer-venv" || return 0
  if ! "$py" -c "import lightly.loss" 2>/dev/null; then
    echo "ssl setup: installing lightly 1.6.0 (peer checks only) into .peer-venv"
    "$root/.peer-venv/bin/pip" install -q --no-deps lightly==1.6.0 ||
      echo "ssl setup: could not install lightly; its peer check will skip" >&2
  fi
  if ! "$py" -c "import onnx, onnxruntime" 2>/dev/null; then
    echo "ssl setup: installing onnx 1.17.0 and onnxruntime 1.20.1 (peer checks only) into .peer-venv"
    "$root/.peer-venv/bin/pip" install -q onnx==1.17.0 onnxruntime==1.20.1 ||
      echo "ssl setup: could not install onnx / onnxruntime; the ONNX peer check will skip" >&2
  fi
  return 0
}
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  peer_venv
  exit 0
fi
echo "ssl setup: installing ${missing[*]}"
sudo=""
if [ "$(id -u)" != 0 ]; then
  command -v sudo >/dev/null || { echo "ssl setup: need root (or sudo) to apt-get install ${missing[*]}" >&2; exit 1; }
  sudo=sudo
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
peer_venv
