"""SIGINT / SIGTERM: the atomic write in flight finishes, one line says what was saved and the command that
resumes (exit 130 / 143), and the rerun says what it reuses."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from speechprobe import interrupts
from speechprobe.files import atomic_write


def test_a_signal_during_an_atomic_write_waits_until_the_file_is_in_place(tmp_path):
    def write(fh):
        os.kill(os.getpid(), signal.SIGTERM)  # arrives mid-write
        time.sleep(0.05)
        fh.write(b"complete")

    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(interrupts.Interrupted) as caught, interrupts.handling():
        atomic_write(tmp_path / "f.txt", write)
    assert caught.value.exit_code == 143
    assert (tmp_path / "f.txt").read_bytes() == b"complete"  # the write was finished, not cut
    assert [p.name for p in tmp_path.iterdir()] == ["f.txt"]  # no temporary file left
    assert signal.getsignal(signal.SIGTERM) is before  # the handlers are restored


def test_the_resume_line_names_what_was_saved_and_drops_overwrite():
    interrupts.forget()
    argv = ["run", "--models", "a b", "--tasks", "x", "--out", "R", "--overwrite"]
    assert "nothing was saved yet" in interrupts.resume_line(KeyboardInterrupt(), argv)
    interrupts.saved("probe", "probe results of 2 of 6 (model, task) pairs")
    line = interrupts.resume_line(interrupts.Interrupted(signal.SIGTERM), argv)
    assert line == (
        "interrupted (SIGTERM); saved: probe results of 2 of 6 (model, task) pairs; "
        "resume with: speechprobe run --models 'a b' --tasks x --out R"
    )
    interrupts.forget()


def _cmd(model: Path, tones: Path, out: Path) -> list[str]:
    args = ["run", "--models", str(model), "--tasks", str(tones), "--out", str(out), "--folds", "3"]
    args += ["--baselines", "mfcc", "--probes", "knn", "--window", "trimmed", "--no-progress", "--no-embeddings"]
    return [sys.executable, "-m", "speechprobe.cli", *args, "--permutations", "0", "--no-report"]


@pytest.mark.slow
@pytest.mark.parametrize("sig, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_interrupted_run_says_what_was_saved_and_the_rerun_what_it_reuses(tones, tiny_whisper, tmp_path, sig, code):
    env = {**os.environ, "SPEECHPROBE_CACHE": str(tmp_path / "cache")}
    cmd, out = _cmd(tiny_whisper, tones, tmp_path / "run"), tmp_path / "run"
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 600
    while proc.poll() is None and not list(out.glob("partial/*.csv")) and time.monotonic() < deadline:
        time.sleep(0.02)  # interrupt once the first (model, task) pair is probed: chosen by progress, not time
    if proc.poll() is not None:
        pytest.skip("the run finished before the signal; the test needs a slower configuration")
    proc.send_signal(sig)
    err = proc.communicate(timeout=600)[1]
    assert proc.returncode == code, err
    last = err.strip().splitlines()[-1]
    assert last.startswith(f"interrupted ({signal.Signals(sig).name}); saved: the features of")
    assert last.endswith("resume with: speechprobe " + " ".join(cmd[3:]))
    again = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr
    assert f"resuming {out}: 72 of 72 clip features were cached" in again.stderr  # two models and the cues x 24
    assert f"resuming {out}: probes of 1 of 2 (model, task) pairs done, 1 left" in again.stderr
