"""The adapters the attention analyses replay: kept per process within a byte budget."""

from collections import OrderedDict

import torch

import speechprobe.analysis.replay as replay


class FakeAdapter:
    def __init__(self, n: int) -> None:
        self.net = torch.nn.Linear(n, 1, bias=False)  # n float32 weights


def test_the_kept_adapters_alternate_without_reloading_and_stay_within_their_budget(monkeypatch):
    loads = []

    def load_model(name, **kwargs):
        loads.append(name)
        return FakeAdapter({"a": 1000, "b": 1000, "big": 10_000}[name])

    monkeypatch.setattr("speechprobe.models.registry.load_model", load_model)
    monkeypatch.setattr(replay, "KEEP_BYTES", 20_000)  # a and b (4 kB each) fit together; big (40 kB) only alone
    monkeypatch.setattr(replay, "_KEPT", OrderedDict())
    got = [replay._load(name, "trimmed", "cpu", None, False, 0) for name in ["a", "b", "a", "b"]]
    assert loads == ["a", "b"] and got[0] is got[2] and got[1] is got[3]  # a worker alternating models
    assert replay._weight_bytes(got[0]) == 4000
    replay._load("big", "trimmed", "cpu", None, False, 0)
    assert [k[0] for k in replay._KEPT] == ["big"]  # over the budget alone: kept, the others dropped
    replay._load("a", "trimmed", "cpu", None, False, 0)
    assert loads == ["a", "b", "big", "a"] and [k[0] for k in replay._KEPT] == ["a"]
    replay._load("a", "trimmed", "cpu", None, True, 0)  # its random twin is another adapter
    assert loads[-1] == "a" and len(replay._KEPT) == 2
