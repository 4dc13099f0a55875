"""The report commands from the command line: compare flags incomparable runs (and fails with --strict);
help is readable at 80 columns with required options marked and defaults shown."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from synthetic_run import make_manifest, make_results, write_run

SMALL = {"tasks": ["emotion"], "models": ["whisper-tiny", "mfcc"]}


def cli(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "COLUMNS": "80"}
    cmd = [sys.executable, "-m", "speechprobe.cli", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)


def _run(path, noise, **config):
    manifest = make_manifest(**SMALL)
    manifest["config"].update(config)
    return write_run(path, make_results(seed=noise, **SMALL), manifest, **SMALL)


@pytest.mark.slow
def test_compare_flags_incomparable_runs(tmp_path):
    a, b = _run(tmp_path / "a", 0, seed=0), _run(tmp_path / "b", 1, seed=7)
    done = cli("compare", str(a), str(b), "--out", str(tmp_path / "cmp"), "--labels", "first,second")
    assert done.returncode == 0, done.stderr
    assert (
        "not comparable: first vs second: seed differs (first: 0, second: 7)" in done.stderr
        and (tmp_path / "cmp" / "compare.html").is_file()
    )
    strict = cli("compare", str(a), str(b), "--out", str(tmp_path / "cmp2"), "--strict")
    assert strict.returncode == 2 and strict.stderr.startswith("error: runs are not comparable: a vs b: seed differs")
    one = cli("compare", str(a), "--out", str(tmp_path / "cmp3"))
    assert one.returncode == 2 and "at least two run directories" in one.stderr


@pytest.mark.parametrize("command", ["demo", "run", "compare", "doctor", "report"])
def test_help_fits_80_columns_with_defaults_and_required_marked(command):
    done = cli(command, "--help")
    assert done.returncode == 0
    lines = done.stdout.splitlines()
    assert max(len(line) for line in lines) <= 80, [line for line in lines if len(line) > 80]
    if command == "demo":
        assert "--n-per-class" in done.stdout and "[default:" in done.stdout
    if command == "compare":
        assert "--out" in done.stdout and "required" in done.stdout
