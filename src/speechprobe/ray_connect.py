"""Connecting to Ray: a running cluster (with Ray's token authentication) or a private local instance.

Every step is bounded and every failure is one line that names the cause and the fix:

- the address is probed over TCP first (refused or silent within the timeout: an error with the
  local fallback), and joining runs with a deadline, since Ray itself may retry for minutes;
- **token authentication** (recent Ray, 2.60 here; on by default for clusters started where a token exists):
  Ray turns it on in the client only for an address it discovers itself, so connecting to
  ``--address HOST:PORT`` (or to ``auto`` once resolved) would send no token, and a cluster that
  wants one answers ``InvalidAuthToken`` until ``ray.init`` gives up with "cannot connect". Here,
  when ``RAY_AUTH_MODE`` is unset and this machine has a token (Ray's order: ``RAY_AUTH_TOKEN``,
  the file ``RAY_AUTH_TOKEN_PATH``, ``~/.ray/auth_token``), the connection uses it: a cluster
  without authentication ignores it, one with authentication accepts it if it is its token. The
  cluster's answer is checked before joining (a GCS client, which fails in milliseconds on a wrong
  token), and a refusal says which token was sent and how to give the right one.

A **local instance** (no address) is kept private: Ray's session files go to a fresh folder of mode 0700
(``tempfile.mkdtemp``, not the world-writable ``/tmp/ray``), and, unless the user gives a token
(``RAY_AUTH_TOKEN`` or ``RAY_AUTH_TOKEN_PATH``), its auth token is a new random one in a 0600 file in that
folder, instead of the ``~/.ray/auth_token`` (mode 0644) that Ray would otherwise create in the user's home.
The folder is removed when the process exits. ``RAY_TMPDIR`` set by the user is honoured as it is.
"""

from __future__ import annotations

import atexit
import logging
import os
import secrets
import shutil
import socket
import tempfile
import threading
from pathlib import Path

from .errors import SpeechprobeError

log = logging.getLogger("speechprobe")

FALLBACK = "run without --engine ray to run on this machine"
TOKEN_FIX = (
    "set RAY_AUTH_TOKEN to the cluster's token (`ray get-auth-token` on the head node prints it) "
    "or copy the head node's ~/.ray/auth_token to this machine"
)


def ray_module():
    """``import ray``, or a one-line error with the install command."""
    try:
        import ray
    except ImportError:
        raise SpeechprobeError("the Ray engine needs Ray: pip install 'speechprobe[ray]'; or " + FALLBACK) from None
    return ray


def first_line(err: BaseException | bool) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


def _host_port(address: str) -> tuple[str, int] | None:
    """``host:port`` of a Ray address (``ray://`` client addresses included), else None."""
    addr = address.split("://", 1)[1] if "://" in address else address
    host, sep, port = addr.rstrip("/").rpartition(":")
    if not sep or not port.isdigit():
        return None
    return host.strip("[]") or "127.0.0.1", int(port)


def _resolve_address(address: str | None) -> str | None:
    """What to connect to: an address, or None to start a local Ray instance.

    ``None`` honours ``RAY_ADDRESS`` and otherwise starts a fresh local instance (never attaching
    silently to a stale ``ray start`` cluster); ``"auto"`` finds the cluster started on this
    machine with ``ray start`` (the latest one, under ``RAY_TMPDIR`` when set).
    """
    if address in (None, "", "local"):
        env = os.environ.get("RAY_ADDRESS", "")
        return env if address is None and env and env != "local" else None
    if address == "auto":
        try:
            from ray._private.services import canonicalize_bootstrap_address  # private: best effort

            found = canonicalize_bootstrap_address("auto")
        except Exception as e:
            raise SpeechprobeError(
                f"--address auto: no running Ray cluster found on this machine ({first_line(e)}); "
                f"start one with `ray start --head`, pass --address HOST:PORT, or {FALLBACK}"
            ) from None
        return found or "auto"
    return address


def token_source() -> str | None:
    """Where Ray reads this machine's auth token from, in Ray's own order, or None without one.

    A ``RAY_AUTH_TOKEN_PATH`` that names no readable, non-empty file is an error here: Ray would
    abort the whole process on it (a failed check in its C++ token loader) once tokens are on.
    """
    if os.environ.get("RAY_AUTH_TOKEN", "").strip():
        return "RAY_AUTH_TOKEN"
    path = os.environ.get("RAY_AUTH_TOKEN_PATH", "")
    if path:
        if not _has_text(Path(path)):
            raise SpeechprobeError(
                f"RAY_AUTH_TOKEN_PATH={path}: no token there (missing, unreadable or empty); point it at the "
                f"cluster's token file, or unset it and {TOKEN_FIX}"
            )
        return f"RAY_AUTH_TOKEN_PATH={path}"
    default = Path.home() / ".ray" / "auth_token"
    return str(default) if _has_text(default) else None


def _has_text(path: Path) -> bool:
    try:
        return bool(path.read_text().strip())
    except OSError:
        return False


def prepare_auth() -> str | None:
    """Use this machine's token for the connection (see the module docstring); returns where it comes from."""
    mode = os.environ.get("RAY_AUTH_MODE", "").strip().lower()
    source = token_source()
    if mode == "token" and source is None:
        raise SpeechprobeError(f"RAY_AUTH_MODE=token, but this machine has no Ray auth token: {TOKEN_FIX}")
    if not mode and source is not None:
        os.environ["RAY_AUTH_MODE"] = "token"
        try:
            from ray._raylet import Config  # private: Ray refreshes its cached config this way itself

            Config.initialize("")
        except Exception as e:
            log.debug("ray Config.initialize: %s", e)
    return source


def auth_error(target: str, source: str | None) -> SpeechprobeError:
    """The one-line error for a cluster that refused this machine's token (or its lack of one)."""
    if os.environ.get("RAY_AUTH_MODE", "").strip().lower() == "disabled":
        why = "it requires a Ray auth token and RAY_AUTH_MODE=disabled here sends none: unset RAY_AUTH_MODE and "
    elif source is None:
        why = "it requires a Ray auth token and this machine has none: "
    else:
        why = (
            f"it rejected the Ray auth token from {source}, which is not this cluster's "
            f"(perhaps left by an earlier Ray instance): "
        )
    return SpeechprobeError(f"cannot connect to the Ray cluster at {target} (InvalidAuthToken): {why}{TOKEN_FIX}")


def _is_auth_failure(err: BaseException) -> bool:
    return type(err).__name__ == "AuthenticationError" or "InvalidAuthToken" in str(err)


def _check_auth(target: str, source: str | None) -> None:
    """Ask the cluster's GCS once, before joining: a wrong token fails here in milliseconds."""
    if "://" in target:  # a Ray Client address: no GCS to ask
        return
    try:
        from ray._raylet import GcsClient  # private, but what Ray's own tools use

        GcsClient(address=target)
    except Exception as e:
        if _is_auth_failure(e):
            raise auth_error(target, source) from None
        log.debug("GCS pre-check of %s: %s", target, first_line(e))  # ray.init will say what is wrong


def _init_private(ray, common: dict) -> None:
    """``ray.init`` of a local instance whose session files and auth token stay private (module docstring).

    Its workers run at the caller's priority: Ray starts them at niceness 15, so on a busy machine the actors
    that do the run's work starve behind every other program (a run stalled beside ``stress-ng --cpu 2``).
    A ``RAY_worker_niceness`` the user set is kept."""
    os.environ.setdefault("RAY_worker_niceness", "0")  # read by the raylet this ray.init starts
    if os.environ.get("RAY_TMPDIR"):
        ray.init(address="local", **common)
        return
    private = Path(tempfile.mkdtemp(prefix="sp-ray-"))  # mode 0700; short, for Ray's socket paths

    def remove() -> None:
        ray.shutdown()
        shutil.rmtree(private, ignore_errors=True)

    atexit.register(remove)
    own_token = not (os.environ.get("RAY_AUTH_TOKEN", "").strip() or os.environ.get("RAY_AUTH_TOKEN_PATH"))
    if own_token:
        token = private / "auth_token"
        fd = os.open(token, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_hex(32))
        os.environ["RAY_AUTH_TOKEN_PATH"] = str(token)  # read by ray.init and the processes it starts
    try:
        ray.init(address="local", _temp_dir=str(private / "ray"), **common)
    finally:
        if own_token:  # a later connection to a cluster must not send this instance's token
            os.environ.pop("RAY_AUTH_TOKEN_PATH", None)


def connect(address: str | None = None, timeout_s: float = 30.0) -> None:
    """Connect this process to Ray (once): an existing cluster at ``address``, or a local instance.

    Every step is bounded: an address is probed over TCP first (refused or silent within
    ``timeout_s`` -> :class:`SpeechprobeError` with the local fallback), its token authentication
    is checked, and joining a cluster runs with a deadline, since Ray itself may retry for minutes.
    """
    ray = ray_module()
    if ray.is_initialized():
        return
    target = _resolve_address(address)
    common = dict(include_dashboard=False, logging_level=logging.WARNING, ignore_reinit_error=True)
    if target is None:  # start a local instance: in this thread, since its processes die with their parent thread
        _init_private(ray, common)
        return
    hp = _host_port(target)
    if hp is not None:
        try:
            socket.create_connection(hp, timeout=min(timeout_s, 10.0)).close()
        except OSError as e:
            raise SpeechprobeError(
                f"cannot reach the Ray cluster at {target} ({e.strerror or e}); check the address "
                f"(`ray status` on the head node prints it) or {FALLBACK}"
            ) from None
    source = prepare_auth()
    box: dict[str, BaseException | bool] = {}

    def join() -> None:
        try:
            _check_auth(target, source)
            ray.init(address=target, **common)
            box["ok"] = True
        except BaseException as e:
            box["error"] = e

    thread = threading.Thread(target=join, name="speechprobe-ray-connect", daemon=True)
    thread.start()
    thread.join(timeout_s)
    err = box.get("error")
    if isinstance(err, SpeechprobeError):
        raise err
    if isinstance(err, BaseException):
        if _is_auth_failure(err):
            raise auth_error(target, source) from None
        raise SpeechprobeError(
            f"cannot connect to the Ray cluster at {target} ({first_line(err)}); {FALLBACK}"
        ) from None
    if "ok" not in box:
        raise SpeechprobeError(
            f"the Ray cluster at {target} did not answer within {timeout_s:.0f} s "
            f"(is it a Ray head with the same Ray version?); {FALLBACK}"
        )
