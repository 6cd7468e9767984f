"""jinja2 for every template feedpub renders: the digest, its email and the web pages.

Chrome text is marked with ``_()``, ``ngettext()``, ``pgettext()`` or ``{% trans %}``
and comes from the message catalog of the rendered ``site.language``; dates go
through the ``format_date`` filter.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import jinja2

from feedpub.errors import RenderError
from feedpub.locale import Catalog, Catalogs
from feedpub.theme import search_path


def environment(templates_dir: Path, **filters: Any) -> jinja2.Environment:
    """A jinja2 environment over the site's templates and the built-in ones;
    autoescaping for ``*.html.j2``, undefined names are errors, chrome text
    from the message catalogs."""
    env = _environment(templates_dir, keep_trailing_newline=True)
    env.filters.update(filters)
    return env


def shortcode_environment(templates_dir: Path) -> jinja2.Environment:
    """The environment of shortcode templates: as ``environment``, but the
    newline that ends a template file is not output, so that a shortcode in
    running text (a link target, say) adds no line break."""
    return _environment(templates_dir, keep_trailing_newline=False)


def _environment(templates_dir: Path, keep_trailing_newline: bool) -> jinja2.Environment:
    loader = jinja2.FileSystemLoader(search_path(templates_dir))
    env = jinja2.Environment(
        loader=loader,
        autoescape=jinja2.select_autoescape(enabled_extensions=("html.j2",), default=False),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=keep_trailing_newline,
        extensions=["jinja2.ext.i18n"],
    )
    _install_catalogs(env, Catalogs())
    return env


def _install_catalogs(env: jinja2.Environment, catalogs: Catalogs) -> None:
    """gettext functions and the ``format_date`` filter, each reading the catalog
    of the language of the site in the context being rendered."""

    def catalog(context: jinja2.runtime.Context) -> Catalog:
        return catalogs.for_language(context["site"].language)

    @jinja2.pass_context
    def gettext(context: jinja2.runtime.Context, message: str) -> str:
        return catalog(context).gettext(message)

    @jinja2.pass_context
    def ngettext(context: jinja2.runtime.Context, singular: str, plural: str, count: int) -> str:
        return catalog(context).ngettext(singular, plural, count)

    @jinja2.pass_context
    def pgettext(context: jinja2.runtime.Context, message_context: str, message: str) -> str:
        return catalog(context).pgettext(message_context, message)

    @jinja2.pass_context
    def format_date(context: jinja2.runtime.Context, day: date | str) -> str:
        """A date, or one written as YYYY-MM-DD, as the language writes dates."""
        return catalog(context).format_date(
            day if isinstance(day, date) else date.fromisoformat(day)
        )

    env.install_gettext_callables(  # type: ignore[attr-defined]
        gettext=gettext, ngettext=ngettext, pgettext=pgettext, newstyle=True
    )
    env.filters["format_date"] = format_date


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
