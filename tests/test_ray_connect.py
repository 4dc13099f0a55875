"""Connecting to a Ray cluster with token authentication: which token is sent, and one-line errors.

No cluster is started here (tests/features/test_ray_cluster.py runs a real one); Ray's GCS client
and ``ray.init`` are replaced where a cluster would answer.
"""

from __future__ import annotations

import os
import socket

import pytest

ray = pytest.importorskip("ray")

from speechprobe import ray_connect
from speechprobe.errors import SpeechprobeError


@pytest.fixture
def home(tmp_path, monkeypatch):
    """A user with no Ray token anywhere, and this process's Ray left alone."""
    monkeypatch.setenv("HOME", str(tmp_path))
    for var in ("RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH", "RAY_AUTH_MODE", "RAY_ADDRESS"):
        monkeypatch.setenv(var, "")  # recorded, so whatever the test sets is undone afterwards
        monkeypatch.delenv(var)
    monkeypatch.setattr(ray, "is_initialized", lambda: False)

    class Config:  # Ray's cached config stays as it is (other tests' Ray instances use it); calls are kept
        calls: list[str] = []

        @staticmethod
        def initialize(text: str) -> None:
            Config.calls.append(text)

    monkeypatch.setattr(ray._raylet, "Config", Config)
    return tmp_path


def _token_file(path, text="abc123"):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_the_token_is_found_where_ray_looks_in_rays_order(home, monkeypatch):
    assert ray_connect.token_source() is None
    default = _token_file(home / ".ray" / "auth_token")
    assert ray_connect.token_source() == str(default)
    other = _token_file(home / "elsewhere" / "token")
    monkeypatch.setenv("RAY_AUTH_TOKEN_PATH", str(other))
    assert ray_connect.token_source() == f"RAY_AUTH_TOKEN_PATH={other}"
    monkeypatch.setenv("RAY_AUTH_TOKEN", "from-the-environment")
    assert ray_connect.token_source() == "RAY_AUTH_TOKEN"


def test_a_token_path_without_a_token_is_one_line_before_ray_can_abort(home, monkeypatch):
    monkeypatch.setenv("RAY_AUTH_TOKEN_PATH", str(home / "missing"))
    with pytest.raises(SpeechprobeError, match=r"^RAY_AUTH_TOKEN_PATH=.*missing: no token there .*RAY_AUTH_TOKEN"):
        ray_connect.token_source()
    _token_file(home / "missing", "  \n")  # empty
    with pytest.raises(SpeechprobeError, match="no token there"):
        ray_connect.token_source()


def test_token_mode_is_turned_on_only_when_a_token_exists(home, monkeypatch):
    import os

    assert ray_connect.prepare_auth() is None and "RAY_AUTH_MODE" not in os.environ
    _token_file(home / ".ray" / "auth_token")
    assert ray._raylet.Config.calls == []
    assert ray_connect.prepare_auth() == str(home / ".ray" / "auth_token")
    assert os.environ["RAY_AUTH_MODE"] == "token" and ray._raylet.Config.calls == [""]  # Ray re-reads it
    monkeypatch.setenv("RAY_AUTH_MODE", "token")
    (home / ".ray" / "auth_token").unlink()
    with pytest.raises(SpeechprobeError, match="^RAY_AUTH_MODE=token, but this machine has no Ray auth token: set"):
        ray_connect.prepare_auth()


def _listening(monkeypatch):
    monkeypatch.setattr(ray_connect.socket, "create_connection", lambda *a, **k: socket.socket())
    monkeypatch.setattr(ray, "init", lambda *a, **k: pytest.fail("ray.init reached after a refused token"))


def _refusing_gcs(monkeypatch):
    class GcsClient:
        def __init__(self, address):
            raise ray.exceptions.AuthenticationError("RPC error: InvalidAuthToken: Authentication token is missing")

    monkeypatch.setattr(ray._raylet, "GcsClient", GcsClient)


def test_a_refused_token_file_is_named_with_the_fix(home, monkeypatch):
    _listening(monkeypatch)
    _refusing_gcs(monkeypatch)
    monkeypatch.setenv("RAY_AUTH_MODE", "token")  # as prepare_auth would set it (without touching Ray's config)
    stale = _token_file(home / ".ray" / "auth_token", "left-by-an-earlier-instance")
    with pytest.raises(SpeechprobeError) as err:
        ray_connect.connect("10.1.2.3:6390", timeout_s=5)
    msg = str(err.value)
    assert msg.startswith("cannot connect to the Ray cluster at 10.1.2.3:6390 (InvalidAuthToken): it rejected")
    assert str(stale) in msg and "RAY_AUTH_TOKEN" in msg and "`ray get-auth-token`" in msg and "\n" not in msg


def test_no_token_and_disabled_mode_say_so(home, monkeypatch):
    _listening(monkeypatch)
    _refusing_gcs(monkeypatch)
    with pytest.raises(SpeechprobeError, match=r"\(InvalidAuthToken\): it requires a Ray auth token and this machine"):
        ray_connect.connect("10.1.2.3:6390", timeout_s=5)
    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")
    with pytest.raises(SpeechprobeError, match="RAY_AUTH_MODE=disabled here sends none: unset RAY_AUTH_MODE"):
        ray_connect.connect("10.1.2.3:6390", timeout_s=5)


def test_an_auth_failure_inside_ray_init_is_mapped_too(home, monkeypatch):
    """Where the pre-check cannot ask (it failed otherwise), Ray's own refusal still gets the clear line."""
    monkeypatch.setattr(ray_connect.socket, "create_connection", lambda *a, **k: socket.socket())
    monkeypatch.setattr(ray_connect, "_check_auth", lambda *a: None)

    def init(*a, **k):
        raise ConnectionError("Unauthenticated: RPC error: InvalidAuthToken: Authentication token is missing")

    monkeypatch.setattr(ray, "init", init)
    with pytest.raises(SpeechprobeError, match=r"^cannot connect .*\(InvalidAuthToken\): it requires a Ray auth token"):
        ray_connect.connect("10.1.2.3:6390", timeout_s=5)


def test_actor_start_deadline_scales_with_the_load():
    from speechprobe.ray_pool import start_deadline

    assert start_deadline(30, load=0.5, cpus=2) == 30  # an idle machine: the plain timeout
    assert start_deadline(30, load=15, cpus=2) == 225  # load 15 on 2 cores: 7.5 times as long


def test_a_local_instance_starts_its_workers_at_the_callers_priority(monkeypatch):
    """Ray's default niceness 15 starves the actors on a busy machine; a value the user set is kept."""
    seen = []

    class FakeRay:
        def init(self, **kwargs):
            seen.append(os.environ.get("RAY_worker_niceness"))

        def shutdown(self):
            pass

    monkeypatch.delenv("RAY_worker_niceness", raising=False)
    monkeypatch.setenv("RAY_TMPDIR", "/tmp")  # the plain ray.init branch: no private folder to clean up
    ray_connect._init_private(FakeRay(), {})
    monkeypatch.setenv("RAY_worker_niceness", "5")
    ray_connect._init_private(FakeRay(), {})
    assert seen == ["0", "5"]
