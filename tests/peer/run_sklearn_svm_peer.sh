#!/usr/bin/env bash
# Peer check: ssl's linear SVM (include/ssl/eval/linear_svm.hpp) against
# scikit-learn's LinearSVC on the same features: cross-validated accuracy per
# cost, the chosen cost, test accuracy, decision values
# (tests/peer/sklearn_svm_check.py). Skips (exit 77) without scikit-learn.
set -euo pipefail
writer=$1
here=$(cd "$(dirname "$0")" && pwd)
source "$here/peer_python.sh"
peer_python "numpy, sklearn" "apt-get install python3-sklearn to run this peer check"
"$writer" "$dir"
"$py" -W ignore "$here/sklearn_svm_check.py" "$dir"
