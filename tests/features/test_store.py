import os

import numpy as np
import pytest

from speechprobe.errors import SpeechprobeError
from speechprobe.features.store import FeatureStore, put_many, space_key


def test_space_key_depends_on_every_part():
    base = space_key("m", "w1", {"window": "full", "pooling": "mean"})
    assert base == space_key("m", "w1", {"pooling": "mean", "window": "full"})
    assert base != space_key("m", "w2", {"window": "full", "pooling": "mean"})
    assert base != space_key("m", "w1", {"window": "trimmed", "pooling": "mean"})
    assert base != space_key("m2", "w1", {"window": "full", "pooling": "mean"})


def test_put_get_gather_roundtrip(tmp_path):
    space = FeatureStore(tmp_path).space("m", "w", {"pooling": "mean"})
    a, b = np.arange(6, dtype=np.float32).reshape(3, 2), -np.ones((3, 2), np.float32)
    space.put("aa11", a)
    space.put("bb22", b)
    assert space.has("aa11") and not space.has("cc33")
    np.testing.assert_array_equal(space.get("aa11"), a)
    g = space.gather(["bb22", "aa11"])
    assert g.shape == (2, 3, 2)
    np.testing.assert_array_equal(g[1], a)
    np.testing.assert_array_equal(space.gather(["aa11"], layers=[2])[0, 0], a[2])
    assert not [p for p in (tmp_path).rglob(".tmp-*")]


def test_write_failure_is_clear_and_keeps_earlier_items(tmp_path, monkeypatch):
    space = FeatureStore(tmp_path).space("m", "w", {})
    space.put("aa11", np.ones((1, 2), np.float32))

    def full_disk(*a, **k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", full_disk)
    with pytest.raises(SpeechprobeError, match="No space left"):
        space.put("bb22", np.ones((1, 2), np.float32))
    monkeypatch.undo()
    assert not space.has("bb22")
    np.testing.assert_array_equal(space.get("aa11"), np.ones((1, 2)))
    assert not [p for p in tmp_path.rglob(".tmp-*")]


def test_batched_puts_over_spaces_equal_single_ones_and_fail_cleanly(tmp_path, monkeypatch):
    store = FeatureStore(tmp_path)
    one, two = store.space("m", "w", {"pooling": "mean"}), store.space("m", "w", {"pooling": "max"})
    a, b = np.ones((2, 3), np.float32), np.arange(6, dtype=np.float32).reshape(2, 3)
    put_many([(one, "aa11", a), (two, "aa11", b), (one, "bb22", b)])
    single = FeatureStore(tmp_path / "single").space("m", "w", {"pooling": "mean"})
    single.put("aa11", a)
    assert one.item_path("aa11").read_bytes()[:-8] == single.item_path("aa11").read_bytes()[:-8]  # but the key
    np.testing.assert_array_equal(two.get("aa11"), b)
    np.testing.assert_array_equal(one.get("bb22"), b)

    def full_disk(*a, **k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", full_disk)
    with pytest.raises(SpeechprobeError, match="No space left") as err:
        put_many([(one, "cc33", a), (two, "aa11", a)])
    monkeypatch.undo()
    assert "\n" not in str(err.value) and not one.has("cc33")
    np.testing.assert_array_equal(two.get("aa11"), b)  # the stored item is kept as it was
    assert not [p for p in tmp_path.rglob(".*tmp-*")]


def test_gather_to_a_memory_mapped_file_equals_in_memory(tmp_path):
    space = FeatureStore(tmp_path / "s").space("m", "w", {})
    rng = np.random.default_rng(0)
    for i in range(5):
        space.put(f"{i:02d}ff", rng.standard_normal((3, 4)).astype(np.float32))
    hashes = [f"{i:02d}ff" for i in (4, 0, 2)]
    mapped = space.gather(hashes, out=tmp_path / "g" / "f.npy")
    assert isinstance(mapped, np.memmap) and not mapped.flags.writeable
    np.testing.assert_array_equal(mapped, space.gather(hashes))


def test_swapped_or_misplaced_items_fail_their_check(tmp_path):
    """The checksum covers the key (space id, clip hash): a valid item under another key is caught."""
    store = FeatureStore(tmp_path)
    space = store.space("m", "w", {})
    other = store.space("m", "w2", {})
    space.put("aa11", np.zeros((2, 3), np.float32))
    space.put("bb22", np.ones((2, 3), np.float32))
    other.put("aa11", np.full((2, 3), 7, np.float32))
    a, b = space.item_path("aa11"), space.item_path("bb22")
    data_a, data_b = a.read_bytes(), b.read_bytes()
    a.write_bytes(data_b)
    b.write_bytes(data_a)
    rep = store.verify()
    assert rep.corrupt == [a, b] and rep.items == 3
    other.item_path("aa11").write_bytes(data_a)  # another space's item at the same clip hash
    assert store.verify().corrupt == [other.item_path("aa11"), a, b]
    assert not space.has("aa11") and space.repaired == {"checksum": 1} and not a.exists()
    with pytest.raises(SpeechprobeError, match="checksum mismatch"):
        space.get("bb22")


def test_items_of_the_older_format_are_recomputed(tmp_path):
    """SPX3 items (checksum of the bytes alone) cannot show their key: found, removed, recomputed."""
    import io

    import xxhash

    space = FeatureStore(tmp_path).space("m", "w", {})
    buf = io.BytesIO()
    np.save(buf, np.ones((2, 3), np.float32))
    body = buf.getvalue()
    space.item_path("cc33").parent.mkdir(parents=True)
    space.item_path("cc33").write_bytes(body + b"SPX3" + xxhash.xxh3_64_digest(body))
    assert FeatureStore(tmp_path).verify().unverified == [space.item_path("cc33")]
    assert not space.has("cc33") and space.repaired == {"unverified": 1}
