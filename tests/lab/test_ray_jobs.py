"""Pre-training jobs as Ray actor calls (``--engine ray``): the weights and loss curves of the local path under the
same seeds, each job resuming from its own checkpoint folder."""

from __future__ import annotations

import pandas as pd
import pytest
import torch

pytest.importorskip("ray")

from speechprobe.lab import checkpoint as ck
from speechprobe.lab import train as train_module
from speechprobe.lab.jobs import run_jobs

from .micro import cut_off, settings, weights

pytestmark = pytest.mark.slow  # Ray's start-up and one actor's imports


def test_ray_jobs_give_the_local_weights_and_resume_their_own_checkpoints(
    ray_session, arch, corpus, tmp_path, monkeypatch
):
    def jobs(root):
        return [settings(arch, root / objective, objective) for objective in ("contrastive", "random")]

    local = list(run_jobs(jobs(tmp_path / "local"), tmp_path, corpus, progress=False))

    # the contrastive job on Ray was cut off after its checkpoint at step 2: its actor must resume it
    cut_off(jobs(tmp_path / "ray")[0], corpus, 2, monkeypatch)
    before = ck.load_state(tmp_path / "ray" / "contrastive")["rows"]

    monkeypatch.setattr(train_module, "pretrain", None)  # from here on, no job may train in this process
    engine = {"engine": "ray", "ray_actors": 1}
    on_ray = sorted(run_jobs(jobs(tmp_path / "ray"), tmp_path, corpus, progress=False, engine=engine))
    assert [p.name for p in on_ray] == ["contrastive", "random"]
    for here, there in zip(local, on_ray):
        mine, theirs = weights(here), weights(there)
        assert mine.keys() == theirs.keys() and all(torch.equal(mine[k], theirs[k]) for k in mine)
        curve = pd.read_csv(there / ck.LOSS_CSV)
        pd.testing.assert_frame_equal(curve[["step", "loss"]], pd.read_csv(here / ck.LOSS_CSV)[["step", "loss"]])
        assert ck.read_lab(there)["status"] == "done" and not (there / ck.STATE).exists()
    resumed = pd.read_csv(on_ray[0] / ck.LOSS_CSV)  # the first two rows come from the saved state, timings and all
    assert resumed["seconds"].iloc[:2].tolist() == pytest.approx([r["seconds"] for r in before], rel=1e-12)
