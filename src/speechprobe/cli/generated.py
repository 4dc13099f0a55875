"""Typer options generated from configuration fields, as transformers' ``HfArgumentParser`` does.

A field made by :func:`speechprobe.settings.setting` with a help text becomes one option: its flag, default,
type and help come from the field. :func:`with_settings` adds the options of one or more :class:`Options` to a
command's own parameters and hands the command the values given, by their flat names, in ``settings``.
"""

from __future__ import annotations

import dataclasses
import inspect
import typing
from collections.abc import Callable, Mapping
from dataclasses import MISSING, dataclass, field
from typing import Any

import typer

from ..settings import flags_of, flat_fields

KEEP_HELP = " [default: the run's]"


@dataclass(frozen=True)
class Options:
    """The options of configuration class ``cls`` that a command takes."""

    cls: type
    only: tuple[str, ...] | None = None  # flat names (None: every setting with a help text)
    defaults: Mapping[str, Any] = field(default_factory=dict)  # this command's own defaults (the demo's)
    flags: Mapping[str, str] = field(default_factory=dict)  # this command's own flags (extract's --cues)
    keep: bool = False  # no defaults: a setting not given keeps the run's (`speechprobe probe RUN`)

    def settings(self) -> dict[str, tuple[dataclasses.Field, Any]]:
        """Flat name -> (field, type) of each option."""
        hints = _hints(self.cls)
        chosen = {k: f for k, (_, f) in flat_fields(self.cls).items() if f.metadata.get("help")}
        if self.only is not None:  # in this order; a setting with no help text has no option
            unknown = set(self.only) - set(flat_fields(self.cls))
            assert not unknown, f"{self.cls.__name__} has no settings {sorted(unknown)}"
            chosen = {k: chosen[k] for k in self.only if k in chosen}
        return {k: (f, hints[k]) for k, f in chosen.items()}

    def parameter(self, key: str, f: dataclasses.Field, hint: Any) -> inspect.Parameter:
        """The typer parameter of one setting."""
        meta = f.metadata
        decls = (self.flags[key],) if key in self.flags else flags_of(f)
        if hint in (bool, bool | None) and "/" not in decls[0]:
            decls = (f"{decls[0]}/--no-{decls[0][2:]}", *decls[1:])
        if self.keep:
            default = None
        elif key in self.defaults:
            default = self.defaults[key]
        elif "cli_default" in meta:
            default = meta["cli_default"]
        elif f.default_factory is not MISSING:
            default = ",".join(f.default_factory())
        else:
            default = ... if f.default is MISSING else f.default
        kind = str if "parse" in meta else hint
        if default is None or self.keep:
            kind = kind | None
        help_text = meta["help"] + (KEEP_HELP if self.keep else "")
        return inspect.Parameter(
            key,
            inspect.Parameter.KEYWORD_ONLY,
            default=typer.Option(default, *decls, help=help_text),
            annotation=kind,
        )

    def parse(self, given: Mapping[str, Any]) -> dict[str, Any]:
        """The values given (None: not given, so the field's default or the run's value), read as the fields."""
        out = {}
        for key, (f, _) in self.settings().items():
            value = given[key]
            if value is not None:
                out[key] = f.metadata["parse"](value) if "parse" in f.metadata else value
        return out


def option(cls: type, key: str) -> Any:
    """The generated option of one setting, for a command declared by hand."""
    opts = Options(cls, only=(key,))
    return opts.parameter(key, *opts.settings()[key]).default


def _hints(cls: type) -> dict[str, Any]:
    """Each flat setting's type."""
    holders = {None: cls} | {g.name: g.metadata["group"] for g in dataclasses.fields(cls) if "group" in g.metadata}
    hints = {owner: typing.get_type_hints(holder) for owner, holder in holders.items()}
    return {k: hints[owner][f.name] for k, (owner, f) in flat_fields(cls).items()}


def with_settings(*options: Options) -> Callable[[Callable], Callable]:
    """Give a command the generated options of ``options`` besides its own parameters; the command takes
    ``settings``: the values given, by flat name (options of several classes sharing a name are one option)."""

    def decorate(command: Callable) -> Callable:
        own = [p for p in inspect.signature(command, eval_str=True).parameters.values() if p.name != "settings"]
        generated: dict[str, inspect.Parameter] = {}
        for opts in options:
            for key, (f, hint) in opts.settings().items():
                generated.setdefault(key, opts.parameter(key, f, hint))
        clash = {p.name for p in own} & set(generated)
        assert not clash, f"{command.__name__}: own parameters {sorted(clash)} are generated too"

        def wrapper(**kwargs):
            given = {k: kwargs.pop(k) for k in generated}
            settings: dict[str, Any] = {}
            for opts in options:
                settings |= opts.parse({k: given[k] for k in opts.settings()})
            return command(**kwargs, settings=settings)

        given = [p for p in own if isinstance(p.default, typer.models.OptionInfo)]  # the command's own options last
        params = [p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in own if p not in given]
        params += [*generated.values(), *(p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in given)]
        wrapper.__signature__ = inspect.Signature(params)
        wrapper.__annotations__ = {p.name: p.annotation for p in params}
        wrapper.__name__, wrapper.__doc__, wrapper.__module__ = command.__name__, command.__doc__, command.__module__
        return wrapper

    return decorate
