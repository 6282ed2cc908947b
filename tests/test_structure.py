"""Code-structure rules the project keeps: every layer describes itself; no global side effects."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import torch

import physicsml_like


def _package_modules() -> list[object]:
    modules = []
    for info in pkgutil.walk_packages(physicsml_like.__path__, prefix="physicsml_like."):
        if info.name.endswith(("cli", "__main__")):
            continue
        modules.append(importlib.import_module(info.name))
    return modules


def test_every_module_class_has_a_repr_stating_its_sizes() -> None:
    missing = []
    for module in _package_modules():
        for name, cls in inspect.getmembers(module, inspect.isclass):
            if not issubclass(cls, torch.nn.Module) or cls.__module__ != module.__name__:
                continue
            if "LightningModule" in [c.__name__ for c in cls.__mro__]:
                continue
            own = [c for c in cls.__mro__ if c.__module__.startswith("physicsml_like")]
            if not any("extra_repr" in vars(c) or "__repr__" in vars(c) for c in own):
                missing.append(f"{cls.__module__}.{name}")
    assert not missing, f"torch modules without extra_repr: {missing}"


def test_importing_the_package_changes_no_global_torch_state() -> None:
    assert torch.get_default_dtype() == torch.float32
    import logging

    assert not logging.getLogger().handlers or all(
        not type(h).__module__.startswith("physicsml_like") for h in logging.getLogger().handlers
    )
