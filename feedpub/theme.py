"""Finding templates: the site's own folder first, then feedpub's built-in ones."""

from __future__ import annotations

import importlib.util
from pathlib import Path


def builtin_templates_dir() -> Path:
    # find_spec, not importlib.resources: that import alone costs every run
    # several milliseconds. The templates are installed as plain files.
    spec = importlib.util.find_spec("feedpub.templates")
    locations = spec.submodule_search_locations if spec is not None else None
    if not locations:
        raise RuntimeError("feedpub is installed without its templates; install it again")
    return Path(locations[0])


def search_path(templates_dir: Path) -> tuple[Path, Path]:
    """Where templates are looked for, in order: the site's folder, then feedpub's."""
    return templates_dir, builtin_templates_dir()


def template_path(templates_dir: Path, name: str) -> Path:
    """The site's ``name`` in ``templates_dir`` when it has one, else the built-in one."""
    own, builtin = search_path(templates_dir)
    return own / name if (own / name).is_file() else builtin / name
