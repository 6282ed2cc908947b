"""The documentation site builds without a warning (tables generated from the configs)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_docs_build_strict(tmp_path: Path) -> None:
    if shutil.which("mkdocs") is None and not (Path(sys.executable).parent / "mkdocs").exists():
        pytest.fail("mkdocs is not installed: it is part of the test extras")
    mkdocs = str(Path(sys.executable).parent / "mkdocs") if (Path(sys.executable).parent / "mkdocs").exists() else "mkdocs"
    done = subprocess.run([mkdocs, "build", "--strict", "--site-dir", str(tmp_path / "site")], cwd=ROOT,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-4000:]
    page = (tmp_path / "site" / "data" / "index.html").read_text()
    assert "cut_off" in page and "Neighbour-list cutoff radius" in page  # generated from the config
    api = (tmp_path / "site" / "api" / "index.html").read_text()
    assert ":meth:" not in api and ":class:" not in api  # roles render as code
    for name in ("MACEModelConfig", "TensorNetModel", "load_dataset", "DataError", "ConfigError"):
        assert name in api, name
    assert (tmp_path / "site" / "notebooks" / "01_quickstart" / "index.html").exists()
    for page in (tmp_path / "site").rglob("*.html"):  # the site needs no network: no CDN scripts or styles
        text = page.read_text()
        assert not re.search(r'(src|href)="https?://[^"]*\.(js|mjs|css)"|import\("https?://', text), page
    for family in ("egnn", "ani", "tensornet", "painn", "mace", "nequip", "allegro"):  # an introduction, not a bare table
        intro = (tmp_path / "site" / "models" / family / "index.html").read_text()
        assert "When to use it" in intro or "<pre" in intro, family
    highlighted = (tmp_path / "site" / "quickstart" / "index.html").read_text()
    assert 'class="highlight"' in highlighted and "highlight.js" not in highlighted  # Pygments at build time
