"""Finding templates: the site's own folder first, then feedpub's built-in ones."""

from __future__ import annotations

import importlib.util
from pathlib import Path

# Where a site keeps its shortcodes, as a Hugo site keeps layouts/shortcodes/.
SHORTCODE_FOLDER = "shortcodes"


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


def shortcode_template(name: str) -> str:
    """Where the template of shortcode ``name`` lives in a templates folder."""
    return f"{SHORTCODE_FOLDER}/{name}.html.j2"


def shortcode_sources(templates_dir: Path) -> tuple[tuple[str, bytes], ...]:
    """Every shortcode template of the site's own folder, by name, with its
    bytes: what a cache of rendered bodies must be keyed on."""
    folder = templates_dir / SHORTCODE_FOLDER
    if not folder.is_dir():
        return ()
    files = sorted(p for p in folder.rglob("*.html.j2") if p.is_file())
    return tuple((p.relative_to(folder).as_posix(), p.read_bytes()) for p in files)
