"""Every phase of a run shows progress with a total (so an ETA): no silent phase between the bars.

The pipeline runs in this process with every analysis on and one job (so all its work is on this
process's CPU clock), and every progress event (a bar opened or moved) is recorded with the process's
CPU time: a clock that other programs on a busy machine do not move, so the gaps measured are the
pipeline's own work between two events, whatever the load.
"""

import time

import pytest
import tqdm.std

from speechprobe.config import RunConfig
from speechprobe.pipeline import run

# Phases that took minutes at the demo's size without a bar; each must now open one of its own.
PHASES = (
    "probing",
    "summary, bootstrap, figures",
    "analyses",
    "cue probes",
    "erasure",
    "all-layers",
    "report",
)


@pytest.fixture
def events(monkeypatch):
    """(CPU seconds, bar description, bar total) of every bar opened or moved."""
    seen: list[tuple[float, str, float | None]] = []
    init, update = tqdm.std.tqdm.__init__, tqdm.std.tqdm.update

    def record(bar) -> None:
        if not getattr(bar, "disable", True):
            seen.append((time.process_time(), bar.desc, bar.total))

    def recording_init(self, *args, **kwargs):
        init(self, *args, **kwargs)
        record(self)

    def recording_update(self, n=1):
        out = update(self, n)
        record(self)
        return out

    monkeypatch.setattr(tqdm.std.tqdm, "__init__", recording_init)
    monkeypatch.setattr(tqdm.std.tqdm, "update", recording_update)
    return seen


def test_no_silent_phase_from_start_to_end(tones, tiny_whisper, tmp_path, events):
    every_analysis = dict(permutations=50, erasure=True, n_jobs=1, probes=["knn"], baselines=["mfcc"], folds=4)
    cfg = RunConfig.of(models=[str(tiny_whisper)], tasks=[str(tones)], out=tmp_path / "run", window="trimmed")
    cfg = cfg.updated(cache=tmp_path / "cache", **every_analysis)
    start = time.process_time()
    run(cfg)
    end = time.process_time()
    names = {desc for _, desc, _ in events}
    assert [p for p in PHASES if not any(n.startswith(p) for n in names)] == []
    assert any(n.endswith("/tones") for n in names)  # extraction, per (model, task)
    assert {desc for _, desc, total in events if not total} == set()  # every bar has a total: an ETA
    clock = [start, *(t for t, _, _ in events), end]
    gaps = sorted(((b - a, i) for i, (a, b) in enumerate(zip(clock, clock[1:]))), reverse=True)
    longest, at = gaps[0]
    after = events[at - 1][1] if at else "the start"
    # The longest stretch without a progress event is a small part of the run (it was over a third: the cue
    # analyses, and the report after the last bar) and at most a few CPU seconds at this size.
    assert longest <= 0.25 * (end - start), f"{longest:.1f} of {end - start:.1f} CPU s silent after {after!r}"
    assert longest <= 5.0, f"{longest:.1f} CPU s silent after {after!r}"
