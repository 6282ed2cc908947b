"""``@model_builder``: how every family's network builder is wrapped.

It seeds the initialisation and imposes the model dtype by setting torch's default dtype only
while the builder runs, restoring it afterwards even on error. Parameters are therefore created
in the model dtype and nothing global changes for the caller (neither the default dtype nor the
global random state).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, ParamSpec, TypeVar

import torch

__all__ = ["default_dtype", "model_builder", "torch_dtype"]

P = ParamSpec("P")
M = TypeVar("M", bound=torch.nn.Module)


def torch_dtype(name: str) -> torch.dtype:
    """``"float32"`` / ``"float64"`` -> the torch dtype."""
    dtypes = {"float32": torch.float32, "float64": torch.float64}
    if name not in dtypes:
        raise ValueError(f"model_dtype must be one of {sorted(dtypes)}, got {name!r}")
    return dtypes[name]


@contextmanager
def default_dtype(dtype: torch.dtype) -> Iterator[None]:
    """Set torch's default dtype for the block only."""
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        yield
    finally:
        torch.set_default_dtype(previous)


def model_builder(fn: Callable[P, M]) -> Callable[P, M]:
    """Decorate a network builder ``fn(config, ...)``: seeded with ``config.seed``, parameters in
    ``config.model_dtype``, the global default dtype and random state untouched.

    Examples
    --------
    >>> from types import SimpleNamespace
    >>> @model_builder
    ... def build(config):
    ...     return torch.nn.Linear(2, 2)
    >>> build(SimpleNamespace(seed=0, model_dtype="float64")).weight.dtype
    torch.float64
    >>> torch.get_default_dtype()
    torch.float32
    """

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> M:
        config: Any = args[0] if args else kwargs["config"]
        with torch.random.fork_rng(devices=[]), default_dtype(torch_dtype(config.model_dtype)):
            torch.manual_seed(config.seed)
            return fn(*args, **kwargs)

    return wrapper
