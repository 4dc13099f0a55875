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


# Cases over ~2 s each on 2 cores (measured with --durations): the inner loop (-m "not slow") leaves them out.
SLOW = {
    *("14.12-options_validated", "14.2-refused_cli", "14.5-reproduce_different", "14.6-full_disk_cache"),
    *("17.8-global_flags", "31.1-flipped_checkpoint", "31.1-packaged_pin_mismatch", "31.1-truncated_checkpoint"),
    *("31.1-truncated_user_checkpoint", "31.1-verify_weights_case", "31.2-racing_runs", "31.3-swapped_items"),
    *("31.4-swapped_synthetic_labels", "31.5-reproduce_cache", "31.5-reproduce_elsewhere"),
    *("31.5-reproduce_names_inputs", "31.5-reproduce_no_results", "31.5-reproduce_wrong_type", "31.7-doctor_budget"),
}


def _param(c: Case):
    name = f"{c.item}-{c.run.__name__}"
    return pytest.param(c, id=name, marks=[pytest.mark.slow] if name in SLOW else [])


@pytest.mark.parametrize("case", [_param(c) for c in CASES])
def test_fault_case(case: Case, tmp_path) -> None:
    if case.needs == "mount" and not _can_mount(tmp_path):
        pytest.skip("needs root to mount a tmpfs (full and read-only disks)")
    if case.needs == "espeak" and shutil.which("espeak-ng") is None:
        pytest.skip("needs espeak-ng")
    if case.needs == "ray" and importlib.util.find_spec("ray") is None:
        pytest.skip("needs ray (pip install 'speechprobe[ray]')")
    observed = case.run(tmp_path)
    assert observed
