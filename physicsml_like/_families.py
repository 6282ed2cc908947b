"""The built-in model families by registry name, as ``"module:class"`` strings.

Data, not imports: the family registry (``training.registry``), the ``models`` package and the
package root read this table to know every family by name, and import a family only when it is
asked for. Each family's config class is its wrapper's name plus ``Config``
(``EGNNModel`` -> ``EGNNModelConfig``), defined in the same package.
"""

from __future__ import annotations

__all__ = ["BUILTIN_FAMILIES", "ENSEMBLE_NAMES", "FAMILY_ALIASES", "VARIANT_PREFIXES", "family_exports"]

BUILTIN_FAMILIES: dict[str, str] = {
    "allegro_model": "physicsml_like.models.allegro:AllegroModel",
    "ani_model": "physicsml_like.models.ani:ANIModel",
    "egnn_model": "physicsml_like.models.egnn:EGNNModel",
    "mace_model": "physicsml_like.models.mace:MACEModel",
    "nequip_model": "physicsml_like.models.nequip:NequIPModel",
    "painn_model": "physicsml_like.models.painn:PaiNNModel",
    "tensornet_model": "physicsml_like.models.tensornet:TensorNetModel",
}


FAMILY_ALIASES: dict[str, str] = {
    "tensor_net_model": "tensornet_model",
}
"""physicsml's registry names that differ from this package's, -> the family's name here."""

VARIANT_PREFIXES: dict[str, str] = {
    "mean_var_": "mean_var",
    "ssf_": "ssf",
    "adapter_": "bottleneck",
}
"""physicsml's variant models, ``<prefix><family>_model``, are options of the family here:
``mean_var_`` is ``uncertainty="mean_var"``, ``ssf_`` and ``adapter_`` fine-tune with
``transfer_learning.adapter`` ``"ssf"`` (scale and shift) or ``"bottleneck"`` (physicsml's
down-projection, activation and up-projection adapters)."""

ENSEMBLE_NAMES: dict[str, str] = {
    "ensemble_ani_model": "ani_model",
}
"""physicsml's ensemble models -> the family of the members (an ``EnsembleModel`` here)."""

ENSEMBLE_FACTORY = "physicsml_like.variants.ensemble:ensemble_from_config"


def family_exports() -> dict[str, str]:
    """Public name -> family package, for every wrapper class and its config class.

    Examples
    --------
    >>> family_exports()["MACEModelConfig"]
    'physicsml_like.models.mace'
    """
    exports = {}
    for spec in BUILTIN_FAMILIES.values():
        module, _, cls = spec.partition(":")
        exports[cls] = exports[f"{cls}Config"] = module
    return dict(sorted(exports.items()))
