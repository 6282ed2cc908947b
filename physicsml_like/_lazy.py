"""Import on first use: lazy re-exports for package ``__init__`` files, and ``"module:attribute"``
names of providers that a lower layer resolves without importing them up front.

A package root that re-exported its public names with plain imports would load every layer (and
torch, lightning, e3nn, rdkit) when any submodule is imported, since Python runs the parent
package first. With :func:`lazy_exports` the names are listed in a table and imported when first
named (PEP 562), so ``import physicsml_like.nn.scatter`` costs ``import torch`` and no more.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["lazy_exports", "resolve"]


def resolve(spec: str) -> Any:
    """The object named by ``"package.module:attribute"`` (the attribute may be dotted:
    ``"pkg.mod:Class.method"``), imported now.

    Examples
    --------
    >>> resolve("os.path:join")("a", "b")
    'a/b'
    """
    module_name, sep, attribute = spec.partition(":")
    if not sep or not module_name or not attribute:
        raise ValueError(f"expected 'module:attribute', got {spec!r}")
    value: Any = importlib.import_module(module_name)
    for part in attribute.split("."):
        value = getattr(value, part)
    return value


def lazy_exports(
    package: str, table: Mapping[str, str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """PEP 562 ``__getattr__`` and ``__dir__`` for ``package``.

    ``table`` maps each public name to the module that defines it, relative to ``package``
    (``".wrapper"``) or absolute. The first access imports that module and caches the value on
    the package, so later accesses are plain attribute reads. Any other public name that is a
    submodule of the package (``physicsml_like.training``) is imported on access too, as an eager
    ``__init__`` would have made it reachable.
    """

    def __getattr__(name: str) -> Any:
        if name in table:
            value = getattr(importlib.import_module(table[name], package), name)
        elif not name.startswith("_") and importlib.util.find_spec(f"{package}.{name}") is not None:
            value = importlib.import_module(f"{package}.{name}")
        else:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        setattr(sys.modules[package], name, value)
        return value

    def __dir__() -> list[str]:
        return sorted(set(vars(sys.modules[package])) | set(table))

    return __getattr__, __dir__
