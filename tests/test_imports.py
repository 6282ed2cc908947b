"""What importing costs: the package root and the shared layers load nothing they do not need,
and every public name still resolves where users import it from."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

import physicsml_like
from physicsml_like import models, training
from physicsml_like._families import BUILTIN_FAMILIES
from physicsml_like.training import extensions, registry

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("lightning", "e3nn", "rdkit", "torch_geometric")

# The root's public names as they were when it imported every layer eagerly.
PUBLIC = {
    "ConfigError", "DataError", "DataModuleConfig", "EnsembleModel", "GraphDataModule", "PhysicsMLModel", "SavedModelError",
    "__version__", "available_models", "from_mace_torch", "load_from_dict", "load_from_yaml", "load_model", "register_model",
    "ConversionError", "load_pretrained",
    "ANIModel", "ANIModelConfig", "AllegroModel", "AllegroModelConfig", "EGNNModel", "EGNNModelConfig",
    "MACEModel", "MACEModelConfig", "NequIPModel", "NequIPModelConfig", "PaiNNModel", "PaiNNModelConfig",
    "TensorNetModel", "TensorNetModelConfig",
}


def _loaded_after(statement: str) -> set[str]:
    """The modules a fresh interpreter holds after running ``statement``."""
    code = f"{statement}\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"},
    )
    return set(json.loads(out.stdout.splitlines()[-1]))


def _top(modules: set[str]) -> set[str]:
    return {m.split(".")[0] for m in modules}


def test_importing_a_shared_layer_loads_no_framework_and_no_family() -> None:
    loaded = _loaded_after("import physicsml_like.nn.scatter")
    assert "physicsml_like.nn.scatter" in loaded and "torch" in loaded
    assert not _top(loaded) & set(HEAVY), sorted(_top(loaded) & set(HEAVY))
    assert not {m for m in loaded if m.startswith(("physicsml_like.models", "physicsml_like.training"))}


def test_importing_the_package_root_loads_no_family_and_no_framework() -> None:
    loaded = _loaded_after("import physicsml_like\nassert len(physicsml_like.available_models()) >= 7")
    assert not _top(loaded) & {*HEAVY, "torch"}, sorted(_top(loaded) & {*HEAVY, "torch"})
    assert not {m for m in loaded if m.startswith("physicsml_like.models")}


def test_a_family_loads_alone() -> None:
    loaded = _loaded_after("from physicsml_like import EGNNModel\nimport physicsml_like.models.egnn")
    assert "physicsml_like.models.egnn.network" in loaded
    others = {m for m in loaded if m.startswith("physicsml_like.models.") and not m.startswith("physicsml_like.models.egnn")}
    assert not others, sorted(others)
    assert "e3nn" not in _top(loaded)


def test_the_public_names_are_the_same_and_resolve() -> None:
    assert set(physicsml_like.__all__) == PUBLIC
    assert set(physicsml_like.__all__) <= set(dir(physicsml_like))
    for name in physicsml_like.__all__:
        assert getattr(physicsml_like, name) is not None, name
    assert physicsml_like.MACEModel is models.mace.MACEModel is models.MACEModel
    from physicsml_like import MACEModel

    assert MACEModel.name == "mace_model"
    namespace: dict[str, object] = {}
    exec("from physicsml_like import *", namespace)
    assert set(namespace) >= PUBLIC


@pytest.mark.parametrize("package", [physicsml_like, models, training])
def test_every_lazy_name_resolves(package: ModuleType) -> None:
    for name in package.__all__:
        assert getattr(package, name) is not None, f"{package.__name__}.{name}"


def test_an_unknown_name_is_an_attribute_error_naming_it() -> None:
    with pytest.raises(AttributeError, match="'physicsml_like' has no attribute 'MaceModel'"):
        physicsml_like.MaceModel  # noqa: B018
    with pytest.raises(ImportError, match="MaceModel"):
        from physicsml_like import MaceModel  # noqa: F401
    # a submodule is still reached by attribute, as when the root imported it
    assert physicsml_like.training.wrapper.PhysicsMLModel is physicsml_like.PhysicsMLModel


@pytest.mark.parametrize("name", sorted(BUILTIN_FAMILIES))
def test_every_built_in_family_is_registered_under_its_name(name: str) -> None:
    cls = registry.get_model_class(name)
    assert cls.name == name
    assert getattr(models, cls.__name__) is cls
    assert getattr(models, f"{cls.__name__}Config") is cls.config_class


def test_a_built_in_name_is_not_taken_by_another_class() -> None:
    from physicsml_like import EGNNModel

    class Impostor(EGNNModel):
        pass

    registry.get_model_class("mace_model")
    with pytest.raises(ValueError, match="'mace_model' is already registered"):
        registry.register_model("mace_model")(Impostor)
    saved = dict(registry._REGISTRY)
    try:
        registry._REGISTRY.pop("painn_model", None)  # as before PaiNN is first imported
        with pytest.raises(ValueError, match="'painn_model' is the name of a built-in family"):
            registry.register_model("painn_model")(Impostor)
    finally:
        registry._REGISTRY.clear()
        registry._REGISTRY.update(saved)


def test_engines_and_saved_formats_resolve_by_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from physicsml_like.calculators import EnsembleCalculator, PhysicsMLCalculator
    from physicsml_like.variants import EnsembleModel

    assert extensions.engine("ase") is PhysicsMLCalculator
    assert extensions.engine("ase_ensemble") is EnsembleCalculator
    with pytest.raises(KeyError, match="no engine named 'lammps'"):
        extensions.engine("lammps")
    monkeypatch.setattr(extensions, "_ENGINES", dict(extensions._ENGINES))
    extensions.register_engine("echo", "builtins:dict")
    assert extensions.engine("echo")(a=1) == {"a": 1}

    assert extensions.saved_format_loader(tmp_path) is None
    (tmp_path / "ensemble.json").write_text("{}")
    assert extensions.saved_format_loader(tmp_path) == EnsembleModel.load
