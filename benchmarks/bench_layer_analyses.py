"""Cost of the layer analyses (depth fingerprints, layer similarity, MDL probes), measured in one run.

    PYTHONPATH=src python benchmarks/bench_layer_analyses.py            # demo share + kernels vs naive loops
    PYTHONPATH=src python benchmarks/bench_layer_analyses.py --no-demo  # kernels only (a few minutes)

1. Demo share. ``speechprobe demo`` runs with the three analyses switched off, from an empty scratch
   --out and --cache (extraction, probes, permutation tests, t-SNE, report: the demo as users run it);
   then each analysis runs on that finished run directory, as ``speechprobe run`` calls it. Printed:
   wall and CPU seconds (CPU: the process and its children, so joblib workers count) and each
   analysis as a share of the demo. The issue's budget: all new analyses of issue 16 together at most
   50 % of the demo; these three at most 25 %.
2. Kernels against what one writes by hand, on the same inputs, in the same run:
   - CKA: every pair of 40 representations of 400 clips with ``cka_matrix`` (U-centred Gram matrices,
     one product for all pairs) against the usual per-pair function (Gram matrices, U-centring and
     one inner product per pair), each pair once;
   - MDL: one order of the online code for a 7-layer model (400 clips, 512 dims, 4 classes, 40
     speakers) with ``online_code`` (all layers and penalties in one batched product per step)
     against scikit-learn ``LogisticRegression`` fitted per block, layer and penalty.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ANALYSE = """
import sys, time
from speechprobe.analysis import analyse
run = sys.argv[1]
for name in ("fingerprints", "similarity", "mdl"):
    t, c = time.perf_counter(), time.process_time()
    analyse(run, name)
    print(name, time.perf_counter() - t, time.process_time() - c, flush=True)
"""


def _timed(cmd: list[str], env: dict) -> tuple[float, float, str]:
    """Wall and CPU seconds (children included) of a subprocess, and its stdout."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    done = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if done.returncode:
        sys.exit(f"{' '.join(cmd[:4])} failed:\n{done.stderr[-3000:]}")
    out = done.stdout
    wall = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, out


def demo_share() -> None:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src")}
    with tempfile.TemporaryDirectory() as tmp:
        run, cache = Path(tmp) / "run", Path(tmp) / "cache"
        cmd = [sys.executable, "-m", "speechprobe.cli", "demo", "--out", str(run), "--cache", str(cache)]
        wall, cpu, _ = _timed([*cmd, "--no-progress", "--no-fingerprints", "--no-similarity", "--no-mdl"], env)
        print(f"demo without the layer analyses: {wall:7.1f} s wall, {cpu:7.1f} s CPU")
        _, _, out = _timed([sys.executable, "-c", ANALYSE, str(run)], env)
        total_wall = total_cpu = 0.0
        for line in out.strip().splitlines():
            name, w, c = line.split()
            w, c = float(w), float(c)
            total_wall, total_cpu = total_wall + w, total_cpu + c
            print(f"  {name:<13} {w:6.1f} s wall ({w / wall:6.1%}), {c:6.1f} s CPU ({c / cpu:6.1%})")
        print(
            f"  {'all three':<13} {total_wall:6.1f} s wall ({total_wall / wall:6.1%}), "
            f"{total_cpu:6.1f} s CPU ({total_cpu / cpu:6.1%})"
        )


def _u_centre(K: np.ndarray) -> np.ndarray:
    n = len(K)
    K = K.copy()
    np.fill_diagonal(K, 0)
    r = K.sum(1)
    U = K - r[:, None] / (n - 2) - r[None, :] / (n - 2) + r.sum() / ((n - 1) * (n - 2))
    np.fill_diagonal(U, 0)
    return U


def naive_cka(X: np.ndarray, Y: np.ndarray) -> float:
    """The usual per-pair function: Gram matrices, U-centring and inner products for one pair."""
    K, L = _u_centre(X @ X.T), _u_centre(Y @ Y.T)
    return float(np.sum(K * L) / math.sqrt(np.sum(K * K) * np.sum(L * L)))


def bench_cka(rounds: int) -> None:
    from speechprobe.analysis.similarity import cka_matrix

    rng = np.random.default_rng(0)
    reps = [rng.normal(size=(400, 384)) for _ in range(40)]
    ratios = []
    for _ in range(rounds):
        t = time.perf_counter()
        naive = np.eye(len(reps))
        for i, j in zip(*np.triu_indices(len(reps), 1)):  # each pair once
            naive[i, j] = naive[j, i] = naive_cka(reps[i], reps[j])
        t_naive = time.perf_counter() - t
        t = time.perf_counter()
        ours = cka_matrix(reps)
        t_ours = time.perf_counter() - t
        ratios.append(t_naive / t_ours)
        assert np.allclose(naive, ours, atol=1e-9)
    print(
        f"CKA, 780 pairs of 40 representations, 400 clips: per-pair {t_naive:.2f} s, cka_matrix {t_ours:.2f} s, "
        f"{max(ratios):.1f}x naive"
    )


def naive_online_code(X: np.ndarray, y: np.ndarray, n_classes: int, groups, seed: int) -> np.ndarray:
    """One order of the same mixture code with scikit-learn, per block, layer and penalty."""
    import warnings

    from scipy.special import logsumexp
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    from speechprobe.analysis.mdl import PENALTIES, block_ends, block_order

    order, group_ends = block_order(groups, len(y), seed)
    ends = block_ends(group_ends)
    X, y = X[order], y[order]
    totals = np.full((len(PENALTIES) + 1, X.shape[1]), ends[0] * math.log2(n_classes))
    for start, stop in zip(ends[:-1], ends[1:]):
        totals[0] += (stop - start) * math.log2(n_classes)
        for layer in range(X.shape[1]):
            scaler = StandardScaler().fit(X[:start, layer])
            train, test = scaler.transform(X[:start, layer]), scaler.transform(X[start:stop, layer])
            for g, lam in enumerate(PENALTIES, 1):
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", ConvergenceWarning)
                    model = LogisticRegression(C=1 / (lam * start), max_iter=200).fit(train, y[:start])
                prob = np.full((stop - start, n_classes), 1e-12)
                prob[:, model.classes_] = model.predict_proba(test)
                totals[g, layer] -= np.log2(prob[np.arange(stop - start), y[start:stop]]).sum()
    return -logsumexp(-totals * math.log(2), axis=0) / math.log(2) + math.log2(len(totals))


def bench_mdl() -> None:
    from speechprobe.analysis.mdl import online_code

    rng = np.random.default_rng(0)
    n, n_layers, dim, k = 400, 7, 512, 4
    y = np.arange(n) % k
    X = rng.normal(size=(n, n_layers, dim)).astype(np.float32)
    X[:, :, :k] += np.linspace(0, 4, n_layers)[None, :, None] * np.eye(k)[y][:, None, :]
    groups = np.array([f"s{i // 10}" for i in range(n)])
    t = time.perf_counter()
    naive = naive_online_code(X, y, k, groups, 0)
    t_naive = time.perf_counter() - t
    t = time.perf_counter()
    ours, _ = online_code(X, y, k, groups, 0)
    t_ours = time.perf_counter() - t
    uniform = n * math.log2(k)
    print(
        f"MDL, one order, 7 layers x 512 dims, 400 clips: sklearn loop {t_naive:.1f} s, online_code {t_ours:.1f} s, "
        f"{t_naive / t_ours:.1f}x naive; compression ours {np.round(uniform / ours, 2).tolist()}, "
        f"sklearn {np.round(uniform / naive, 2).tolist()}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--no-demo", action="store_true", help="Skip the demo share (kernels only).")
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}")
    if not args.no_demo:
        demo_share()
    bench_cka(args.rounds)
    bench_mdl()


if __name__ == "__main__":
    main()
