"""speechprobe doctor: it runs, times what it can within its limit and recommends (no timing asserted)."""

from __future__ import annotations

from speechprobe.doctor import diagnose


def test_doctor_measures_and_recommends(tiny_whisper):
    seen = []
    diag = diagnose(
        str(tiny_whisper), window="trimmed", budgets=(4.0, 8.0), time_limit=30.0, rounds=1, progress=seen.append
    )
    assert diag.facts["cores available"].isdigit() and "load average (1 min)" in diag.facts
    timed = {(m.dtype, m.budget) for m in diag.measurements}
    assert ("float32", 4.0) in timed
    assert all(m.realtime > 0 and m.clips_per_batch >= 1 for m in diag.measurements)
    assert diag.recommendations[0].startswith("recommended: speechprobe run ...")
    assert diag.dtype in ("float32", "bf16")
    assert any(s.startswith("timing float32") for s in seen)
