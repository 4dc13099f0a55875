import warnings

import numpy as np
import pytest

from gpu import cuda_only
from speechprobe.data.clip import Clip
from speechprobe.features.engine import LocalEngine
from speechprobe.features.extract import extract
from speechprobe.features.store import FeatureStore
from speechprobe.models.base import AdapterInfo, ModelAdapter


class ToyAdapter(ModelAdapter):
    """Two 'layers': mean and RMS of the waveform; can fail on demand."""

    def __init__(self, fail_after: int | None = None, max_items: int | None = None) -> None:
        self.info = AdapterInfo("toy", "toy", "test", "v1", 16000, 2, 1, 100.0, "none")
        self.calls: list[int] = []
        self.failed: list[int] = []  # sizes of the batches that ran out of memory
        self.fail_after, self.max_items = fail_after, max_items

    def forward(self, batch, pooling="mean"):
        if self.max_items and len(batch) > self.max_items:
            self.failed.append(len(batch))
            raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")
        if self.fail_after is not None and len(self.calls) >= self.fail_after:
            raise KeyboardInterrupt  # the process dies mid-run
        self.calls.append(len(batch))
        return np.stack([[[a.mean()], [np.sqrt((a**2).mean())]] for a in batch]).astype(np.float32)


def clips(n=12):
    rng = np.random.default_rng(0)
    return [Clip(f"c{i}", rng.standard_normal(800 + 160 * i).astype(np.float32), 16000, "ab"[i % 2]) for i in range(n)]


def test_interrupted_extraction_resumes_without_recomputing(tmp_path):
    space = FeatureStore(tmp_path / "a").space("toy", "v1", {})
    with pytest.raises(KeyboardInterrupt):
        extract(ToyAdapter(fail_after=2), clips(), space, max_batch_seconds=0.3)
    done = sum(space.has(c.content_hash) for c in clips())
    assert 0 < done < 12
    again = ToyAdapter()
    report = extract(again, clips(), space, max_batch_seconds=0.3)
    assert report.reused == done and report.computed == 12 - done == sum(again.calls)
    fresh = FeatureStore(tmp_path / "b").space("toy", "v1", {})
    extract(ToyAdapter(), clips(), fresh, max_batch_seconds=0.3)
    hashes = [c.content_hash for c in clips()]
    np.testing.assert_array_equal(space.gather(hashes), fresh.gather(hashes))
    assert [m.id for m in report.clips] == [f"c{i}" for i in range(12)]


def test_out_of_memory_halves_the_batch_and_loses_nothing(tmp_path):
    space = FeatureStore(tmp_path).space("toy", "v1", {})
    adapter = ToyAdapter(max_items=2)
    report = extract(adapter, clips(), space, max_batch_seconds=100.0)
    assert report.computed == 12 and max(adapter.calls) <= 2
    assert all(space.has(c.content_hash) for c in clips())


def test_after_out_of_memory_later_batches_are_cut_up_front(tmp_path):
    # Batches by padding: 5 clips (0.12-0.16 s), 3, 3, 1. Only the first two attempts run out of memory.
    adapter = ToyAdapter(max_items=2)
    engine = LocalEngine(adapter)  # the out-of-memory state lives in the engine, not on the adapter
    space = FeatureStore(tmp_path / "a").space("toy", "v1", {})
    extract(engine, clips(), space, max_batch_seconds=100.0)
    assert adapter.failed == [5, 3] and engine.batch_cap == 2 and not hasattr(adapter, "oom_batch_cap")
    assert adapter.calls == [2, 1, 2, 2, 1, 2, 1, 1]  # the later batches of 3 went in as 2 + 1 at once
    reference = FeatureStore(tmp_path / "b").space("toy", "v1", {})
    extract(ToyAdapter(), clips(), reference, max_batch_seconds=100.0)
    hashes = [c.content_hash for c in clips()]
    np.testing.assert_array_equal(space.gather(hashes), reference.gather(hashes))


def test_duplicate_audio_is_computed_once(tmp_path):
    cs = clips(4)
    cs.append(Clip("dup", cs[0].audio.copy(), 16000, "a"))
    adapter = ToyAdapter()
    report = extract(adapter, cs, FeatureStore(tmp_path).space("toy", "v1", {}), max_batch_seconds=100.0)
    assert sum(adapter.calls) == 4 and len(report.clips) == 5


class GpuHungryAdapter(ToyAdapter):
    """Holds 256 MiB of GPU memory per clip during its forward: large batches hit a real CUDA OOM."""

    def forward(self, batch, pooling="mean"):
        import torch

        workspace = torch.empty(len(batch) << 28, dtype=torch.uint8, device="cuda")
        del workspace
        return super().forward(batch, pooling)


@cuda_only
def test_real_cuda_out_of_memory_halves_the_batch_and_loses_nothing(tmp_path):
    import torch

    torch.cuda.empty_cache()
    total = torch.cuda.get_device_properties(0).total_memory
    torch.cuda.set_per_process_memory_fraction(min(1.0, (600 << 20) / total))  # room for 2 clips, not 3
    try:
        space = FeatureStore(tmp_path).space("toy", "v1", {})
        adapter = GpuHungryAdapter()
        report = extract(adapter, clips(), space, max_batch_seconds=100.0)
    finally:
        torch.cuda.set_per_process_memory_fraction(1.0)
    assert report.computed == 12 and max(adapter.calls) <= 2 and sum(adapter.calls) == 12
    hashes = [c.content_hash for c in clips()]
    reference = FeatureStore(tmp_path / "ref").space("toy", "v1", {})
    extract(ToyAdapter(), clips(), reference, max_batch_seconds=100.0)
    np.testing.assert_array_equal(space.gather(hashes), reference.gather(hashes))


class SourceOf:
    """A source that decodes in worker threads (warning like a library decoder), lists its rows and skips two."""

    def __init__(self, items: list[Clip]) -> None:
        self.items, self.skipped = items, []

    def __len__(self) -> int:
        return len(self.items) + 2

    def __iter__(self):
        from speechprobe.parallel import ordered_map

        def decode(clip: Clip) -> Clip:
            warnings.warn("decoder fell back", UserWarning, stacklevel=1)
            return clip

        self.skipped[:] = ["row 1: unreadable", "row 2: unreadable"]
        yield from ordered_map(decode, self.items, workers=2)


class FactsAdapter(ToyAdapter):
    """Records the facts each batch arrives with, and warns once per batch."""

    def __init__(self) -> None:
        super().__init__()
        self.facts: dict[int, dict] = {}

    def forward_clips(self, batch, facts, pooling="mean"):
        warnings.warn("model warns per batch", RuntimeWarning, stacklevel=1)
        for audio, f in zip(batch, facts):
            self.facts[len(audio)] = dict(f)
        return self.forward(batch, pooling)


def test_every_batch_gets_its_clips_facts_and_warnings_are_counted(tmp_path, monkeypatch):
    from speechprobe.features import extract as driver

    bars = []

    class Bar:
        def __init__(self, total=None, disable=False, **kw):
            self.total, self.n = total, 0
            bars.append(self)

        def update(self, k):
            self.n += k

        def close(self):
            pass

    monkeypatch.setattr(driver, "tqdm", Bar)
    cs = clips(6)
    native = {"sample_rate": 44100, "channels": 2, "clipped_fraction": 0.25, "dc_offset": -0.01}
    cs[0].meta["native"] = dict(native, extra="ignored")
    cs[1].audio *= 0.1
    cs[1].audio[:10] = 1.0  # 10 clipped samples
    adapter = FactsAdapter()
    space = FeatureStore(tmp_path).space("toy", "v1", {})
    with warnings.catch_warnings(record=True) as shown:
        warnings.simplefilter("default")
        report = extract(adapter, SourceOf(cs), space, max_batch_seconds=0.3, progress=True)
    assert adapter.facts[len(cs[0].audio)] == native
    assert adapter.facts[len(cs[1].audio)] == {
        "sample_rate": 16000,
        "channels": 1,
        "clipped_fraction": 10 / len(cs[1].audio),
        "dc_offset": pytest.approx(float(cs[1].audio.mean()), abs=1e-7),
    }
    batches = len(adapter.calls)
    assert batches > 1
    assert report.warnings == {"UserWarning: decoder fell back": 6, "RuntimeWarning: model warns per batch": batches}
    assert sorted(str(w.message) for w in shown) == ["decoder fell back", "model warns per batch"]  # once each
    assert (bars[0].total, bars[0].n) == (8, 8)  # "8/8 clips": 6 extracted + 2 the source skipped
