"""The lab's commands: the flat options become the settings with their ``train`` group, validated once."""

from __future__ import annotations

from speechprobe.cli.app import main
from speechprobe.lab import ablate as ablate_module
from speechprobe.lab import train as train_module


def test_pretrain_and_ablate_build_the_train_group_and_refuse_bad_values(tmp_path, monkeypatch, capsys):
    seen = {}

    def fake_pretrain(cfg, cache, progress):
        seen["pretrain"] = cfg, cache
        return tmp_path / "ckpt"

    def fake_ablate(cfg, cache, progress, existing):
        seen["ablate"] = cfg, cache, existing
        return tmp_path / "report.html"

    monkeypatch.setattr(train_module, "pretrain", fake_pretrain)
    monkeypatch.setattr(ablate_module, "ablate", fake_ablate)
    args = ["--steps", "3", "--batch-size", "2", "--cache", str(tmp_path)]
    assert main(["pretrain", "--objective", "masked", "--out", str(tmp_path / "m"), *args]) == 0
    cfg, cache = seen["pretrain"]
    assert (cfg.objective, cfg.train.steps, cfg.train.batch_size, cache) == ("masked", 3, 2, tmp_path)
    assert main(["ablate", "--out", str(tmp_path / "a"), "--seeds", "2", "--overwrite", *args]) == 0
    cfg, cache, existing = seen["ablate"]
    assert (cfg.seeds, cfg.train.steps, cfg.train.batch_size, cache, existing) == (2, 3, 2, tmp_path, "overwrite")
    capsys.readouterr()

    assert main(["ablate", "--out", str(tmp_path / "b"), "--steps", "0"]) == 2
    assert capsys.readouterr().err.strip() == "error: --steps 0: must be at least 1"
    assert len(seen) == 2
