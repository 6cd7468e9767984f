"""jinja2 for every template feedpub renders: the digest, its email and the web pages."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jinja2

from feedpub.errors import RenderError
from feedpub.theme import builtin_templates_dir


def environment(templates_dir: Path, **filters: Any) -> jinja2.Environment:
    """A jinja2 environment over the site's templates and the built-in ones;
    autoescaping for ``*.html.j2``, undefined names are errors."""
    loader = jinja2.ChoiceLoader(
        [jinja2.FileSystemLoader(templates_dir), jinja2.FileSystemLoader(builtin_templates_dir())]
    )
    env = jinja2.Environment(
        loader=loader,
        autoescape=jinja2.select_autoescape(enabled_extensions=("html.j2",), default=False),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters.update(filters)
    return env


def render(env: jinja2.Environment, name: str, context: dict[str, Any]) -> str:
    """Render template ``name``; a template's own mistake becomes a RenderError
    naming the file and line."""
    try:
        return env.get_template(name).render(context)
    except jinja2.TemplateSyntaxError as exc:
        raise RenderError(f"{exc.filename or name}:{exc.lineno}: {exc.message}") from None
    except jinja2.TemplateNotFound as exc:
        raise RenderError(f"template {exc.name} not found") from None
    except jinja2.UndefinedError as exc:
        raise RenderError(f"{name}: {exc.message}") from None
