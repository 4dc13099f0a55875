"""The command line: one-line errors, registries, and a tiny end-to-end run."""

import subprocess
import sys

import pytest


def cli(*args: str, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "speechprobe.cli", *args], capture_output=True, text=True, timeout=300, cwd=cwd
    )


@pytest.mark.parametrize(
    "args, message",
    [
        (["run", "--bogus"], "No such option: --bogus"),
        (["run", "--tasks", "accent", "--models", "whisper-bsae"], "did you mean whisper-base"),
        (["run", "--tasks", "nosuchtask", "--baselines-only", "--baselines", "mfcc"], "unknown task 'nosuchtask'"),
        (["run", "--tasks", "accent", "--baselines-only", "--folds", "0"], "--folds 0: need at least 2 folds"),
        (["run", "--tasks", "accent", "--baselines-only", "--window", "wide"], "choose full or trimmed"),
        (["run", "--tasks", "accent", "--baselines-only", "--device", "cpu", "--dtype", "fp16"], "needs --device cuda"),
        (["run", "--tasks", "accent"], "--models is required"),
        (["run", "--tasks", "accent", "--models", "mfcc", "--probes", "svm"], "--probes svm: choose from knn"),
        (["run", "--tasks", "accent", "--models", "mfcc", "--baselines-only"], "--baselines-only excludes --models"),
        (["extract", "--tasks", "accent"], "pass --baselines-only to run the baselines alone"),
        (["probe", "/nonexistent/run"], "no state.json"),
    ],
)
def test_bad_input_gets_one_clear_line(args, message, tmp_path):
    r = cli(*args, "--out", str(tmp_path / "run")) if args[0] in ("run", "extract") else cli(*args)
    assert r.returncode == 2
    assert message in r.stderr.replace("\n", " ")
    assert "Traceback" not in r.stderr


@pytest.mark.slow
def test_debug_shows_the_traceback(tmp_path):
    r = cli("--debug", "run", "--tasks", "accent", "--models", "whisper-bsae", "--out", str(tmp_path))
    assert r.returncode != 0 and "Traceback" in r.stderr


@pytest.mark.slow
def test_models_and_tasks_list_the_registries():
    models = cli("models").stdout
    assert "whisper-base" in models and "whisper-large-v3" in models and "33" in models
    assert max(map(len, models.splitlines())) <= 80  # piped: 80 columns, not ~230
    rows = cli("models", "--csv").stdout.splitlines()
    assert rows[0] == "name,family,layers,hidden,rate,source,layer 0" and any(
        r.startswith("whisper-base,") for r in rows
    )
    tasks = cli("tasks", "--details").stdout
    assert "accent" in tasks and "en-gb-scotland" in tasks and "stress" in tasks


@pytest.mark.slow
def test_run_end_to_end_from_the_command_line(tones, tiny_whisper, tmp_path):
    out = tmp_path / "run"
    r = cli(
        "run",
        "--models",
        str(tiny_whisper),
        "--tasks",
        str(tones),
        "--out",
        str(out),
        "--folds",
        "3",
        "--baselines",
        "mfcc",
        "--window",
        "trimmed",
        "--no-progress",
        "--permutations",
        "10",
        "--no-embeddings",
    )
    assert r.returncode == 0, r.stderr
    assert "Best layer per task" in r.stdout and "results.csv" in r.stdout
    assert (out / "results.csv").is_file() and (out / "figures" / "layers_tones.png").is_file()
    assert (out / "report.html").is_file()
    r = cli("report", str(out))
    assert r.returncode == 0 and "report.html" in r.stdout


def test_zeroshot_command_refuses_encoder_only_models(tmp_path):
    r = cli("zeroshot", "--models", "mfcc", "--tasks", "spoken_word", "--out", str(tmp_path / "zs"))
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "whisper" in r.stderr.lower()


def test_extract_counts_models_and_baselines_apart():
    from speechprobe.cli.run_commands import extracted_line

    assert extracted_line(1, 6, 1, 24) == "1 model and 5 baselines x 1 task, 24 clips"
    assert extracted_line(2, 2, 3, 1) == "2 models x 3 tasks, 1 clip"
    assert extracted_line(0, 1, 1, 24) == "1 baseline x 1 task, 24 clips"
