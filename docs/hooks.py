"""MkDocs hook: config tables generated from the pydantic models, never written twice.

In a page, ``{{ config_table("physicsml_like.config:DataModuleConfig") }}`` becomes a table of
the model's fields (name, type, default, description from the field's docstring). Fields
inherited from ``ModelConfig`` are left out of family tables with ``own_fields_only=True``
(the default for family configs), since the shared sections have their own page.

Sphinx roles left in docstrings (``:meth:`save```) render as inline code, not as raw text.

``{{ benchmark_results("families.md") }}`` inserts a committed results file of
``benchmarks/results/`` (its headings moved one level down), so the numbers live in one file.
"""

from __future__ import annotations

import importlib
import re
from pathlib import Path
from typing import Any

_RESULTS = Path(__file__).resolve().parents[1] / "benchmarks" / "results"
_RESULTS_CALL = re.compile(r"\{\{\s*benchmark_results\(\s*\"([^\"]+)\"\s*\)\s*\}\}")
_CALL = re.compile(r"\{\{\s*config_table\(\s*\"([^\"]+)\"\s*(?:,\s*own_fields_only\s*=\s*(True|False))?\s*\)\s*\}\}")


def _load(path: str) -> Any:
    module, name = path.split(":")
    return getattr(importlib.import_module(module), name)


def _type_name(annotation: Any) -> str:
    text = getattr(annotation, "__name__", None) if isinstance(annotation, type) else None
    text = text or str(annotation)
    text = text.replace("typing.", "").replace("NoneType", "None")
    text = re.sub(r"physicsml_like\.[\w.]+\.", "", text)
    text = re.sub(r"<class '([\w.]+)'>", lambda m: m.group(1).split(".")[-1], text)
    return text.replace("|", "\\|")


def _default(field: Any) -> str:
    if field.default_factory is not None:
        try:
            value = field.default_factory()
        except TypeError:
            return "(factory)"
        if hasattr(value, "model_dump"):
            return "see below" if value.model_dump() else "{}"
        return f"`{value!r}`"
    if field.is_required():
        return "**required**"
    return f"`{field.default!r}`"


def config_table(path: str, own_fields_only: bool | None = None) -> str:
    from physicsml_like.config.model import ModelConfig

    model = _load(path)
    fields = dict(model.model_fields)
    if own_fields_only is None:
        own_fields_only = issubclass(model, ModelConfig) and model is not ModelConfig
    if own_fields_only:
        fields = {k: v for k, v in fields.items() if k not in ModelConfig.model_fields}
    rows = ["| field | type | default | description |", "|---|---|---|---|"]
    for name, field in fields.items():
        description = " ".join((field.description or "").split()).replace("|", "\\|")
        rows.append(f"| `{name}` | {_type_name(field.annotation)} | {_default(field)} | {description} |")
    return "\n".join(rows)


def on_page_markdown(markdown: str, **kwargs: Any) -> str:
    def replace(match: re.Match[str]) -> str:
        own = match.group(2)
        return config_table(match.group(1), None if own is None else own == "True")

    return _RESULTS_CALL.sub(lambda match: benchmark_results(match.group(1)), _CALL.sub(replace, markdown))


_ROLE = re.compile(r":(?:meth|class|func|attr|mod|data|exc|obj):(?=<code>)")


def on_page_content(html: str, **kwargs: Any) -> str:
    return _ROLE.sub("", html)


# the notebook converter's page template imports mermaid from a CDN for diagrams, which these
# notebooks do not have: without the script the site needs no network at all
_MERMAID = re.compile(r'<script type="module">(?:(?!</script>).)*?mermaid(?:(?!</script>).)*?</script>', re.DOTALL)


def on_post_page(output: str, **kwargs: Any) -> str:
    return _MERMAID.sub("", output)


def benchmark_results(name: str) -> str:
    """The results file, headings one level down; a clear note when it has not been produced."""
    path = _RESULTS / name
    if not path.exists():
        return f"*No results yet: run the benchmark to write `benchmarks/results/{name}`.*"
    return re.sub(r"^(#+) ", lambda m: "#" + m.group(1) + " ", path.read_text(), flags=re.MULTILINE)
