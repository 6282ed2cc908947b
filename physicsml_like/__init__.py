"""physicsml_like: train 3D atomistic machine-learning models on PyTorch Lightning.

The public names below are imported when first used (PEP 562), so ``import physicsml_like``
loads no family, no e3nn and no rdkit, and importing one submodule (``physicsml_like.nn.scatter``)
does not load the others; ``from physicsml_like import MACEModel`` loads MACE alone.
"""

from ._families import family_exports
from ._lazy import lazy_exports
from ._version import __version__

_EXPORTS = {
    "ConfigError": ".config.base",
    "DataError": ".errors",
    "DataModuleConfig": ".config.datamodule",
    "EnsembleModel": ".variants.ensemble",
    "GraphDataModule": ".data.datamodule",
    "SavedModelError": ".errors",
    "ConversionError": ".errors",
    "PhysicsMLModel": ".training.wrapper",
    "available_models": ".training.registry",
    "from_mace_torch": ".pretrained.mace_torch",
    "load_from_dict": ".training.registry",
    "load_from_yaml": ".training.registry",
    "load_model": ".training.wrapper",
    "load_pretrained": ".pretrained",
    "register_model": ".training.registry",
    **family_exports(),
}

__all__ = ["__version__", *_EXPORTS]
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
