"""Remembered weight digests: when they stand in for hashing, and what breaks their seal."""

from __future__ import annotations

import hashlib
import json
import os
import time

import pytest

from speechprobe import cache
from speechprobe.cache import DIGESTS, FULL_CHECK_SECONDS, check_digests, weights_sha256, write_digests


@pytest.fixture
def hashed(monkeypatch) -> list[int]:
    """Counts the files hashed (``cache._sha256`` calls)."""
    calls = []
    real = cache._sha256
    monkeypatch.setattr(cache, "_sha256", lambda paths: calls.append(len(paths)) or real(paths))
    return calls


def _flip_in_place(path, offset: int) -> None:
    """Flip one byte where it is (same size, same inode) and put the mtime back."""
    st = path.stat()
    with open(path, "r+b") as f:
        f.seek(offset)
        byte = f.read(1)
        f.seek(offset)
        f.write(bytes([byte[0] ^ 0xFF]))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert path.stat().st_mtime_ns == st.st_mtime_ns and path.stat().st_size == st.st_size


def test_the_memo_rule(tmp_path, hashed, monkeypatch):
    parts = [tmp_path / "a.part1", tmp_path / "a.part2"]
    parts[0].write_bytes(b"hello ")
    parts[1].write_bytes(b"world")
    store = tmp_path / "cache"
    expected = hashlib.sha256(b"hello world").hexdigest()
    assert weights_sha256(parts, store) == expected and hashed == [2]
    assert weights_sha256(parts, store) == expected and hashed == [2]  # unchanged stamps, sealed entry: remembered

    sidecar = store / "weights-sha256.json"
    known = json.loads(sidecar.read_text())
    (entry,) = known.values()
    entry["sha256"] = expected[:-1] + ("0" if expected[-1] != "0" else "1")  # one flipped hex digit
    sidecar.write_text(json.dumps(known))
    assert weights_sha256(parts, store) == expected and hashed == [2, 2]  # the seal fails: hashed again

    _flip_in_place(parts[1], 0)  # mtime put back; ctime moves
    assert weights_sha256(parts, store) == hashlib.sha256(b"hello \x88orld").hexdigest() and len(hashed) == 3

    assert weights_sha256(parts, store, full=True) and len(hashed) == 4  # cache verify always hashes
    now = time.time()
    monkeypatch.setattr(cache.time, "time", lambda: now + FULL_CHECK_SECONDS + 1)
    assert weights_sha256(parts, store) and len(hashed) == 5  # a week on: hashed again


def test_a_folder_record_catches_a_changed_file_and_a_changed_record(tmp_path):
    folder = tmp_path / "ckpt"
    folder.mkdir()
    (folder / "model.safetensors").write_bytes(bytes(range(256)) * 64)
    (folder / "config.json").write_text("{}")
    store = tmp_path / "cache"
    files = write_digests(folder, {"packaged": "x"}, store)
    assert sorted(files) == ["config.json", "model.safetensors"] and check_digests(folder, store) is None

    _flip_in_place(folder / "model.safetensors", 4000)
    assert check_digests(folder, store) == "model.safetensors differs from the SHA-256 recorded when it was written"

    write_digests(folder, {"packaged": "x"}, store)
    record = json.loads((folder / DIGESTS).read_text())
    digest = record["files"]["config.json"]
    record["files"]["config.json"] = digest[:5] + ("0" if digest[5] != "0" else "1") + digest[6:]
    (folder / DIGESTS).write_text(json.dumps(record))
    assert check_digests(folder, store).startswith(f"no intact {DIGESTS}")

    write_digests(folder, {"packaged": "x"}, store)
    (folder / "extra.bin").write_bytes(b"x")
    assert check_digests(folder, store) == "its files are not those recorded (extra.bin)"
