"""The report shows what a feature-level analysis recorded in analyses/<name>.json, and refuses a stale one."""

from matplotlib.figure import Figure

from speechprobe.analysis import build_report
from speechprobe.analysis.outputs import AnalysisOutput, FigureNote, read_outputs


def _figure(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    Figure(figsize=(2, 2)).savefig(path)


def test_report_shows_captions_and_findings_of_each_analysis(run_dir):
    _figure(run_dir / "figures" / "cues_x.png")
    AnalysisOutput(
        "cues",
        params={"n_folds": 5, "seed": 0},
        figures=[FigureNote("figures/cues_x.png", "A caption for the cue heatmap.", "Acoustic cues")],
        findings=["Acoustic cues in x: F0 mean 0.90 → 0.40."],
        notes=["task y: duration constant"],
    ).write(run_dir)
    build_report(run_dir)
    md = (run_dir / "report.md").read_text()
    assert "A caption for the cue heatmap." in md and "F0 mean 0.90 → 0.40" in md
    assert "cues: task y: duration constant" in md
    assert "Figure cues_x.png found in figures/" not in md  # not an uncaptioned leftover


def test_stale_or_broken_outputs_are_reported_not_shown(run_dir):
    AnalysisOutput("erasure", params={"n_folds": 3, "seed": 0}, findings=["stale finding"]).write(run_dir)
    (run_dir / "analyses" / "broken.json").write_text("{not json")
    outputs, problems = read_outputs(run_dir, {"folds": 5, "seed": 0})
    assert outputs == []
    assert any("erasure.json was computed with n_folds 3 (the run has 5)" in p for p in problems)
    assert any("broken.json could not be read" in p for p in problems)
    build_report(run_dir)
    md = (run_dir / "report.md").read_text()
    assert "stale finding" not in md and "erasure.json was computed with n_folds 3" in md
