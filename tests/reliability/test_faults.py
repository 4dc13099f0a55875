"""Every fault case of issues 14 and 31 (and the CLI items of issue 17), run for real (see faults.py)."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess

import pytest
from faults import CASES, Case


def _can_mount(tmp_path) -> bool:
    probe = tmp_path / "mount-probe"
    probe.mkdir()
    ok = not subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=4k", "tmpfs", str(probe)], capture_output=True
    ).returncode
    if ok:
        subprocess.run(["umount", "-l", str(probe)], capture_output=True)
    return ok


@pytest.mark.parametrize("case", CASES, ids=[f"{c.item}-{c.run.__name__}" for c in CASES])
def test_fault_case(case: Case, tmp_path) -> None:
    if case.needs == "mount" and not _can_mount(tmp_path):
        pytest.skip("needs root to mount a tmpfs (full and read-only disks)")
    if case.needs == "espeak" and shutil.which("espeak-ng") is None:
        pytest.skip("needs espeak-ng")
    if case.needs == "ray" and importlib.util.find_spec("ray") is None:
        pytest.skip("needs ray (pip install 'speechprobe[ray]')")
    observed = case.run(tmp_path)
    assert observed
