"""The run directory's lock: a held directory is refused with the holder's pid; a dead holder never blocks."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading

import pytest

from speechprobe.rundir import RunDir
from speechprobe.runlock import HOLDER, RunDirBusy

HOLD = """
import sys, time
from speechprobe.rundir import RunDir
with RunDir(sys.argv[1]).lock():
    print("held", flush=True)
    time.sleep(600)
"""


def _holder(path) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(path)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "held"
    return proc


def test_a_held_directory_is_refused_naming_the_pid_until_its_holder_dies(tmp_path):
    out = tmp_path / "run"
    proc = _holder(out)
    try:
        with pytest.raises(RunDirBusy, match=rf"{out} is being written by another speechprobe run \(pid {proc.pid} on"):
            RunDir(out).claim("probe", {"folds": 5})
        assert not (out / "run.json").exists()
    finally:
        proc.send_signal(signal.SIGKILL)  # kill -9: no clean-up runs, the holder file stays
        proc.wait()
    assert (out / HOLDER).is_file()
    assert RunDir(out).claim("probe", {"folds": 5}) == "new"  # the dead holder's lock is gone with it
    assert not (out / HOLDER).exists()


def test_the_lock_is_reentrant_in_its_thread_and_refused_to_others(tmp_path):
    run = RunDir(tmp_path / "run")
    seen = []

    def other() -> None:
        try:
            with run.lock():
                seen.append("entered")
        except RunDirBusy as e:
            seen.append(str(e))

    with run.lock():
        assert run.claim("extract", {"seed": 0}) == "new"  # a stage's claim nests inside the command's hold
        thread = threading.Thread(target=other)
        thread.start()
        thread.join()
    assert len(seen) == 1 and f"(pid {os.getpid()} on" in seen[0]
    with run.lock():  # released: taken again
        pass


def test_cli_refuses_a_second_run_with_one_line(tmp_path):
    from faults import cli, one_line, tones

    a = tones(tmp_path / "data")
    out = tmp_path / "run"
    proc = _holder(out)
    try:
        r = cli(
            "run",
            "--baselines-only",
            "--tasks",
            str(a),
            "--out",
            str(out),
            "--baselines",
            "mfcc",
            "--no-report",
            cache=tmp_path / "c",
        )
    finally:
        proc.kill()
        proc.wait()
    assert r.returncode == 2 and f"(pid {proc.pid} on" in one_line(r)
    assert sorted(p.name for p in out.iterdir()) == [".speechprobe.lock", HOLDER]
