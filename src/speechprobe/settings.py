"""Settings as dataclass fields: each one's default, help text, command-line name and check, declared once.

:func:`setting` makes such a field and :func:`group` a field that holds a group of them; configurations read
their settings flat, by name (:func:`flat_fields`), and check them (:func:`check_fields`); the command line is
generated from the same fields (``speechprobe.cli.generated``).
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Callable
from dataclasses import MISSING, field, fields
from typing import Any

from .errors import ConfigError

Check = Callable[[Any, str], None]  # (value, flag) -> None, or a ConfigError naming the flag


def setting(
    default: Any = MISSING,
    help: str | None = None,
    *,
    factory: Callable[[], Any] | None = None,
    flag: str | tuple[str, ...] | None = None,
    name: str | None = None,
    check: Check | None = None,
    parse: Callable[[str], Any] | None = None,
    cli_default: Any = MISSING,
) -> Any:
    """A configuration field. ``help`` (None: no command-line option) and ``flag`` (default ``--field-name``;
    for a bool ``--x/--no-x``) make its option, ``name`` its flat key when it differs from the field's,
    ``check`` its validation, ``parse`` its reading from the command line's text, and ``cli_default`` the
    option's default where the field's is not one a user types (a list, or one computed on use)."""
    meta = {"help": help, "flag": flag, "name": name, "check": check, "parse": parse}
    meta = {k: v for k, v in meta.items() if v is not None}
    if cli_default is not MISSING:
        meta["cli_default"] = cli_default
    if factory is not None:
        return field(default_factory=factory, metadata=meta)
    return field(default=default, metadata=meta)


def group(cls: type) -> Any:
    """A field holding a settings group (its fields are flat settings of the config that holds it)."""
    return field(default_factory=cls, metadata={"group": cls})


def flat_name(f: dataclasses.Field) -> str:
    return f.metadata.get("name", f.name)


def flags_of(f: dataclasses.Field) -> tuple[str, ...]:
    """The option's declarations: ``setting(flag=...)``, else ``--flat-name``."""
    decl = f.metadata.get("flag") or "--" + flat_name(f).replace("_", "-")
    return (decl,) if isinstance(decl, str) else tuple(decl)


def flag_of(f: dataclasses.Field) -> str:
    """The option that sets ``f``, as error messages name it."""
    return flags_of(f)[0].split("/")[0]


@functools.cache
def flat_fields(cls: type) -> dict[str, tuple[str | None, dataclasses.Field]]:
    """Every setting of ``cls`` by its flat name: (the group field holding it or None, its field)."""
    out: dict[str, tuple[str | None, dataclasses.Field]] = {}
    for f in fields(cls):
        inner = f.metadata.get("group")
        out.update({k: (f.name, g) for k, (_, g) in flat_fields(inner).items()} if inner else {flat_name(f): (None, f)})
    return out


def check_fields(obj: Any) -> None:
    """Each field's own check (``setting(check=...)``), in declaration order."""
    for f in fields(obj):
        if "check" in f.metadata:
            f.metadata["check"](getattr(obj, f.name), flag_of(f))


def rule(ok: Callable[[Any], bool], reason: str) -> Check:
    """A check: ``ok(value)`` holds (an unset None passes), else ``--flag VALUE: reason``."""

    def check(value, flag):
        if value is not None and not ok(value):
            shown = repr(value) if isinstance(value, str) else value
            raise ConfigError(f"{flag} {shown}: {reason}")

    return check


def at_least(minimum: float, reason: str) -> Check:
    return rule(lambda v: v >= minimum, reason)


def positive(minimum: float = 0.0, integer: bool = False) -> Check:
    return lambda value, flag: check_positive(value, flag, minimum, integer)


def split_list(value: str | None) -> list[str]:
    """``a, b,none`` -> ``["a", "b"]`` (a comma-separated option)."""
    return [v.strip() for v in (value or "").split(",") if v.strip() and v.strip().lower() != "none"]


def split_pairs(value: str | None, option: str) -> dict[str, str]:
    """``A=x,B=y`` as a dict; a malformed entry is a one-line error naming the option."""
    out = {}
    for item in split_list(value):
        key, sep, val = item.partition("=")
        if not sep or not key.strip() or not val.strip():
            raise ConfigError(f"{option} {item!r}: expected TASK=FILE")
        out[key.strip()] = val.strip()
    return out


def check_positive(value: float | None, flag: str, minimum: float = 0.0, integer: bool = False) -> None:
    """A finite number above 0 (or, for counts, at least ``minimum``), else a one-line error."""
    if value is None:
        return
    if integer:
        if value < minimum:
            raise ConfigError(f"{flag} {value}: must be at least {int(minimum)}")
    elif not math.isfinite(value) or value <= minimum:
        raise ConfigError(f"{flag} must be positive (a finite number of seconds), got {value}")
