"""The built-in model families by registry name, as ``"module:class"`` strings.

Data, not imports: the family registry (``training.registry``), the ``models`` package and the
package root read this table to know every family by name, and import a family only when it is
asked for. Each family's config class is its wrapper's name plus ``Config``
(``EGNNModel`` -> ``EGNNModelConfig``), defined in the same package.
"""

from __future__ import annotations

__all__ = ["BUILTIN_FAMILIES", "family_exports"]

BUILTIN_FAMILIES: dict[str, str] = {
    "allegro_model": "physicsml_like.models.allegro:AllegroModel",
    "ani_model": "physicsml_like.models.ani:ANIModel",
    "egnn_model": "physicsml_like.models.egnn:EGNNModel",
    "mace_model": "physicsml_like.models.mace:MACEModel",
    "nequip_model": "physicsml_like.models.nequip:NequIPModel",
    "painn_model": "physicsml_like.models.painn:PaiNNModel",
    "tensornet_model": "physicsml_like.models.tensornet:TensorNetModel",
}


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
