"""Probing at scale (issue 18, item 1): our probing path against a naive scikit-learn loop, in one run.

    python benchmarks/bench_probe_scale.py              # 10,000 clips x 13 layers x 768 dims (about 15-25 min)
    python benchmarks/bench_probe_scale.py --quick      # smoke test on a tiny task (seconds)
    python benchmarks/bench_probe_scale.py --layers 33 --dims 1280 --backend torch --device cuda   # GPU task

The task: N clips, L layers x D dims of float32 features written to a ``.npy`` file and memory-mapped, as
the pipeline probes them; C balanced classes crossed with G speakers (grouped K-fold); the class signal
rises then falls with depth (no signal in the first layer, strongest in the middle), plus a per-speaker
offset in every layer, so that grouped folds matter.

``ours`` is what ``speechprobe run`` does for one (model, task): ``cross_validate_layers`` with KNN + MLP
(the default probe settings: MLP early stopping on a validation split of each training fold), k-means
NMI / AMI and the out-of-fold scores, then the selection-aware permutation test of the best layer
(``selection_test``, KNN primary probe, its re-vote null) on the same folds. ``naive`` is the loop one
writes by hand, given the same worker processes: per (layer, fold), StandardScaler + KNeighborsClassifier(5),
StandardScaler + MLPClassifier((256,)) with scikit-learn's defaults (200 epochs at most, stopping on the
training loss), and StandardScaler + KMeans NMI / AMI, on the features loaded whole into memory (joblib's default hands
them to the workers). Its MLP is
the reference the issue names: every layer's mean Macro-F1 of ours must lie within the reference's 95 %
fold CI (the corrected resampled-t interval of ``summary.csv``). The naive loop has no permutation test
(refitting KNN per shuffle costs ~1000x the re-vote; ``bench_statistics.py``), so the ratio is printed both
for probing alone and for the whole of ours.

Peak memory: the process and its worker processes, sampled every 0.1 s from ``/proc``: the sum of their
private memory (``RssAnon``), and of their whole resident memory (``VmRSS``, which also counts the pages
of the memory-mapped feature file each process has read).
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import tempfile
import threading
import time
import warnings
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path

import numpy as np
from joblib import Parallel, delayed
from joblib.externals.loky import get_reusable_executor
from sklearn.cluster import KMeans
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import adjusted_mutual_info_score, f1_score, normalized_mutual_info_score
from sklearn.neighbors import KNeighborsClassifier
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from speechprobe.analysis.stats import selection_test
from speechprobe.analysis.summary import corrected_t_halfwidth
from speechprobe.config import ProbeSettings
from speechprobe.probes import cross_validate_layers

FULL = {"clips": 10_000, "layers": 13, "dims": 768, "classes": 10, "groups": 100, "folds": 5, "permutations": 1000}
QUICK = {"clips": 240, "layers": 3, "dims": 16, "classes": 4, "groups": 12, "folds": 3, "permutations": 20}


def make_task(path: Path, clips: int, layers: int, dims: int, classes: int, groups: int, seed: int = 0):
    """Write the features ``(clips, layers, dims)`` float32 to ``path`` (.npy) one layer at a time; return
    the memory-mapped features, the labels and the speaker of every clip."""
    rng = np.random.default_rng(seed)
    codes = rng.permutation(np.arange(clips) % classes)
    speakers = rng.integers(0, groups, clips)
    strength = 0.13 * np.sin(np.pi * np.linspace(0, 1, layers)) ** 0.7  # per-dimension signal, in noise units
    features = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(clips, layers, dims))
    for layer in range(layers):
        centres = rng.normal(size=(classes, dims)) * strength[layer]
        offsets = rng.normal(size=(groups, dims)) * 0.3
        noise = rng.standard_normal((clips, dims), dtype=np.float32)
        features[:, layer] = noise + (centres[codes] + offsets[speakers]).astype(np.float32)
    features.flush()
    del features
    labels = np.array([f"class{c}" for c in codes])
    return np.load(path, mmap_mode="r"), labels, np.array([f"spk{s}" for s in speakers])


class PeakMemory:
    """Peak summed ``RssAnon`` and ``VmRSS`` (MB) of this process and its descendants while in the block."""

    def __init__(self, interval: float = 0.1):
        self.interval, self.anon, self.rss = interval, 0.0, 0.0
        self._stop = threading.Event()

    def __enter__(self) -> PeakMemory:
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def _watch(self) -> None:
        while True:
            anon = rss = 0.0
            for pid in _tree(os.getpid()):
                fields = _status(pid)
                anon, rss = anon + fields.get("RssAnon", 0.0), rss + fields.get("VmRSS", 0.0)
            self.anon, self.rss = max(self.anon, anon), max(self.rss, rss)
            if self._stop.wait(self.interval):
                return


def cpu_seconds() -> float:
    """User + system CPU seconds of this process and of its reaped children (the joblib workers count once the
    executor is shut down): a figure that, unlike wall time, does not grow with other users' load."""
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def _tree(pid: int) -> list[int]:
    """``pid`` and its descendants (Linux ``/proc``; just ``pid`` elsewhere)."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        for task in Path(f"/proc/{p}/task").glob("*/children"):
            try:
                todo += [int(c) for c in task.read_text().split()]
            except OSError:
                pass
    return out


def _status(pid: int) -> dict[str, float]:
    try:
        lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    except OSError:
        return {}
    return {k: float(v.split()[0]) / 1024 for k, _, v in (line.partition(":") for line in lines) if v.endswith("kB")}


def run_ours(features, labels, groups, args) -> dict:
    """The pipeline's probing of one (model, task), then its selection-aware test; seconds of each."""
    min_train = args.mlp_early_stopping_min_train
    settings = ProbeSettings() if min_train is None else ProbeSettings(mlp_early_stopping_min_train=min_train)
    t0 = time.perf_counter()
    result = cross_validate_layers(
        features, labels, groups, ("knn", "mlp"), args.folds, args.seed, args.jobs,
        backend=args.backend, device=args.device, settings=settings,
    )  # fmt: skip
    t1 = time.perf_counter()
    test = selection_test(
        features, labels, groups, ("knn",), args.permutations, seed=args.seed, folds=result.plan.folds,
        settings=settings, n_jobs=args.jobs,
    )  # fmt: skip
    t2 = time.perf_counter()
    mlp = {k: v for k, v in asdict(settings).items() if k.startswith("mlp_")}
    return {"rows": result.rows, "plan": result.plan, "probing": t1 - t0, "test": t2 - t1, "p": test.p_value} | {
        "settings": mlp
    }


def _naive_cell(features: np.ndarray, layer: int, train, test, y, seed: int, n_classes: int) -> dict:
    """One (layer, fold) of the naive loop, single-threaded (joblib hands the workers the loaded array)."""
    X_train, X_test, y_train, y_test = features[train, layer], features[test, layer], y[train], y[test]
    with threadpool_limits(1), warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        knn = make_pipeline(StandardScaler(), KNeighborsClassifier(5)).fit(X_train, y_train)
        mlp = make_pipeline(StandardScaler(), MLPClassifier((256,), random_state=seed)).fit(X_train, y_train)
        km = make_pipeline(StandardScaler(), KMeans(n_classes, n_init=10, random_state=seed))
        clusters = km.fit(X_train.astype(np.float64)).predict(X_test.astype(np.float64))
    return {
        "knn": f1_score(y_test, knn.predict(X_test), labels=np.unique(y), average="macro", zero_division=0),
        "mlp": f1_score(y_test, mlp.predict(X_test), labels=np.unique(y), average="macro", zero_division=0),
        "nmi": normalized_mutual_info_score(y_test, clusters),
        "ami": adjusted_mutual_info_score(y_test, clusters),
        "epochs": mlp[-1].n_iter_,
    }


def run_naive(path: Path, labels, folds, n_layers: int, args) -> Iterator[tuple[int, list[dict]]]:
    """The naive loop's (layer, fold) cells in ``args.jobs`` worker processes; yields ``(layer, its folds'
    cells)`` as each layer completes, so that a run cut short still shows the layers it finished."""
    features = np.load(path)  # loaded whole, as one writes it
    cells = Parallel(n_jobs=args.jobs, return_as="generator")(
        delayed(_naive_cell)(features, layer, *fold, labels, args.seed, len(np.unique(labels)))
        for layer in range(n_layers)
        for fold in folds
    )
    for layer in range(n_layers):
        yield layer, [next(cells) for _ in folds]


def compare_layer(ours: dict, layer: int, cells: list[dict], ratio: float) -> dict:
    """One layer: ours' and the reference's mean MLP Macro-F1, the reference's fold CI, and the largest gap of
    the metrics both paths compute the same way (KNN Macro-F1, NMI, AMI)."""

    def mine(probe: str, metric: str) -> np.ndarray:
        rows = [r for r in ours["rows"] if (r["layer"], r["probe"], r["metric"]) == (layer, probe, metric)]
        return np.array([r["value"] for r in sorted(rows, key=lambda r: r["fold"])])

    ref = {k: np.array([cell[k] for cell in cells]) for k in ("knn", "mlp", "nmi", "ami", "epochs")}
    same = [("knn", "knn", "macro_f1"), ("nmi", "kmeans", "nmi"), ("ami", "kmeans", "ami")]
    row = {"layer": layer, "ours": float(mine("mlp", "macro_f1").mean()), "reference": float(ref["mlp"].mean())}
    row["ci"] = float(corrected_t_halfwidth(ref["mlp"].std(ddof=1), len(cells), ratio))
    row["inside"] = abs(row["ours"] - row["reference"]) <= row["ci"]
    row["epochs"] = float(ref["epochs"].mean())
    row["same_gap"] = max(float(np.abs(mine(p, m) - ref[k]).max()) for k, p, m in same)
    return row


def print_ours(shape: dict, ours: dict, features, args) -> None:
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, load {load:.1f}")
    print(f"task: {shape}; features {features.nbytes / 2**20:.0f} MB on disk, memory-mapped")
    print(f"ours' MLP settings: {ours['settings']}")
    print(
        f"ours: probing {ours['probing']:.1f} s + selection-aware test {ours['test']:.1f} s"
        f" = {ours['probing'] + ours['test']:.1f} s wall (p = {ours['p']:.4f}); {ours['cpu']:.0f} CPU s"
        f" (/ {args.jobs} = {ours['cpu'] / args.jobs:.0f} s); peak memory {ours['memory']}",
        flush=True,
    )


def compare(path: Path, labels, ours: dict, args) -> dict:
    """Run the naive loop, printing each layer's comparison as it completes, then the times and ratios."""
    folds = ours["plan"].folds
    ratio = float(np.mean([len(te) / len(tr) for tr, te in folds]))
    print("layer  MLP Macro-F1 ours  reference ± fold CI   inside  ref. epochs  KNN/NMI/AMI gap", flush=True)
    table = []
    t0, cpu = time.perf_counter(), cpu_seconds()
    with PeakMemory() as peak:
        for layer, cells in run_naive(path, labels, folds, args.layers, args):
            row = compare_layer(ours, layer, cells, ratio)
            table.append(row)
            print(
                f"{layer:5d}  {row['ours']:17.3f}  {row['reference']:9.3f} ± {row['ci']:.3f}"
                f"   {'yes' if row['inside'] else 'NO':>6}  {row['epochs']:11.1f}  {row['same_gap']:.2g}",
                flush=True,
            )
    seconds, total = time.perf_counter() - t0, ours["probing"] + ours["test"]
    get_reusable_executor().shutdown(wait=True)
    cpu = cpu_seconds() - cpu
    print(f"every layer inside its fold CI: {all(row['inside'] for row in table)}")
    print(
        f"naive: {seconds:.1f} s wall, {cpu:.0f} CPU s;"
        f" peak memory {peak.anon:.0f} MB private, {peak.rss:.0f} MB resident"
    )
    print(f"ratio naive / ours, wall: probing {seconds / ours['probing']:.2f}x, probing + test {seconds / total:.2f}x")
    print(f"ratio naive / ours, CPU (probing + test): {cpu / ours['cpu']:.2f}x")
    return {"seconds": seconds, "cpu": cpu, "table": table}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="tiny task (smoke test)")
    for name, value in FULL.items():
        parser.add_argument(f"--{name}", type=int, default=None, help=f"default {value} ({QUICK[name]} with --quick)")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--backend", default="auto", help="probe backend: auto, sklearn or torch")
    parser.add_argument("--device", default=None, help="torch device of the torch backend (cpu, cuda)")
    parser.add_argument("--no-naive", action="store_true", help="time ours only")
    parser.add_argument(
        "--mlp-early-stopping-min-train", type=int, default=None, help="ours: the probe setting (default: the default)"
    )
    parser.add_argument("--workdir", type=Path, default=None, help="where the feature file goes (default: a temp dir)")
    args = parser.parse_args(argv)
    for name, value in (QUICK if args.quick else FULL).items():
        setattr(args, name, value if getattr(args, name) is None else getattr(args, name))
    shape = {k: getattr(args, k) for k in FULL}
    with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
        path = Path(tmp) / "features.npy"
        features, labels, groups = make_task(path, args.clips, args.layers, args.dims, args.classes, args.groups)
        cpu = cpu_seconds()
        with PeakMemory() as peak:
            ours = run_ours(features, labels, groups, args)
        get_reusable_executor().shutdown(wait=True)  # counts the workers' CPU; fresh workers for the naive loop
        ours["cpu"] = cpu_seconds() - cpu
        ours["memory"] = f"{peak.anon:.0f} MB private, {peak.rss:.0f} MB resident"
        print_ours(shape, ours, features, args)
        naive = None if args.no_naive else compare(path, labels, ours, args)
    return {"ours": ours, "naive": naive, "table": naive and naive["table"]}


if __name__ == "__main__":
    main()
