"""Peer check of ssl's linear SVM (include/ssl/eval/linear_svm.hpp) against
scikit-learn's LinearSVC (liblinear's L2-loss SVM dual solver) on the features
tests/peer/svm_dump.cpp wrote:

  - the cross-validated accuracy at every cost, on ssl's own folds
    (PredefinedSplit), the chosen cost and the test accuracy at it;
  - one fit at a fixed cost: test accuracy and decision values.

Both L2-normalize the rows and append the intercept as a constant feature of
1 that the penalty includes (LinearSVC's intercept_scaling = 1). The problem
is strictly convex, so both solvers, run to a tight tolerance, reach the same
optimum: decision values agree to ~1e-4 of their scale and accuracies are
equal (a sample at a score tie of the two could flip; none does here).
"""
import sys

import numpy as np
from sklearn.svm import LinearSVC


def main(d):
    xtr = np.loadtxt(f"{d}/train_x.txt")
    xte = np.loadtxt(f"{d}/test_x.txt")
    ytr = np.loadtxt(f"{d}/train_y.txt").astype(int)
    yte = np.loadtxt(f"{d}/test_y.txt").astype(int)
    folds = np.loadtxt(f"{d}/folds.txt").astype(int)
    dec_ours = np.loadtxt(f"{d}/decision.txt")
    ours = {}
    for line in open(f"{d}/ours.txt"):
        k, *v = line.split()
        ours[k] = [float(x) for x in v]
    assert ours["converged"][0] == 1, "ssl's solver did not converge"
    tol = ours["tolerance"][0]
    xtr = xtr / np.linalg.norm(xtr, axis=1, keepdims=True)
    xte = xte / np.linalg.norm(xte, axis=1, keepdims=True)

    def svc(c):
        return LinearSVC(C=c, loss="squared_hinge", penalty="l2", dual=True, tol=tol, max_iter=100000,
                         intercept_scaling=1.0, random_state=0)

    failures = []
    costs = ours["costs"]
    cv = []
    for c in costs:
        accs = []
        for f in range(folds.max() + 1):
            tr, he = folds != f, folds == f
            m = svc(c).fit(xtr[tr], ytr[tr])
            accs.append(np.mean(m.predict(xtr[he]) == ytr[he]))
        cv.append(np.mean(accs))
    min_fold = np.bincount(folds).min()
    for c, a, b in zip(costs, cv, ours["cv_top1"]):
        print(f"C {c:g}: CV top-1 sklearn {a:.4f}, ssl {b:.4f}")
        if abs(a - b) > 0.5 / min_fold:
            failures.append(f"CV top-1 at C {c:g}: sklearn {a:.4f}, ssl {b:.4f}")
    best = costs[int(np.argmax(cv))]  # the first (smallest) cost of the highest accuracy, as ssl
    if best != ours["best_cost"][0]:
        failures.append(f"chosen cost: sklearn {best:g}, ssl {ours['best_cost'][0]:g}")
    test = np.mean(svc(best).fit(xtr, ytr).predict(xte) == yte)
    print(f"chosen C {best:g}: test top-1 sklearn {test:.4f}, ssl {ours['test_top1'][0]:.4f}")
    if abs(test - ours["test_top1"][0]) > 0.5 / len(yte):
        failures.append(f"test top-1 at the chosen cost: sklearn {test:.4f}, ssl {ours['test_top1'][0]:.4f}")

    m = svc(ours["fixed_cost"][0]).fit(xtr, ytr)
    dec = m.decision_function(xte)
    err = np.abs(dec - dec_ours).max() / np.abs(dec).max()
    test = np.mean(m.predict(xte) == yte)
    print(f"C {ours['fixed_cost'][0]:g}: test top-1 sklearn {test:.4f}, ssl {ours['fixed_test_top1'][0]:.4f}; "
          f"decision values: max |diff| / max |value| = {err:.2e}")
    if err > 1e-3:
        failures.append(f"decision values differ by {err:.2e} of their scale")
    if abs(test - ours["fixed_test_top1"][0]) > 0.5 / len(yte):
        failures.append(f"test top-1 at C {ours['fixed_cost'][0]:g}: sklearn {test:.4f}, ssl {ours['fixed_test_top1'][0]:.4f}")
    if failures:
        print("FAILED:\n  " + "\n  ".join(failures))
        sys.exit(1)
    print("ssl's linear SVM matches scikit-learn's LinearSVC")


if __name__ == "__main__":
    main(sys.argv[1])
