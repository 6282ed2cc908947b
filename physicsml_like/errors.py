"""Errors raised for bad input, each naming where the problem is."""

from __future__ import annotations

from pathlib import Path

from .config.base import ConfigError

__all__ = ["ConfigError", "ConversionError", "DataError", "SavedModelError"]


class DataError(ValueError):
    """Bad input data. The message names the source, the frame/row and the field.

    Attributes
    ----------
    source:
        Where the data came from (a file path, ``"list of ase.Atoms"``, ``"DataFrame"``, ...).
    index:
        The frame or row index inside the source, when one structure is at fault.
    field:
        The label, column or attribute at fault, when there is one.
    """

    def __init__(
        self,
        problem: str,
        *,
        source: str | None = None,
        index: int | None = None,
        field: str | None = None,
    ) -> None:
        self.problem = problem
        self.source = source
        self.index = index
        self.field = field
        where = []
        if source is not None:
            where.append(str(source))
        if index is not None:
            where.append(f"frame/row {index}")
        if field is not None:
            where.append(f"field {field!r}")
        prefix = ", ".join(where)
        super().__init__(f"{prefix}: {problem}" if prefix else problem)


class SavedModelError(ValueError):
    """A saved model or checkpoint that cannot be used. The message names the file (and field).

    Attributes
    ----------
    file: the file at fault.
    field: the field of that file at fault, when one is.
    """

    def __init__(self, file: Path, problem: str, *, field: str | None = None) -> None:
        self.file = Path(file)
        self.field = field
        where = f"{file}, field {field!r}" if field else str(file)
        super().__init__(f"{where}: {problem}")


class ConversionError(ConfigError):
    """A model file of another code that cannot be converted exactly into one of ours: not such
    a file, or an architecture option with no counterpart here. The message names the file and
    the option, so that no silently different model is returned. A :class:`ConfigError`: the
    other code's config is what cannot be met.

    Attributes
    ----------
    file: the model file (or name) at fault.
    option: the other code's option (config key) with no counterpart, when one is at fault.
    """

    def __init__(self, file: str | Path, problem: str, *, option: str | None = None) -> None:
        self.file = str(file)
        self.option = option
        where = f"{file}, option {option!r}" if option else str(file)
        super().__init__(f"{where}: {problem}")
