"""The lab's commands: the flat options become the settings with their ``train`` group, validated once."""

from __future__ import annotations

from speechprobe.cli.app import main
from speechprobe.lab import ablate as ablate_module
from speechprobe.lab import jobs as jobs_module


def test_pretrain_and_ablate_build_the_train_group_and_refuse_bad_values(tmp_path, monkeypatch, capsys):
    seen = {}

    def fake_jobs(jobs, cache, corpus, progress, engine):
        seen["pretrain"] = jobs, cache, engine
        return iter([tmp_path / "ckpt"])

    def fake_ablate(cfg, cache, progress, existing, engine):
        seen["ablate"] = cfg, cache, existing, engine
        return tmp_path / "report.html"

    monkeypatch.setattr(jobs_module, "run_jobs", fake_jobs)
    monkeypatch.setattr(ablate_module, "ablate", fake_ablate)
    args = ["--steps", "3", "--batch-size", "2", "--cache", str(tmp_path)]
    assert main(["pretrain", "--objective", "masked", "--out", str(tmp_path / "m"), *args]) == 0
    (cfg,), cache, engine = seen["pretrain"]
    assert (cfg.objective, cfg.train.steps, cfg.train.batch_size, cache) == ("masked", 3, 2, tmp_path)
    assert engine == {"engine": "local"}
    ray = ["--engine", "ray", "--address", "auto", "--ray-actors", "4"]
    assert main(["ablate", "--out", str(tmp_path / "a"), "--seeds", "2", "--overwrite", *args, *ray]) == 0
    cfg, cache, existing, engine = seen["ablate"]
    assert (cfg.seeds, cfg.train.steps, cfg.train.batch_size, cache, existing) == (2, 3, 2, tmp_path, "overwrite")
    assert engine == {"engine": "ray", "ray_address": "auto", "ray_actors": 4}
    capsys.readouterr()

    assert main(["pretrain", "--objective", "masked", "--out", str(tmp_path / "m"), "--ray-actors", "2"]) == 2
    assert "--ray-actors" in capsys.readouterr().err  # one job: no actor count to choose

    assert main(["ablate", "--out", str(tmp_path / "b"), "--steps", "0"]) == 2
    assert capsys.readouterr().err.strip() == "error: --steps 0: must be at least 1"
    assert len(seen) == 2
