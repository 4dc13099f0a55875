"""torch imported on first use: the family modules bind ``torch = Lazy("torch")``, so that importing them (to
list the families: ``speechprobe models``) loads no deep-learning library; the first attribute read loads it."""

from __future__ import annotations

import functools
import importlib
from collections.abc import Callable
from types import ModuleType
from typing import Any, TypeVar

Fn = TypeVar("Fn", bound=Callable[..., Any])


class Lazy:
    """The module ``name``, imported when one of its attributes is first read."""

    def __init__(self, name: str) -> None:
        self._name = name

    @functools.cached_property
    def _module(self) -> ModuleType:
        return importlib.import_module(self._name)

    def __getattr__(self, attr: str) -> Any:
        return getattr(self._module, attr)

    def __repr__(self) -> str:
        return f"<lazy module {self._name!r}>"


def inference_mode(fn: Fn) -> Fn:
    """``@torch.inference_mode()`` (torch's own, generators included), applied at each call, so torch is imported
    at the first call rather than at the definition."""

    @functools.wraps(fn)
    def run(*args: Any, **kwargs: Any) -> Any:
        import torch

        return torch.inference_mode()(fn)(*args, **kwargs)

    return run  # type: ignore[return-value]
