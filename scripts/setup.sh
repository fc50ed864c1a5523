#!/usr/bin/env bash
# Installs the Debian packages ssl needs to build and test (only the missing
# ones; apt-get runs only when something is missing). Run as root or with sudo.
#   SSL_WITH_PEERS=1 also installs python3-torch, python3-torchvision and python3-faiss, the peers for benchmarks and
#   the optional PyTorch checks (never a dependency of the library).
#   SSL_WITH_SANITIZERS=1 also installs what scripts/sanitize.sh and scripts/fuzz.sh need: Ninja,
#   clang-14 and its sanitizer and libFuzzer runtimes.
set -euo pipefail
pkgs=(build-essential cmake libeigen3-dev libxtensor-dev xtl-dev doctest-dev libbenchmark-dev
      libstb-dev nlohmann-json3-dev libcli11-dev zlib1g-dev dataset-fashion-mnist)
if [ "${SSL_WITH_PEERS:-0}" = 1 ]; then pkgs+=(python3-torch python3-torchvision python3-faiss); fi
if [ "${SSL_WITH_SANITIZERS:-0}" = 1 ]; then pkgs+=(ninja-build clang-14 libclang-rt-14-dev); fi
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
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
