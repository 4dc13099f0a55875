"""Fault cases: commands that must survive damaged or unusual input (issue 31 items 5-10); registered in
faults.CASES."""

from __future__ import annotations

import csv
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import soundfile as sf
from faults import ROOT, SR, case, cli, manifest, one_line, run, tone, tones

# -- 31.5 reproduce ------------------------------------------------------------------------------------


def _finished(tmp: Path) -> Path:
    """A finished run of the tones task in ``tmp/run`` (cache ``tmp/cache``)."""
    run([tones(tmp / "data")], tmp / "run", tmp / "cache")
    return tmp / "run"


def _edit_config(run_dir: Path, **changes) -> None:
    m = manifest(run_dir)
    for key, value in changes.items():
        if value is None:
            m["config"].pop(key)
        else:
            m["config"][key] = value
    (run_dir / "manifest.json").write_text(json.dumps(m))


@case("31.5", "reproduce a run whose results.csv was deleted (CLI)", "exit 2, one line naming it, before any rerun")
def reproduce_no_results(tmp: Path) -> str:
    (_finished(tmp) / "results.csv").unlink()
    r = cli("reproduce", str(tmp / "run"), "--out", str(tmp / "again"), cache=tmp / "cache")
    line = one_line(r)
    assert r.returncode == 2 and "results.csv is missing" in line and not (tmp / "again").exists(), line
    return f"exit 2: {line.replace(str(tmp), '…')}"


@case("31.5", 'reproduce with "folds": "five" in manifest.json (CLI)', "exit 2, one line naming the file and key")
def reproduce_wrong_type(tmp: Path) -> str:
    _edit_config(_finished(tmp), folds="five")
    r = cli("reproduce", str(tmp / "run"), "--out", str(tmp / "again"), cache=tmp / "cache")
    line = one_line(r)
    assert r.returncode == 2 and "manifest.json: config key 'folds'" in line and "five" in line, line
    return f"exit 2: {line.replace(str(tmp), '…')}"


@case("31.5", "reproduce without a config section, with an unknown key, or one missing", "one line each")
def reproduce_bad_config(tmp: Path) -> str:
    from speechprobe.errors import SpeechprobeError
    from speechprobe.reproduce import reproduce

    _finished(tmp)
    original = (tmp / "run" / "manifest.json").read_text()
    seen = []
    for change, expected in (
        ({"config": None}, "no run configuration"),
        ({"frobnicate": 3}, "config key 'frobnicate' is not a setting"),
        ({"tasks": None}, "config key 'tasks' is missing"),
    ):
        (tmp / "run" / "manifest.json").write_text(original)
        if "config" in change:
            m = manifest(tmp / "run")
            m.pop("config")
            (tmp / "run" / "manifest.json").write_text(json.dumps(m))
        else:
            _edit_config(tmp / "run", **change)
        try:
            reproduce(tmp / "run", tmp / "again")
            raise AssertionError(f"{change}: no error")
        except SpeechprobeError as e:
            message = str(e)
        assert expected in message and "\n" not in message and not (tmp / "again").exists(), message
        seen.append(message.split("manifest.json: ")[1][:45])
    return "; ".join(seen)


@case("31.5", "reproduce from another working directory (--tasks given relative)", "identical: resolved paths")
def reproduce_elsewhere(tmp: Path) -> str:
    tones(tmp / "data")
    (tmp / "elsewhere").mkdir()
    args = ["--baselines", "mfcc", "--folds", "2", "--probes", "knn", "--permutations", "0", "--no-report"]
    first = cli(
        "run", "--baselines-only", "--tasks", "data/tones.csv", "--out", "run", *args, cache=tmp / "cache", cwd=tmp
    )
    assert first.returncode == 0, first.stderr
    again = cli("reproduce", "../run", "--out", "../again", cache=tmp / "cache", cwd=tmp / "elsewhere")
    recorded = manifest(tmp / "run")["tasks"]["tones"]["input"]
    assert again.returncode == 0 and "identical" in again.stdout, (again.stdout, again.stderr)
    assert recorded["resolved"] == str(tmp / "data" / "tones.csv") and len(recorded["sha256"]) == 64
    return f"{again.stdout.strip().splitlines()[-1].replace(str(tmp), '…')}; recorded {recorded['spec']} → resolved"


@case("31.5", "reproduce after one WAV and one label changed (CLI)", "DIFFERENT, exit 1, naming the changed inputs")
def reproduce_names_inputs(tmp: Path) -> str:
    _finished(tmp)
    sf.write(tmp / "data" / "low3.wav", tone(0.55, 700.0, seed=9), SR)
    table = pd.read_csv(tmp / "data" / "tones.csv")
    table.loc[table["path"] == "high5.wav", "label"] = "low"
    table.to_csv(tmp / "data" / "tones.csv", index=False)
    r = cli("reproduce", str(tmp / "run"), "--out", str(tmp / "again"), cache=tmp / "cache")
    changed = [x.split("changed input: ")[1] for x in r.stdout.splitlines() if "changed input: " in x]
    assert r.returncode == 1 and "DIFFERENT" in r.stdout, (r.stdout, r.stderr)
    assert any("tones.csv changed (sha256" in x for x in changed), changed
    assert "task tones: 1 clips whose audio changed: low3.wav" in changed, changed
    assert "task tones: 1 clips whose label changed: high5.wav" in changed, changed
    return f"exit 1; {'; '.join(x.replace(str(tmp), '…') for x in changed)}"


@case("31.5", "reproduce --cache DIR", "the rerun's features go to DIR; results identical")
def reproduce_cache(tmp: Path) -> str:
    _finished(tmp)
    r = cli("reproduce", str(tmp / "run"), "--out", str(tmp / "again"), "--cache", str(tmp / "other"))
    stored = list((tmp / "other" / "features").rglob("*.npy"))
    assert r.returncode == 0 and "identical" in r.stdout and len(stored) >= 16, (r.stdout, r.stderr)
    assert manifest(tmp / "again")["config"]["cache"] == str(tmp / "other")
    return f"{len(stored)} items under --cache; {r.stdout.strip().splitlines()[-1].split(':')[0]}"


@case("31.5", "reproduce after the task's manifest CSV was deleted (CLI)", "exit 2, one line naming the file")
def reproduce_source_gone(tmp: Path) -> str:
    _finished(tmp)
    (tmp / "data" / "tones.csv").unlink()
    r = cli("reproduce", str(tmp / "run"), "--out", str(tmp / "again"), cache=tmp / "cache")
    line = one_line(r)
    assert r.returncode == 2 and str(tmp / "data" / "tones.csv") in line, line
    return f"exit 2: {line.replace(str(tmp), '…')}"


# -- 31.6 absurd amplitude -----------------------------------------------------------------------------


@case("31.6", "one float WAV with amplitude 1e18 among normal clips", "skipped (counted, reason names the peak)")
def huge_amplitude(tmp: Path) -> str:
    (tmp / "data").mkdir(parents=True)
    audio = tone(0.5)
    sf.write(tmp / "data" / "huge.wav", audio / np.abs(audio).max() * np.float32(1e18), SR, subtype="FLOAT")
    a = tones(tmp / "data", rows=[("huge.wav", "low", "spk0")])
    run([a], tmp / "run", tmp / "cache")
    m = manifest(tmp / "run")
    reason = m["skipped"]["items"][0]["reason"]
    assert m["skipped"]["by_kind"] == {"audio": 1} and "peak amplitude 1e+18" in reason
    assert m["tasks"]["tones"]["n_clips"] == 16
    return f"skipped {m['skipped']['by_kind']}: {reason.split('(huge.wav): ')[1]}; 16 clips probed"


# -- 31.7 doctor ---------------------------------------------------------------------------------------


@case("31.7", "doctor --device cuda on a torch without CUDA (CLI)", "exit 2, the one line `run` gives")
def doctor_no_cuda(tmp: Path) -> str:
    import torch

    if torch.cuda.is_available():
        return "not applicable: this torch has CUDA"
    r = cli("doctor", "--device", "cuda")
    line = one_line(r)
    assert r.returncode == 2 and "--device cuda: no CUDA GPU" in line, line
    return f"exit 2: {line}"


@case("31.7", "doctor --seconds 8 --cache DIR (a fresh cache)", "checkpoint under DIR; timing within 8 s")
def doctor_budget(tmp: Path) -> str:
    r = cli("doctor", "--seconds", "8", "--cache", str(tmp / "mine"), "--no-progress")
    assert r.returncode == 0, r.stderr
    line = r.stdout.strip().splitlines()[-1]  # measured in N s (M s of it starting: loading ..., first call)
    total, setup = (int(x) for x in re.findall(r"(\d+) s\b", line)[:2])
    assert total - setup <= 9 and any((tmp / "mine" / "checkpoints").iterdir()), r.stdout
    return line


# -- 31.8 report ---------------------------------------------------------------------------------------


@case("31.8", "report on an empty folder and on a folder of other files (CLI)", "exit 2, one line; nothing written")
def report_not_a_run(tmp: Path) -> str:
    (tmp / "empty").mkdir()
    (tmp / "other").mkdir()
    (tmp / "other" / "notes.txt").write_text("mine")
    seen = []
    for folder in ("empty", "other"):
        r = cli("report", str(tmp / folder))
        line = one_line(r)
        written = sorted(p.name for p in (tmp / folder).iterdir())
        assert r.returncode == 2 and "not a speechprobe run directory" in line, line
        assert written == ([] if folder == "empty" else ["notes.txt"]), written
        seen.append(f"{folder}: exit 2, {len(written)} file(s)")
    return "; ".join(seen) + f" ({line.split(' (')[0].replace(str(tmp), '…')})"


@case("31.8", "a Macro-F1 hand-edited to 7.5 (results.csv; summary.csv alone)", "flagged and left out, never 7.500")
def report_out_of_range(tmp: Path) -> str:
    from speechprobe.report import build_report

    _finished(tmp)
    results = pd.read_csv(tmp / "run" / "results.csv")
    row = results.index[results["metric"] == "macro_f1"][0]
    results.loc[row, "value"] = 7.5
    results.to_csv(tmp / "run" / "results.csv", index=False, lineterminator="\n")
    build_report(tmp / "run")
    md = (tmp / "run" / "report.md").read_text()
    table = pd.read_csv(tmp / "run" / "main_table.csv")
    assert "outside their metric's range" in md and "7.500" not in md and not (table["macro_f1"] > 1).any()
    flagged = next(x for x in md.splitlines() if "outside their metric" in x).strip("- ")
    summary = pd.read_csv(tmp / "run" / "summary.csv")
    summary.loc[summary.index[summary["metric"] == "macro_f1"][0], "mean"] = 7.5
    summary.to_csv(tmp / "run" / "summary.csv", index=False)
    (tmp / "run" / "results.csv").unlink()
    build_report(tmp / "run")
    md = (tmp / "run" / "report.md").read_text()
    assert "summary.csv has 1 value(s) outside their metric's range" in md and "7.500" not in md
    return f"{flagged[:100]}; summary.csv alone: flagged too"


# -- 31.9 CSV formula injection ------------------------------------------------------------------------

HOSTILE_TASK = "=HYPERLINK(1)"
HOSTILE_LABELS = {"low": "=cmd|' /c calc'!a0", "high": "@sum(1+1)"}  # labels are read in lower case


def _hostile_run(tmp: Path) -> pd.DataFrame:
    """A run of the tone set under the hostile task and label names (the manifest is written once)."""
    path = tmp / "data" / f"{HOSTILE_TASK}.csv"
    if not path.is_file():
        table = pd.read_csv(tones(tmp / "data"))
        table["label"] = table["label"].map(HOSTILE_LABELS)
        table.to_csv(path, index=False)
    return run([path], tmp / "run", tmp / "cache")


def _formula_cells(path: Path) -> list[str]:
    """Cells a spreadsheet would evaluate: starting with = + - @ tab or CR, and not a plain number."""
    from speechprobe.csvsafe import neutralise_cell

    with open(path, newline="") as fh:
        return [c for row in csv.reader(fh) for c in row if c and neutralise_cell(c) != c and c[0] != "'"]


@case("31.9", "a task =HYPERLINK(1), labels =cmd|' /c calc'!a0 and @sum(1+1)", "no formula cell; read back as given")
def formula_injection(tmp: Path) -> str:
    from speechprobe.analysis.inputs import read_clips
    from speechprobe.report import build_report
    from speechprobe.rundir import read_results

    _hostile_run(tmp)
    build_report(tmp / "run")
    files = [tmp / "run" / n for n in ("results.csv", "summary.csv", "main_table.csv", "bootstrap.csv")]
    files += sorted((tmp / "run" / "clips").glob("*.csv"))
    bad = {p.name: _formula_cells(p) for p in files if _formula_cells(p)}
    assert not bad and all(p.is_file() for p in files), bad
    tasks = set(read_results(tmp / "run" / "results.csv")["task"])
    labels = set(read_clips(tmp / "run", HOSTILE_TASK, manifest(tmp / "run")["tasks"][HOSTILE_TASK])["label"])
    assert tasks == {HOSTILE_TASK} and labels == set(HOSTILE_LABELS.values()), (tasks, labels)
    cell = next(c for row in csv.reader(open(files[0])) for c in row if "HYPERLINK" in c)
    return f"{len(files)} CSVs, 0 formula cells (results.csv holds {cell}); readers give {HOSTILE_TASK} back"


@case("31.9", "the hostile-named run again (resume)", "its own CSVs read back: nothing recomputed, same rows")
def formula_resume(tmp: Path) -> str:
    first = _hostile_run(tmp)
    before = (tmp / "run" / "results.csv").read_bytes()
    again = _hostile_run(tmp)
    computed = sum(e["computed"] for e in manifest(tmp / "run")["extraction"].values())
    assert again.equals(first) and (tmp / "run" / "results.csv").read_bytes() == before and computed == 0
    assert set(again["task"]) == {HOSTILE_TASK}
    return f"{len(again)} rows of task {HOSTILE_TASK} read back from partial/ and clips/, {computed} clips computed"


@case("31.9", "a normal run; -0.5 in numeric and text columns", "results.csv byte-identical to plain CSV; numbers kept")
def formula_numbers_kept(tmp: Path) -> str:
    from speechprobe.rundir import csv_bytes, read_results

    _finished(tmp)
    plain = read_results(tmp / "run" / "results.csv")
    buf = plain.to_csv(index=False, lineterminator="\n").encode()
    assert (tmp / "run" / "results.csv").read_bytes() == buf
    numbers = pd.DataFrame({"value": [-0.5, 1.0], "text": ["-0.5", "-1e-3"], "name": ["a", "b"]})
    assert csv_bytes(numbers) == numbers.to_csv(index=False, lineterminator="\n").encode()
    return f"results.csv ({len(plain)} rows) identical to pandas' own CSV; -0.5 and -1e-3 written as numbers"


# -- 31.10 Ray's temporary and token files -------------------------------------------------------------

RAY_CHECK = """
import json, os, sys
from pathlib import Path
sys.path.insert(0, {tests!r})
from faults import run, tones
import ray
tmp = Path(sys.argv[1])
run([tones(tmp / "data")], tmp / "run", tmp / "cache", engine="ray", ray_actors=1)
temp = Path(ray._private.worker._global_node.get_temp_dir_path()).parent
modes = {{p.name: oct(p.stat().st_mode & 0o777) for p in (temp, temp / "auth_token")}}
print(json.dumps({{"dir": str(temp), "modes": modes, "env": os.environ.get("RAY_AUTH_TOKEN_PATH")}}))
"""


@case("31.10", "a local --engine ray run, HOME without ~/.ray", "no ~/.ray; session and token private; removed", "ray")
def ray_private_files(tmp: Path) -> str:
    home = tmp / "home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")} | {"HOME": str(home)}
    code = RAY_CHECK.format(tests=str(ROOT / "tests" / "reliability"))
    r = subprocess.run([sys.executable, "-c", code, str(tmp)], capture_output=True, text=True, env=env, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    seen = json.loads(r.stdout.strip().splitlines()[-1])
    temp = Path(seen["dir"])
    assert list(seen["modes"].values()) == ["0o700", "0o600"] and seen["env"] is None, seen
    assert not (home / ".ray").exists() and not temp.exists() and len(pd.read_csv(tmp / "run" / "results.csv"))
    return f"session dir 0700 and token 0600 in {temp.parent}/sp-ray-…; removed at exit; no ~/.ray"
