"""Finding templates: the site's own folder first, then feedpub's built-in ones."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path


def builtin_templates_dir() -> Path:
    return Path(str(files("feedpub.templates")))


def template_path(templates_dir: Path, name: str) -> Path:
    """The site's ``name`` in ``templates_dir`` when it has one, else the built-in one."""
    own = templates_dir / name
    return own if own.is_file() else builtin_templates_dir() / name
