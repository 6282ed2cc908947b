"""Hyperparameters that mean the same carry the same name in every family.

physicsml's own names win where its family has the option; an option physicsml lacks takes the
name the other families give it. A renamed field still loads under its old name (saved config
files keep working) with a ``DeprecationWarning`` naming both names; giving both is an error.
"""

from __future__ import annotations

import importlib
import json
import warnings
from pathlib import Path
from typing import Any, ClassVar

import pytest

from physicsml_like.config.base import ConfigError, StrictConfig
from physicsml_like.config.model import ModelConfig

SAVED = Path(__file__).resolve().parents[1] / "compat" / "saved"
FAMILIES = ["allegro", "ani", "egnn", "mace", "nequip", "painn", "tensornet"]


def _config_class(family: str) -> type[ModelConfig]:
    module = importlib.import_module(f"physicsml_like.models.{family.removesuffix('_model')}")
    return next(getattr(module, a) for a in module.__all__ if a.endswith("ModelConfig"))


# ---------------------------------------------------------------------------- the mechanism
class _Inner(StrictConfig):
    renamed_fields: ClassVar[dict[str, str]] = {"width": "num_features"}
    num_features: int = 8


class _Outer(StrictConfig):
    renamed_fields: ClassVar[dict[str, str]] = {"l_max": "max_ell"}
    max_ell: int = 2
    inner: _Inner = _Inner()


def test_an_old_name_loads_with_a_warning_that_names_both() -> None:
    with pytest.warns(DeprecationWarning, match="'l_max' is now called 'max_ell'") as caught:
        config = _Outer(l_max=3)
    assert config.max_ell == 3 and "l_max" not in config.model_dump()
    assert caught[0].filename == __file__  # points at the code that used the old name


def test_an_old_name_in_a_nested_section_and_in_updated_overrides_loads() -> None:
    with pytest.warns(DeprecationWarning, match="'width' is now called 'num_features'"):
        config = _Outer(inner={"width": 4})
    assert config.inner.num_features == 4
    with pytest.warns(DeprecationWarning):
        changed = config.updated({"l_max": 1, "inner": {"width": 16}})
    assert (changed.max_ell, changed.inner.num_features) == (1, 16)


@pytest.mark.parametrize(
    ("build", "where"),
    [
        (lambda: _Outer(l_max=1, max_ell=2), "max_ell"),
        (lambda: _Outer(inner={"width": 1, "num_features": 2}), "inner.num_features"),
        (lambda: _Outer().updated({"l_max": 1, "max_ell": 2}), "max_ell"),
    ],
)
def test_giving_the_old_and_the_new_name_is_an_error_naming_both(build: Any, where: str) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no warning: the conflict is reported before any renaming
        with pytest.raises(ConfigError, match="old name") as err:
            build()
    message = str(err.value)
    assert f"{where}:" in message and ("'l_max'" in message or "'width'" in message)


def test_renames_of_a_base_apply_to_its_subclasses() -> None:
    class Sub(_Outer):
        renamed_fields: ClassVar[dict[str, str]] = {"count": "num"}
        num: int = 0

    assert Sub.all_renamed_fields() == {"l_max": "max_ell", "count": "num"}
    with pytest.warns(DeprecationWarning):
        sub = Sub(l_max=5, count=2)
    assert (sub.max_ell, sub.num) == (5, 2)


# ---------------------------------------------------------------------------- the families' names
#: Every rename: family -> {old name: new name}. Why: physicsml's name for the option in that
#: family, or (where physicsml lacks the option or the family) the name the other families use.
RENAMES: dict[str, dict[str, str]] = {
    "egnn": {"trainable_rbf": "bessel_basis_trainable", "envelope_p": "num_polynomial_cutoff"},
    "painn": {
        "num_interactions": "num_layers",
        "num_radial": "num_bessel",
        "trainable_rbf": "bessel_basis_trainable",
        "envelope_p": "num_polynomial_cutoff",
    },
    "tensornet": {
        "num_layers": "num_interaction_layers",
        "trainable_rbf": "bessel_basis_trainable",
        "envelope_p": "num_polynomial_cutoff",
    },
    "mace": {"radial_activation": "radial_mlp_activation"},
    "nequip": {},
    "allegro": {
        "l_max": "max_ell",
        "num_tensor_features": "env_embed_multiplicity",
        "two_body_latent_mlp": "two_body_latent_mlp_latent_dimensions",
        "latent_mlp": "latent_mlp_latent_dimensions",
        "env_embed_mlp": "env_embed_mlp_latent_dimensions",
        "edge_eng_mlp": "mlp_latent_dimensions",
        "latent_activation": "activation",
    },
    "ani": {"preset": "which_ani"},
}

#: The names physicsml's configs give these families' options (its default_configs.py).
PHYSICSML_NAMES: dict[str, set[str]] = {
    "egnn": {"num_rbf", "num_layers", "num_layers_phi", "num_layers_pooling", "c_hidden", "modify_coords", "jitter",
             "pool_type", "pool_from", "dropout", "mlp_activation", "mlp_output_activation", "output_activation"},
    "mace": {"num_bessel", "num_polynomial_cutoff", "max_ell", "num_interactions", "hidden_irreps", "mlp_irreps",
             "avg_num_neighbours", "correlation"},
    "nequip": {"num_layers", "max_ell", "parity", "num_features", "num_bessel", "bessel_basis_trainable",
               "num_polynomial_cutoff", "self_connection", "resnet", "avg_num_neighbours"},
    "allegro": {"num_layers", "max_ell", "parity", "mlp_latent_dimensions", "latent_mlp_latent_dimensions",
                "env_embed_multiplicity", "two_body_latent_mlp_latent_dimensions", "env_embed_mlp_latent_dimensions",
                "num_bessel", "bessel_basis_trainable", "num_polynomial_cutoff", "avg_num_neighbours",
                "per_layer_cutoffs", "latent_resnet", "latent_resnet_update_ratios",
                "latent_resnet_update_ratios_learnable"},
    "tensornet": {"num_features", "num_radial", "num_interaction_layers"},
    "ani": {"which_ani"},
    "painn": set(),  # physicsml has no PaiNN
}

#: One meaning, one name: the families that have the option all call it so.
SHARED_NAMES: dict[str, set[str]] = {
    "num_polynomial_cutoff": {"egnn", "painn", "tensornet", "mace", "nequip", "allegro"},
    "bessel_basis_trainable": {"egnn", "painn", "tensornet", "nequip", "allegro"},
    "max_ell": {"mace", "nequip", "allegro"},
    "avg_num_neighbours": {"mace", "nequip", "allegro"},
    "radial_mlp_activation": {"mace", "nequip"},
    "radial_mlp": {"mace", "nequip"},
    "activation": {"painn", "tensornet", "allegro", "ani"},
}


@pytest.mark.parametrize("family", FAMILIES)
def test_each_family_declares_its_renames_and_has_physicsmls_names(family: str) -> None:
    config_class = _config_class(family)
    fields = config_class.model_fields
    assert config_class.all_renamed_fields() == RENAMES[family]
    assert PHYSICSML_NAMES[family] <= set(fields), sorted(PHYSICSML_NAMES[family] - set(fields))
    for old, new in RENAMES[family].items():
        assert old not in fields and new in fields
        assert f"``{old}``" in (fields[new].description or ""), f"{family}.{new}'s docstring should name {old!r}"


@pytest.mark.parametrize("name", sorted(SHARED_NAMES))
def test_one_meaning_has_one_name_across_the_families(name: str) -> None:
    having = {family for family in FAMILIES if name in _config_class(family).model_fields}
    assert having == SHARED_NAMES[name]


def test_no_family_keeps_a_retired_name() -> None:
    retired = {"envelope_p", "trainable_rbf", "l_max", "num_tensor_features", "latent_activation", "radial_activation"}
    for family in FAMILIES:
        assert not retired & set(_config_class(family).model_fields), family


@pytest.mark.parametrize("family", sorted(f for f in RENAMES if RENAMES[f]))
def test_each_old_name_is_accepted_with_a_warning_and_mapped(family: str) -> None:
    config_class = _config_class(family)
    defaults = config_class()
    for old, new in RENAMES[family].items():
        value = getattr(defaults, new)
        with pytest.warns(DeprecationWarning, match=f"'{old}' is now called '{new}'"):
            config = config_class(**{old: value})
        assert getattr(config, new) == value
        with pytest.raises(ConfigError, match=f"{new}: given under its new name and under its old name '{old}'"):
            config_class(**{old: value, new: value})


def test_a_model_accepts_an_old_name_as_a_keyword() -> None:
    from physicsml_like.models import AllegroModel, PaiNNModel

    with pytest.warns(DeprecationWarning, match="'num_interactions' is now called 'num_layers'"):
        model = PaiNNModel(datamodule={"y_graph_scalars": ["energy"]}, num_interactions=2)
    assert model.config.num_layers == 2
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = AllegroModel(datamodule={"y_graph_scalars": ["energy"]}, l_max=1, latent_mlp=[64], two_body_latent_mlp=[64])
    assert {str(w.message).split("'")[1] for w in caught} == {"l_max", "latent_mlp", "two_body_latent_mlp"}
    assert (model.config.max_ell, model.config.latent_mlp_latent_dimensions) == (1, [64])


@pytest.mark.parametrize("case", sorted(p.name for p in SAVED.iterdir() if (p / "config.json").exists()))
def test_saved_configs_with_old_names_load_into_the_new_names(case: str) -> None:
    saved = json.loads((SAVED / case / "config.json").read_text())
    config_class = _config_class(saved["name"])
    family = saved["name"].removesuffix("_model")
    old_names = set(RENAMES[family]) & set(saved["config"])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        config = config_class(**saved["config"])
    renamed = {str(w.message).split("'")[1] for w in caught if issubclass(w.category, DeprecationWarning)}
    assert renamed == old_names
    for old in old_names:
        assert getattr(config, RENAMES[family][old]) == saved["config"][old]
