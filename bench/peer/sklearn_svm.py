"""scikit-learn's LinearSVC on the features bench_svm wrote (bench/run_svm_bench.sh):
the same problem as ssl::eval's linear SVM (rows L2-normalized, squared hinge,
L2 penalty including the intercept feature of 1, liblinear's dual coordinate
descent, tol 1e-4, max_iter 1000, one-vs-rest), timed as one LinearSVC.fit at
one cost and as the 3-fold CV over the same cost grid on the same folds.
Prints SVM_FIT / SVM_CV lines in bench_svm's format (seconds: wall time of
the fit calls only, not of reading or normalizing the data).

  sklearn_svm.py DATA_DIR N D [COST] [fit|cv|all]
"""
import sys
import time

import numpy as np
from sklearn.svm import LinearSVC

COSTS = [1e-3, 1e-2, 1e-1, 1.0, 10.0, 100.0]  # ssl::eval::svm_cv_config's default grid


def main():
    d, n, dim = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    cost = float(sys.argv[4]) if len(sys.argv) > 4 else 0.1
    what = sys.argv[5] if len(sys.argv) > 5 else "all"
    x = np.fromfile(f"{d}/svm_train.f32", dtype=np.float32).reshape(n, dim).astype(np.float64)
    y = np.fromfile(f"{d}/svm_train_y.i64", dtype=np.int64)
    folds = np.fromfile(f"{d}/svm_folds.i64", dtype=np.int64)
    x /= np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-300)
    k = len(np.unique(y))

    def svc(c):
        return LinearSVC(C=c, loss="squared_hinge", penalty="l2", dual=True, tol=1e-4, max_iter=1000,
                         intercept_scaling=1.0, random_state=0)

    if what in ("all", "fit"):
        c0, t0 = time.process_time(), time.perf_counter()
        m = svc(cost).fit(x, y)
        s, cs = time.perf_counter() - t0, time.process_time() - c0
        print(f"SVM_FIT n={n} d={dim} classes={k} cost={cost:g} threads=1 seconds={s:.3f} cpu_seconds={cs:.3f} "
              f"train_top1={np.mean(m.predict(x) == y):.4f} converged=1 passes={int(m.n_iter_)}")
    if what in ("all", "cv"):
        tops = []
        c0, t0 = time.process_time(), time.perf_counter()
        for c in COSTS:
            accs = []
            for f in range(int(folds.max()) + 1):
                tr, he = folds != f, folds == f
                accs.append(np.mean(svc(c).fit(x[tr], y[tr]).predict(x[he]) == y[he]))
            tops.append(float(np.mean(accs)))
        s, cs = time.perf_counter() - t0, time.process_time() - c0
        best = COSTS[int(np.argmax(tops))]
        print(f"SVM_CV n={n} d={dim} classes={k} costs={len(COSTS)} threads=1 seconds={s:.3f} cpu_seconds={cs:.3f} "
              f"best_cost={best:g} cv_top1={','.join(f'{t:.6f}' for t in tops)}")


if __name__ == "__main__":
    main()
