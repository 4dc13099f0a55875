"""Warnings raised in worker threads: captured per thread, handed to the consuming thread, counted once each."""

import threading
import warnings

import pytest

from speechprobe.parallel import captured_warnings, ordered_map, tally_warnings


class DecoderWarning(UserWarning):
    """What a library says while decoding (e.g. librosa's audioread fallback)."""


def _decode(i: int) -> int:
    warnings.warn(f"clip {i % 2}: fell back to another decoder", DecoderWarning, stacklevel=2)
    return i * i


def test_ordered_map_hands_worker_warnings_to_the_consuming_thread():
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        with captured_warnings() as mine:  # this thread's capture: the workers' warnings arrive here
            out = list(ordered_map(_decode, range(10), workers=3))
    assert out == [i * i for i in range(10)]
    assert [w.message for w in mine] == [f"clip {i % 2}: fell back to another decoder" for i in range(10)]
    assert all(w.category is DecoderWarning for w in mine)
    assert seen == []  # nothing leaked past the capture to the process-wide display


def test_captures_in_many_threads_at_once_keep_their_own_warnings():
    """catch_warnings entered by several threads at once restores the wrong filters; these never mix."""
    results: dict[int, list[str]] = {}
    start = threading.Barrier(8)

    def work(t: int) -> None:
        start.wait()
        with captured_warnings() as caught:
            for k in range(50):
                warnings.warn(f"thread {t} warning {k}", UserWarning, stacklevel=2)
        results[t] = [c.message for c in caught]

    filters = list(warnings.filters)
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        threads = [threading.Thread(target=work, args=(t,)) for t in range(8)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
    assert results == {t: [f"thread {t} warning {k}" for k in range(50)] for t in range(8)}
    assert seen == [] and warnings.filters == filters


def test_tally_counts_every_occurrence_and_shows_each_kind_once():
    with warnings.catch_warnings(record=True) as shown:
        warnings.simplefilter("default")  # Python's default display: once per location
        warnings.filterwarnings("ignore", category=PendingDeprecationWarning)  # as Python's defaults do
        with tally_warnings() as counts:
            list(ordered_map(_decode, range(7), workers=2))
            warnings.warn("on the driver thread", RuntimeWarning, stacklevel=2)
            warnings.warn("what the filters ignore is not counted", PendingDeprecationWarning, stacklevel=2)
    assert counts == {
        "DecoderWarning: clip 0: fell back to another decoder": 4,
        "DecoderWarning: clip 1: fell back to another decoder": 3,
        "RuntimeWarning: on the driver thread": 1,
    }
    assert sorted(str(w.message) for w in shown) == [
        "clip 0: fell back to another decoder",
        "clip 1: fell back to another decoder",
        "on the driver thread",
    ]


def test_tally_still_shows_what_it_counted_when_the_work_fails():
    with warnings.catch_warnings(record=True) as shown, pytest.raises(ZeroDivisionError):
        warnings.simplefilter("always")
        with tally_warnings():
            list(ordered_map(_decode, range(3), workers=2))
            raise ZeroDivisionError
    assert len(shown) == 2


def test_longest_first_dispatches_by_cost_and_returns_in_the_jobs_order():
    from joblib import delayed

    from speechprobe.parallel import longest_first

    calls = []

    def job(k: int) -> int:
        calls.append(k)
        return 10 * k

    assert longest_first([delayed(job)(k) for k in range(4)], [1.0, 5.0, 3.0, 2.0], n_jobs=1) == [0, 10, 20, 30]
    assert calls == [1, 2, 3, 0]  # the costliest first


def _grow(mb: int, resident: bool) -> int:
    """A loky job that keeps ``mb`` MB alive in its worker (as a kept model does) and returns the worker's pid."""
    import os
    import time

    import numpy as np

    import speechprobe.parallel as parallel

    if resident:
        parallel.keep_resident()
    if mb:
        parallel.__dict__.setdefault("_kept_for_test", []).append(np.ones(mb << 17))  # touched: in the RSS
        time.sleep(1.2)  # loky checks the memory at most once a second
    return os.getpid()


@pytest.mark.filterwarnings("ignore:A worker stopped while some jobs:UserWarning")
@pytest.mark.parametrize("resident", [False, True])
def test_a_worker_that_keeps_models_resident_is_not_restarted_as_a_leak(resident):
    from joblib.externals.loky import get_reusable_executor, process_executor

    if not process_executor._USE_PSUTIL:
        pytest.skip("loky's leak guard needs psutil")
    executor = get_reusable_executor(max_workers=1, reuse=False)
    try:
        pids = [executor.submit(_grow, mb, resident).result() for mb in (0, 400, 0)]
    finally:
        executor.shutdown(wait=True)
    # the first job sets the worker's reference size; 400 MB more after the second: loky restarts it unless kept
    assert (pids[0] == pids[1]) and ((pids[1] == pids[2]) == resident)
