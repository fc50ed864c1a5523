#!/usr/bin/env python3
"""faiss peer of bench_cluster: k-means and kNN on the data bench_cluster wrote.

Reads from --data DIR (written by `bench_cluster --data DIR`):
  kmeans_x.f32 (n, d)  ->  faiss.Kmeans(d, k, niter=iters, seed=1234).train(x)
  knn_train.f32, knn_train_y.i64, knn_query.f32, knn_query_y.i64
                       ->  faiss.IndexFlatIP on L2-normalized features, search(k=200),
                           then InstDisc's weighted vote exp(s / 0.1) in numpy
and prints
  FAISS_KMEANS n=.. d=.. k=.. iters=.. threads=.. seconds=.. cpu_seconds=.. objective=.. faiss_obj_last=..
  FAISS_KNN nt=.. nq=.. dim=.. k=.. threads=.. seconds=.. search_seconds=.. cpu_seconds=.. top1=.. agree=..
seconds: wall time of Kmeans.train / of normalize + add + search + vote; search_seconds: search
only. objective: sum_i |x_i - c_{a_i}|^2 (float64) of faiss's FINAL centroids with the nearest
assignment, i.e. the same quantity bench_cluster reports (faiss's own obj[-1] is the objective of
the last assignment pass, against the centroids before the last update; printed as faiss_obj_last).
agree: fraction of queries where faiss's prediction equals ours (knn_pred_ours.i64, when present).
faiss uses max_points_per_centroid = 256 by default: n <= 256 k here, so it trains on all points.
Exits 77 when faiss is not installed.
"""
import argparse
import os
import sys
import time

try:
    import faiss
    import numpy as np
except ImportError as e:  # python3-faiss missing
    print(f"# faiss peer skipped: {e}")
    sys.exit(77)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default="cluster_bench_data")
    ap.add_argument("--what", default="all", choices=["all", "kmeans", "knn"])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--n", type=int, default=100000)
    ap.add_argument("--d", type=int, default=128)
    ap.add_argument("--k", type=int, default=1000)
    ap.add_argument("--iters", type=int, default=20)
    ap.add_argument("--nt", type=int, default=60000)
    ap.add_argument("--nq", type=int, default=10000)
    ap.add_argument("--dim", type=int, default=512)
    ap.add_argument("--knn-k", type=int, default=200)
    a = ap.parse_args()
    faiss.omp_set_num_threads(a.threads)

    if a.what in ("all", "kmeans"):
        x = np.fromfile(os.path.join(a.data, "kmeans_x.f32"), dtype=np.float32).reshape(a.n, a.d)
        km = faiss.Kmeans(a.d, a.k, niter=a.iters, seed=1234, verbose=False)
        c0, t0 = time.process_time(), time.perf_counter()
        km.train(x)
        t, c = time.perf_counter() - t0, time.process_time() - c0
        idx = faiss.IndexFlatL2(a.d)
        idx.add(km.centroids)
        _, assign = idx.search(x, 1)
        cent = km.centroids.astype(np.float64)
        obj = 0.0
        for s in range(0, a.n, 8192):  # exact objective in float64, in chunks
            diff = x[s:s + 8192].astype(np.float64) - cent[assign[s:s + 8192, 0]]
            obj += float(np.einsum("ij,ij->", diff, diff))
        print(f"FAISS_KMEANS n={a.n} d={a.d} k={a.k} iters={a.iters} threads={a.threads} seconds={t:.3f} "
              f"cpu_seconds={c:.3f} objective={obj:.9g} faiss_obj_last={km.obj[-1]:.9g}", flush=True)

    if a.what in ("all", "knn"):
        train = np.fromfile(os.path.join(a.data, "knn_train.f32"), dtype=np.float32).reshape(a.nt, a.dim)
        ty = np.fromfile(os.path.join(a.data, "knn_train_y.i64"), dtype=np.int64)
        query = np.fromfile(os.path.join(a.data, "knn_query.f32"), dtype=np.float32).reshape(a.nq, a.dim)
        qy = np.fromfile(os.path.join(a.data, "knn_query_y.i64"), dtype=np.int64)
        classes = int(max(ty.max(), qy.max())) + 1
        c0, t0 = time.process_time(), time.perf_counter()
        tn = train / np.maximum(np.linalg.norm(train, axis=1, keepdims=True), 1e-12)
        qn = query / np.maximum(np.linalg.norm(query, axis=1, keepdims=True), 1e-12)
        index = faiss.IndexFlatIP(a.dim)
        index.add(np.ascontiguousarray(tn, dtype=np.float32))
        s0 = time.perf_counter()
        sims, nbr = index.search(np.ascontiguousarray(qn, dtype=np.float32), a.knn_k)
        ts = time.perf_counter() - s0
        w = np.exp((sims.astype(np.float64) - sims[:, :1].astype(np.float64)) / 0.1)  # sims sorted descending
        votes = np.zeros((a.nq, classes))
        np.add.at(votes, (np.repeat(np.arange(a.nq), a.knn_k), ty[nbr].ravel()), w.ravel())
        pred = votes.argmax(axis=1)
        t, c = time.perf_counter() - t0, time.process_time() - c0
        top1 = float((pred == qy).mean())
        agree = "n/a"
        ours = os.path.join(a.data, "knn_pred_ours.i64")
        if os.path.exists(ours):
            agree = f"{float((np.fromfile(ours, dtype=np.int64) == pred).mean()):.6f}"
        print(f"FAISS_KNN nt={a.nt} nq={a.nq} dim={a.dim} k={a.knn_k} threads={a.threads} seconds={t:.3f} "
              f"search_seconds={ts:.3f} cpu_seconds={c:.3f} top1={top1:.6f} agree={agree}", flush=True)


if __name__ == "__main__":
    main()
