"""Fault cases: disks, temp files, hostile input, options, outputs and the CLI (issue 14 items 6-15, issue 17);
registered in faults.CASES."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import soundfile as sf
from faults import ROOT, SR, case, cli, items, manifest, one_line, run, tone, tones, write_manifest

# -- faults that must give a clear message and lose nothing -------------------------------------------


def mount_tmpfs(path: Path, size: str) -> None:
    path.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], check=True, capture_output=True)


def umount(path: Path) -> None:
    subprocess.run(["umount", "-l", str(path)], capture_output=True)


@case("14.6", "disk full while probing writes its feature stack", "one-line error naming the directory", "mount")
def full_disk_gather(tmp: Path) -> str:
    from speechprobe.errors import SpeechprobeError
    from speechprobe.features.store import FeatureStore

    space = FeatureStore(tmp / "cache").space("m", "w", {})
    hashes = [f"{i:04x}" + "0" * 60 for i in range(200)]
    for h in hashes:
        space.put(h, np.ones((1, 120), np.float32))
    mount_tmpfs(tmp / "full", "64k")
    try:
        space.gather(hashes, out=tmp / "full" / "features.npy")
        raise AssertionError("no error")
    except SpeechprobeError as e:
        message = str(e)
    finally:
        umount(tmp / "full")
    assert str(tmp / "full") in message and "No space left on device" in message and "\n" not in message
    return message


@case("14.6", "a 64 KiB cache filesystem fills up (CLI)", "exit 2, one line; stored items stay valid", "mount")
def full_disk_cache(tmp: Path) -> str:
    from speechprobe.features.store import FeatureStore

    a = tones(tmp / "data", n_per_class=40)
    mount_tmpfs(tmp / "cache", "64k")
    try:
        args = ["run", "--tasks", str(a), "--out", str(tmp / "run"), "--baselines-only", "--folds", "2"]
        args += ["--baselines", "mfcc", "--probes", "knn", "--permutations", "0", "--no-report", "--no-progress"]
        r = cli(*args, cache=tmp / "cache")
        line = one_line(r)
        rep = FeatureStore(tmp / "cache" / "features").verify()
    finally:
        umount(tmp / "cache")
    assert r.returncode == 2 and "No space left on device" in line and rep.ok and rep.items > 0
    return f"exit 2: {line[:70]}...; {rep.items} stored items verify clean"


@case("14.7", "a truncated feature item", "detected on read, recomputed, counted")
def truncated_item(tmp: Path) -> str:
    a = tones(tmp / "data")
    clean = run([a], tmp / "clean", tmp / "cache")
    item = items(tmp / "cache")[0]
    item.write_bytes(item.read_bytes()[:150])
    again = run([a], tmp / "again", tmp / "cache")
    by_model = manifest(tmp / "again")["store"]["by_model"]
    assert by_model == {"mfcc": {"truncated": 1}} and again.equals(clean)
    return f"{by_model}; results equal the clean run's"


@case("14.8", "a read-only cache that holds every feature", "the run works and matches", "mount")
def read_only_cache(tmp: Path) -> str:
    a = tones(tmp / "data")
    mount_tmpfs(tmp / "cache", "16m")
    try:
        clean = run([a], tmp / "clean", tmp / "cache")
        subprocess.run(["mount", "-o", "remount,ro", str(tmp / "cache")], check=True)
        again = run([a], tmp / "again", tmp / "cache")
    finally:
        umount(tmp / "cache")
    assert again.equals(clean)
    return f"{len(again)} rows, identical; probing temporaries in the run directory"


@case("14.9", "temp leftovers of a crash (store and run dir)", "verify finds and removes them; a rerun cleans RUN")
def temp_leftovers(tmp: Path) -> str:
    from speechprobe.features.store import FeatureStore
    from speechprobe.rundir import RunDir

    space = FeatureStore(tmp / "features").space("m", "w", {})
    space.put("aa" + "0" * 62, np.ones((1, 4), np.float32))
    old = tmp / "features" / "tmpk2j3h4" / "features.npy"  # probing scratch of speechprobe 0.1
    old.parent.mkdir()
    old.write_bytes(b"x" * 100)
    torn_write = space.item_path("aa" + "0" * 62).with_name(".aa.npy.tmp-123-abcd")
    torn_write.write_bytes(b"partial")
    rep = FeatureStore(tmp / "features").verify(repair=True)
    assert rep.orphans == [old.parent, torn_write] and not old.exists() and not torn_write.exists()
    run_dir = RunDir(tmp / "run")
    run_dir.create()
    (tmp / "run" / ".probe.tmp-abc").mkdir()
    run_dir.claim("probe", {"x": 1})
    assert not (tmp / "run" / ".probe.tmp-abc").exists()
    return f"{len(rep.orphans)} store leftovers removed; run-dir temp removed on claim"


SPARSE_CHECK = """
import re, sys, time
from speechprobe.data.audio import read
t0 = time.perf_counter()
d = read(sys.argv[1])
peak = int(re.search(r"VmHWM:\\s+(\\d+)", open("/proc/self/status").read()).group(1)) // 1024  # this process only
print(len(d.audio), d.cut, round(d.seconds), round(time.perf_counter() - t0, 2), peak)
"""


@case("14.10", "an 18.6 h (sparse) WAV", "decodes 600 s, memory bounded (< 600 MB peak)")
def sparse_wav(tmp: Path) -> str:
    path = tmp / "long.wav"
    frames = int(18.6 * 3600 * SR)
    with sf.SoundFile(path, "w", samplerate=SR, channels=1, subtype="PCM_16") as f:
        f.write(np.zeros(SR, np.int16))
    with open(path, "r+b") as f:  # make the header claim 18.6 h, and the file that long (sparse)
        f.seek(4)
        f.write((36 + 2 * frames).to_bytes(4, "little"))
        f.seek(40)
        f.write((2 * frames).to_bytes(4, "little"))
        f.truncate(44 + 2 * frames)
    r = subprocess.run([sys.executable, "-c", SPARSE_CHECK, str(path)], capture_output=True, text=True, timeout=300)
    n, cut, seconds, wall, rss_mb = r.stdout.split()
    assert r.returncode == 0 and int(n) == 600 * SR and cut == "True" and int(rss_mb) < 600, r.stderr
    return f"{int(n) // SR} s decoded of {int(seconds) / 3600:.1f} h, cut noted; peak RSS {rss_mb} MB, {wall} s"


@case("14.11", "a 0.1 ms clip among normal ones", "skipped: too_short, counted; the rest processed")
def too_short(tmp: Path) -> str:
    (tmp / "data").mkdir(parents=True)
    sf.write(tmp / "data" / "tiny.wav", tone(0.0001), SR)
    a = tones(tmp / "data", rows=[("tiny.wav", "low", "spk0")])
    run([a], tmp / "run", tmp / "cache")
    m = manifest(tmp / "run")
    assert m["skipped"]["by_kind"] == {"too_short": 1} and m["tasks"]["tones"]["n_clips"] == 16
    return f"skipped {m['skipped']['by_kind']}: {m['skipped']['items'][0]['reason']}"


@case("14.11", "a WAV whose header claims twice the data it holds", "used with a counted short_data note")
def short_data(tmp: Path) -> str:
    (tmp / "data").mkdir(parents=True)
    sf.write(tmp / "data" / "cut.wav", tone(0.6), SR, subtype="PCM_16")
    raw = (tmp / "data" / "cut.wav").read_bytes()
    (tmp / "data" / "cut.wav").write_bytes(raw[: 44 + (len(raw) - 44) // 2])
    a = tones(tmp / "data", rows=[("cut.wav", "high", "spk2")])
    run([a], tmp / "run", tmp / "cache")
    notes = manifest(tmp / "run")["audio_notes"]
    assert notes["by_kind"] == {"short_data": 1} and manifest(tmp / "run")["tasks"]["tones"]["n_clips"] == 17
    return f"{notes['by_kind']}: {notes['items'][0]['reason']}"


@case("14.12", "--seed -1, --jobs 0, --device cuda (no GPU), --max-batch-seconds nan", "exit 2 each, one line, no work")
def options_validated(tmp: Path) -> str:
    bad = {"--seed": "-1", "--jobs": "0", "--device": "cuda", "--max-batch-seconds": "nan"}
    procs = {}
    for flag, value in bad.items():
        out = tmp / flag.strip("-")
        procs[flag] = (out, _popen("run", "--baselines-only", "--tasks", "accent", "--out", str(out), flag, value))
    seen = []
    for flag, (out, p) in procs.items():
        _, err = p.communicate(timeout=300)
        r = subprocess.CompletedProcess(p.args, p.returncode, "", err)
        line = one_line(r)
        assert r.returncode == 2 and flag in line and not out.exists(), line
        seen.append(line.removeprefix("error: ")[:40])
    return "; ".join(seen)


def _popen(*args: str) -> subprocess.Popen:
    code = "import sys; from speechprobe.cli import main; sys.exit(main())"
    return subprocess.Popen(
        [sys.executable, "-c", code, *args], stderr=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )


@case("14.13", "a task named price$x$ with labels *a* and [b](c)", "figures drawn; report.md escapes names")
def dollar_and_markdown(tmp: Path) -> str:
    from speechprobe.report import build_report

    a = tones(tmp / "data")
    odd = tmp / "data" / "price$x$.csv"
    table = pd.read_csv(a)
    table["label"] = table["label"].map({"low": "*a*", "high": "[b](c)"})
    table.to_csv(odd, index=False)
    run([odd], tmp / "run", tmp / "cache")
    build_report(tmp / "run")
    md = (tmp / "run" / "report.md").read_text()
    figures = manifest(tmp / "run")["figures"]
    assert figures and all((tmp / "run" / f).stat().st_size > 1000 for f in figures)
    assert r"price\$x\$" in md and "price$x$" not in md.replace(r"\$", "")
    return f"{len(figures)} figure(s); report.md has price\\$x\\$"


@case("14.13", "a run under umask 027", "every output file is 0640")
def file_modes(tmp: Path) -> str:
    a = tones(tmp / "data")
    old = os.umask(0o027)
    try:
        run([a], tmp / "run", tmp / "cache")
    finally:
        os.umask(old)
    modes = {oct(p.stat().st_mode & 0o777) for p in (tmp / "run").rglob("*") if p.is_file()}
    modes |= {oct(p.stat().st_mode & 0o777) for p in items(tmp / "cache")}
    assert modes == {"0o640"}, modes
    return f"modes {sorted(modes)}"


@case("14.14", "--cache DIR with a packaged Whisper", "the converted checkpoint goes under DIR")
def cache_holds_checkpoints(tmp: Path) -> str:
    from unittest import mock

    from speechprobe.cache import using_cache
    from speechprobe.models import packaged, registry

    def fake_convert(files, target):  # the conversion itself is tested in tests/models
        target.mkdir(parents=True)
        return target

    with (
        mock.patch.object(packaged, "convert_whisper", fake_convert),
        mock.patch.object(registry, "hf_cached", lambda *a: None),  # no HF-cache copy takes precedence
    ):
        with using_cache(tmp / "mine"):
            _, source = registry.resolve_model("whisper-tiny.en")
    assert Path(source).is_relative_to(tmp / "mine" / "checkpoints")
    return f"checkpoint at {Path(source).relative_to(tmp)}"


@case("14.15", "the test suite's cache", "a temporary folder, never the user's cache")
def test_cache_isolated(tmp: Path) -> str:
    code = (
        "import sys; sys.path.insert(0, 'tests'); import conftest; "
        "from speechprobe.cache import cache_root; print(cache_root())"
    )
    env = {k: v for k, v in os.environ.items() if k != "SPEECHPROBE_CACHE"}
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, env=env, timeout=300)
    from platformdirs import user_cache_dir

    root = Path(r.stdout.strip())
    assert r.returncode == 0 and "speechprobe-test-cache-" in root.name and not root.is_relative_to(user_cache_dir())
    return f"cache_root() = {root.parent.name}/{root.name[:23]}..."


# -- the command line (issue 17) ----------------------------------------------------------------------


@case("17.8", "--debug and --no-progress after the command; --version", "accepted everywhere; prints the version")
def global_flags(tmp: Path) -> str:
    a = cli("tasks", "--no-progress", "--debug")
    b = cli("cache", "verify", "--check-only", "--debug", "--cache", str(tmp / "empty"))
    v = cli("--version")
    assert a.returncode == 0 and b.returncode == 0 and v.returncode == 0 and v.stdout.startswith("speechprobe ")
    return f"exit {a.returncode}/{b.returncode}; {v.stdout.strip()}"


@case("17.8", "a run whose second task fails after extraction", "an error; no clips/*.csv written")
def no_half_written_clips(tmp: Path) -> str:
    from speechprobe.errors import ConfigError

    good = tones(tmp / "data")
    sf.write(tmp / "data" / "tiny.wav", tone(0.0001), SR)
    rows = [("tiny.wav", label, f"g{i}") for label in "ab" for i in range(2)]  # passes the class check, all too short
    bad = write_manifest(tmp / "data" / "bad.csv", rows)
    try:
        run([good, bad], tmp / "run", tmp / "cache")
        raise AssertionError("no error")
    except ConfigError as e:
        message = str(e)
    assert "task bad: no usable clips" in message and not (tmp / "run" / "clips").exists()
    return f"{message}; clips/ absent"


@case("17.8", "--folds 3 with 2 speakers", "the message names --folds, not n_folds")
def real_flag_names(tmp: Path) -> str:
    from speechprobe.errors import ConfigError

    a = tones(tmp / "data", groups=2)
    try:
        run([a], tmp / "run", tmp / "cache", folds=3)
        raise AssertionError("no error")
    except ConfigError as e:
        message = str(e)
    assert "--folds 3" in message and "n_folds" not in message
    return message[:100]


@case("17.7", "a library warning during extraction", "shown once, counted in manifest.json")
def warnings_counted(tmp: Path) -> str:
    import warnings

    from speechprobe.models import handcrafted

    original = handcrafted.HandcraftedAdapter.forward

    def noisy(self, batch, pooling="mean"):
        warnings.warn("a library says something", UserWarning, stacklevel=1)
        return original(self, batch, pooling)

    from unittest import mock

    a = tones(tmp / "data")
    with mock.patch.object(handcrafted.HandcraftedAdapter, "forward", noisy):
        run([a], tmp / "run", tmp / "cache")
    caught = manifest(tmp / "run")["library_warnings"]["extract"]
    assert caught["count"] >= 1 and caught["kinds"][0]["message"] == "a library says something"
    return f"{caught['count']} captured: {caught['kinds'][0]['category']}: {caught['kinds'][0]['message']}"
