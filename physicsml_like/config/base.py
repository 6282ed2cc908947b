"""The strict pydantic base every config section derives from.

Why a base: every section must reject unknown fields and, when something is wrong, raise *one*
error that names the field (as a dotted path), the bad value and, for a misspelt field, the
closest valid name. pydantic's own message has the first two; the base adds the third and turns
the message into a :class:`ConfigError` (a ``ValueError``) so callers need not import pydantic.

A field that was renamed keeps loading under its old name: a section lists
``renamed_fields = {"old": "new"}`` and the base maps the old name to the new one with a
``DeprecationWarning`` naming both (so saved config files keep loading), and rejects a config
that gives both names.
"""

from __future__ import annotations

import contextvars
import difflib
import sys
import warnings
from pathlib import Path
from types import FrameType
from typing import Any, ClassVar, Self

from pydantic import BaseModel, ConfigDict, ValidationError, model_validator
from pydantic_core import PydanticCustomError

__all__ = ["ConfigError", "StrictConfig", "deep_merge"]


class ConfigError(ValueError):
    """A config value is wrong; the message names each offending field and value."""


def _dotted(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out or "<root>"


def _valid_fields(model: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    """The field names valid at the parent of ``loc`` (used for 'did you mean').

    Only plain nested models are followed; unions and containers give up (no suggestion).
    """
    current: Any = model
    for part in loc[:-1]:
        if not (isinstance(current, type) and issubclass(current, BaseModel)):
            return []
        field = current.model_fields.get(str(part))
        if field is None:
            return []
        current = field.annotation
    if isinstance(current, type) and issubclass(current, BaseModel):
        return list(current.model_fields)
    return []


def format_validation_error(model: type[BaseModel], err: ValidationError) -> str:
    """Render a pydantic error as one readable message naming every field and value."""
    lines = [f"invalid {model.__name__}:"]
    for item in err.errors(include_url=False):
        loc = tuple(item.get("loc", ()))
        where = _dotted(loc)
        value = item.get("input")
        if item.get("type") == _RENAMED_TWICE:
            msg = f"  {_dotted(loc + (item['ctx']['new'],))}: {item['msg']}"
        elif item.get("type") == "extra_forbidden":
            msg = f"  {where}: unknown field (value {value!r})"
            close = difflib.get_close_matches(str(loc[-1]), _valid_fields(model, loc), n=1)
            if close:
                msg += f"; did you mean {close[0]!r}?"
        else:
            shown = repr(value)
            if len(shown) > 120:
                shown = shown[:117] + "..."
            msg = f"  {where}: {item.get('msg')} (got {shown})"
        lines.append(msg)
    return "\n".join(lines)


_RENAMED_TWICE = "renamed_field_given_twice"
_PACKAGE = str(Path(__file__).resolve().parents[1])


def _caller_stacklevel() -> int:
    """``stacklevel`` that points a warning at the first frame outside this package and pydantic
    (the user's code that gave the old name), counted from the caller of this function."""
    import pydantic

    internal = (_PACKAGE, str(Path(pydantic.__file__).resolve().parent))
    frame: FrameType | None = sys._getframe(2)
    level = 2
    while frame is not None and frame.f_code.co_filename.startswith(internal):
        frame, level = frame.f_back, level + 1
    return level


# pydantic calls a custom __init__ for nested models too; only the outermost call converts
_depth: contextvars.ContextVar[int] = contextvars.ContextVar("physicsml_like_config_depth", default=0)


class StrictConfig(BaseModel):
    """Base of every config: unknown fields are errors, assignments are validated."""

    model_config = ConfigDict(
        extra="forbid",
        validate_assignment=True,
        validate_default=True,
        use_attribute_docstrings=True,
        protected_namespaces=(),
    )

    renamed_fields: ClassVar[dict[str, str]] = {}
    """Old field name -> new field name, for fields that were renamed (see the module docstring).
    A subclass lists its own renames; those of its bases apply as well."""

    def __init__(self, /, **data: Any) -> None:
        depth = _depth.get()
        token = _depth.set(depth + 1)
        try:
            super().__init__(**data)
        except ValidationError as err:
            if depth > 0:
                raise  # nested: let the outermost config report the full path
            raise ConfigError(format_validation_error(type(self), err)) from None
        finally:
            _depth.reset(token)

    @classmethod
    def all_renamed_fields(cls) -> dict[str, str]:
        """Old name -> new name of this section and its bases."""
        renames: dict[str, str] = {}
        for klass in reversed(cls.__mro__):
            renames.update(vars(klass).get("renamed_fields", {}))
        return renames

    @classmethod
    def with_new_names(cls, data: dict[str, Any], *, nested: bool = False) -> dict[str, Any]:
        """``data`` with every old field name replaced by its new one (a ``DeprecationWarning``
        names each), in the nested sections too with ``nested``; an error when both names are
        given. (Validation renames each section by itself, so that an error has its full path.)"""
        renames = cls.all_renamed_fields()
        out = dict(data)
        for old, new in renames.items():
            if old not in out:
                continue
            if new in out:
                raise PydanticCustomError(
                    _RENAMED_TWICE,
                    "given under its new name and under its old name '{old}'; keep only '{new}'",
                    {"old": old, "new": new},
                )
            warnings.warn(
                f"{cls.__name__}: the field {old!r} is now called {new!r}; the old name still loads "
                f"but will be removed, so write {new!r}",
                DeprecationWarning,
                stacklevel=_caller_stacklevel(),
            )
            out[new] = out.pop(old)
        for key, value in out.items() if nested else ():
            field = cls.model_fields.get(key)
            section = field.annotation if field is not None else None
            if isinstance(value, dict) and isinstance(section, type) and issubclass(section, StrictConfig):
                out[key] = section.with_new_names(value, nested=True)
        return out

    @model_validator(mode="before")
    @classmethod
    def _accept_old_names(cls, data: Any) -> Any:
        if isinstance(data, dict) and cls.all_renamed_fields():
            return cls.with_new_names(data)
        return data

    @classmethod
    def from_any(cls, value: Self | dict[str, Any] | None) -> Self:
        """Accept an instance, a plain dict or ``None`` (defaults)."""
        if value is None:
            return cls()
        if isinstance(value, cls):
            return value
        if isinstance(value, dict):
            return cls(**value)
        raise ConfigError(f"{cls.__name__} expects a dict or {cls.__name__}, got {type(value).__name__}")

    def _overrides_with_new_names(self, overrides: dict[str, Any]) -> dict[str, Any]:
        """Overrides that may use old field names, in the new names: merged into a dump (which
        has the new names) they would otherwise give a field twice."""
        try:
            return self.with_new_names(overrides, nested=True)
        except PydanticCustomError as err:
            raise ConfigError(f"invalid {type(self).__name__}:\n  {(err.context or {})['new']}: {err.message()}") from None

    def updated(self, overrides: dict[str, Any] | None) -> Self:
        """A validated copy with ``overrides`` merged in (nested dicts merge recursively)."""
        if not overrides:
            return self.model_copy(deep=True)
        merged = deep_merge(self.model_dump(), self._overrides_with_new_names(overrides))
        return type(self)(**merged)


def deep_merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    """``base`` updated with ``extra``; nested dicts merge key by key instead of being replaced."""
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = value
    return out
