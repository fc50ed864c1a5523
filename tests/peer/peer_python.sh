# Sourced by the peer runners (run_*.sh): `peer_python IMPORTS HINT [PYTHON...]`
# sets $py to the first of PYTHON..., /usr/bin/python3 and python3 that can
# run `import IMPORTS`, or exits 77 (ctest's skip) saying HINT; then makes
# $dir, a temporary folder removed at exit. The peers (torch, torchvision,
# lightly) are for checks, never dependencies.
peer_python() {
  local imports=$1 hint=$2
  shift 2
  py=""
  for cand in "$@" /usr/bin/python3 python3; do
    [ -n "$cand" ] || continue
    if command -v "$cand" >/dev/null && "$cand" -c "import $imports" 2>/dev/null; then py=$cand; break; fi
  done
  if [ -z "$py" ]; then
    echo "SKIP: no python3 with $imports ($hint)"
    exit 77
  fi
  dir=$(mktemp -d)
  trap 'rm -rf "$dir"' EXIT
}
