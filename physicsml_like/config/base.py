"""The strict pydantic base every config section derives from.

Why a base: every section must reject unknown fields and, when something is wrong, raise *one*
error that names the field (as a dotted path), the bad value and, for a misspelt field, the
closest valid name. pydantic's own message has the first two; the base adds the third and turns
the message into a :class:`ConfigError` (a ``ValueError``) so callers need not import pydantic.
"""

from __future__ import annotations

import contextvars
import difflib
from typing import Any, Self

from pydantic import BaseModel, ConfigDict, ValidationError

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
        if item.get("type") == "extra_forbidden":
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
    def from_any(cls, value: Self | dict[str, Any] | None) -> Self:
        """Accept an instance, a plain dict or ``None`` (defaults)."""
        if value is None:
            return cls()
        if isinstance(value, cls):
            return value
        if isinstance(value, dict):
            return cls(**value)
        raise ConfigError(f"{cls.__name__} expects a dict or {cls.__name__}, got {type(value).__name__}")

    def updated(self, overrides: dict[str, Any] | None) -> Self:
        """A validated copy with ``overrides`` merged in (nested dicts merge recursively)."""
        if not overrides:
            return self.model_copy(deep=True)
        merged = deep_merge(self.model_dump(), overrides)
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
