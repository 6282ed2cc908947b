"""Model families, one sub-package each; a family is imported when one of its names is first
used (``from physicsml_like.models import MACEModel`` loads MACE and e3nn, not the others).

Importing a family registers it by name; the registry also knows every built-in family by name
without importing it (see :mod:`physicsml_like._families`).
"""

from .._families import family_exports
from .._lazy import lazy_exports

_EXPORTS = family_exports()
__all__ = list(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
