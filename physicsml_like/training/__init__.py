"""The shared training layer: LightningModule, wrapper, techniques, registry.

Names are imported when first used, so the registry (``available_models``) answers without
loading lightning, and ``import physicsml_like.training.registry`` costs pydantic alone.
"""

from .._lazy import lazy_exports

_EXPORTS = {
    "TECHNIQUES": ".techniques",
    "AtomisticLightningModule": ".module",
    "ConFIGLightningModule": ".conflict_free",
    "EMAConFIGLightningModule": ".techniques",
    "EMALightningModule": ".ema",
    "PhysicsMLModel": ".wrapper",
    "available_models": ".registry",
    "conflict_free_direction": ".conflict_free",
    "default_dtype": "..nn.builder",
    "get_model_class": ".registry",
    "load_from_dict": ".registry",
    "load_from_yaml": ".registry",
    "load_model": ".wrapper",
    "model_builder": "..nn.builder",
    "register_model": ".registry",
    "register_technique": ".techniques",
}

__all__ = list(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
