"""Hugo shortcodes in a post's Markdown, expanded before the Markdown is rendered.

``shortcode_syntax`` reads the tags; this module expands them.

Expansion follows hugolib/shortcode.go: the output of ``{{% %}}`` goes into the
Markdown; the output of ``{{< >}}`` is HTML, so it goes in as a placeholder
(``FPSC<n>CSPF``) whose HTML ``render_body`` puts in place. A shortcode alone
on its line(s) is a block: its placeholder gets a paragraph of its own. Inside
a ``{{< >}}`` the inner text is HTML, and a nested ``{{% %}}`` has its inner
rendered as Markdown first, as in Hugo.

Where feedpub differs from Hugo, on purpose: a shortcode without a template is
no error: its tags are left out and what they enclose is kept.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from markupsafe import Markup

from feedpub.config import SiteConfig
from feedpub.content.shortcode_syntax import Call, Literal, Node, Note, parse
from feedpub.errors import RenderError
from feedpub.model import Post
from feedpub.theme import shortcode_template, template_path

# The names the pass itself handles, whatever the templates say.
DROPPED = frozenset({"comment"})

PLACEHOLDER = re.compile(r"FPSC([0-9]+)CSPF")
_WRAPPED_PLACEHOLDER = re.compile(r"<p>(FPSC[0-9]+CSPF)</p>|FPSC[0-9]+CSPF")
_MARKDOWN_PUNCTUATION = re.compile(r"([!-/:-@\[-`{-~])")
_SINGLE_PARAGRAPH = re.compile(r"\A<p>((?:(?!<p[ >]).)*)</p>\s*\Z", re.DOTALL)

Resolve = Callable[[str], "str | None"]
Markdownify = Callable[[str], str]


@dataclass(frozen=True, slots=True)
class Expansion:
    """The body with every shortcode expanded, the HTML of the placeholders it
    holds, and what went wrong on the way."""

    markdown: str
    parts: Mapping[str, str]
    notes: tuple[Note, ...]


# -- templates ---------------------------------------------------------------


class ShortcodeTemplates:
    """The templates shortcodes render with: ``shortcodes/NAME.html.j2`` in the
    site's templates folder, then the built-in ones.

    Compiled templates are kept for the object's life; it pickles as its folder
    alone, so a worker process gets a fresh one."""

    def __init__(self, templates_dir: Path) -> None:
        self.templates_dir = templates_dir
        self._environment: Any = None
        self._known: dict[str, bool] = {}

    def __getstate__(self) -> Path:
        return self.templates_dir

    def __setstate__(self, templates_dir: Path) -> None:
        self.__init__(templates_dir)  # type: ignore[misc]

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ShortcodeTemplates) and other.templates_dir == self.templates_dir

    def __hash__(self) -> int:
        return hash(self.templates_dir)

    def __repr__(self) -> str:
        return f"ShortcodeTemplates({self.templates_dir!r})"

    def has(self, name: str) -> bool:
        """Whether a template for shortcode ``name`` exists (site's or built in)."""
        if name not in self._known:
            found = template_path(self.templates_dir, shortcode_template(name))
            self._known[name] = found.is_file()
        return self._known[name]

    def render(self, name: str, context: dict[str, Any]) -> str:
        # Imported here: jinja2 and the catalogs load only for a post that has a
        # shortcode, not for every build that renders a body.
        from feedpub import templating

        if self._environment is None:
            self._environment = templating.shortcode_environment(self.templates_dir)
        return templating.render(self._environment, shortcode_template(name), context)


# -- expansion ---------------------------------------------------------------


def front_matter(post: Post) -> dict[str, Any]:
    """What templates and ``param`` read as the page's front matter: the other
    keys as written, then the fields feedpub reads, under Hugo's names."""
    return {
        **post.extra,
        "title": post.title,
        "date": post.date,
        "lastmod": post.updated,
        "draft": post.draft,
        "tags": list(post.tags),
        "categories": list(post.categories),
        "author": post.author.name,
        "summary": post.summary,
        "slug": post.slug,
        "source_url": post.source_url,
        "permalink": post.url,
    }


def _lookup(values: Mapping[str, Any], key: str) -> Any:
    """``key`` in ``values``, ignoring case; dots step into mappings (``a.b``)."""
    found: Any = values
    for part in key.lower().split("."):
        if not isinstance(found, Mapping):
            return None
        found = {str(name).lower(): value for name, value in found.items()}.get(part)
        if found is None:
            return None
    return found


def _display(value: Any) -> str:
    """A front-matter value as text, as Hugo prints it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple):
        return ", ".join(_display(item) for item in value)
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def unwrap_paragraph(html_text: str) -> str:
    """HTML of one paragraph without its ``<p>``, as Hugo's ``markdownify`` gives it."""
    single = _SINGLE_PARAGRAPH.match(html_text)
    return single.group(1) if single else html_text


def _literal_markdown(text: str) -> str:
    """Text that Markdown shows exactly as written."""
    return _MARKDOWN_PUNCTUATION.sub(r"\\\1", text)


@dataclass
class _Expander:
    page: Mapping[str, Any]
    site: SiteConfig
    templates: ShortcodeTemplates
    resolve: Resolve | None
    markdownify: Markdownify
    number: int
    parts: dict[str, str] = field(default_factory=dict)
    notes: list[Note] = field(default_factory=list)

    def render(self, nodes: Sequence[Node], in_html: bool) -> str:
        return "".join(self._node(node, in_html) for node in nodes)

    def _node(self, node: Node, in_html: bool) -> str:
        if isinstance(node, str):
            return node
        if isinstance(node, Literal):
            return node.text if node.code or in_html else _literal_markdown(node.text)
        tag = node.tag
        if tag.name in DROPPED:
            return ""
        if tag.name.endswith(".inline"):
            self.notes.append(
                Note(node.line, f"inline shortcode {tag.name!r} is not run; left out")
            )
            return ""
        if not self.templates.has(tag.name):
            self.notes.append(
                Note(node.line, f"no template for shortcode {tag.name!r}", unknown=tag.name)
            )
            return "" if node.inner is None else self.render(node.inner, in_html)
        if tag.markdown:
            inner = None if node.inner is None else self.render(node.inner, in_html=False)
            if inner is not None and in_html:
                rendered = self.markdownify(inner)
                inner = rendered if "\n" in inner else unwrap_paragraph(rendered)
            # Line breaks a template's own lines leave around its output would
            # end a paragraph or break a link target.
            return self._template(node, inner).strip("\n")
        inner = None if node.inner is None else self.render(node.inner, in_html=True)
        output = _WRAPPED_PLACEHOLDER.sub(self._part_of, self._template(node, inner).strip())
        placeholder = f"FPSC{self.number}CSPF"
        self.number += 1
        self.parts[placeholder] = output
        return placeholder if node.block is None else f"\n{node.block}{placeholder}\n"

    def _part_of(self, found: re.Match[str]) -> str:
        name = found.group(1) or found.group(0)
        return self.parts.get(name, found.group(0))

    def _template(self, call: Call, inner: str | None) -> str:
        tag = call.tag

        def get(key: int | str, default: Any = "") -> Any:
            if isinstance(key, int):
                return tag.args[key] if 0 <= key < len(tag.args) else default
            return tag.params.get(key, default)

        def param(key: object) -> str:
            value = _lookup(self.page, str(key))
            if value is None:
                value = _lookup(self.site.params, str(key))
            if value is None:
                self.notes.append(
                    Note(
                        call.line,
                        f"param {key!r} is neither in the front matter nor in site.params",
                    )
                )
                return ""
            return _display(value)

        def ref(target: object) -> str:
            url = None if self.resolve is None else self.resolve(str(target))
            if url is None:
                self.notes.append(Note(call.line, f"{tag.name} {target!r} names no post"))
                return "#"
            return url

        def markdownify(text: object, block: bool = False) -> Markup:
            rendered = self.markdownify(str(text))
            return Markup(rendered if block else unwrap_paragraph(rendered))

        context = {
            "name": tag.name,
            "args": list(tag.args),
            "params": dict(tag.params),
            "is_named": bool(tag.params),
            "inner": Markup(inner or ""),
            "inner_text": inner or "",
            "has_inner": inner is not None,
            "get": get,
            "page": self.page,
            "site": self.site,
            "param": param,
            "ref": ref,
            "markdownify": markdownify,
        }
        try:
            return self.templates.render(tag.name, context)
        except RenderError as exc:
            self.notes.append(Note(call.line, f"shortcode {tag.name!r}: {exc}", error=True))
            return ""


def expand_shortcodes(
    source: str,
    page: Mapping[str, Any],
    site: SiteConfig,
    templates: ShortcodeTemplates,
    resolve: Resolve | None,
    markdownify: Markdownify,
) -> Expansion:
    """Expand every shortcode in the Markdown ``source`` of the post whose front
    matter is ``page`` (see ``front_matter``). ``resolve`` gives the permalink a
    ``ref`` names; ``markdownify`` renders Markdown to HTML."""
    if "{{<" not in source and "{{%" not in source:
        return Expansion(source, {}, ())
    notes: list[Note] = []
    nodes = parse(source, notes)
    taken = [int(number) for number in PLACEHOLDER.findall(source)]
    expander = _Expander(page, site, templates, resolve, markdownify, max(taken, default=-1) + 1)
    markdown = expander.render(nodes, in_html=False)
    shown = {found.group(0) for found in PLACEHOLDER.finditer(markdown)}
    parts = {name: part for name, part in expander.parts.items() if name in shown}
    return Expansion(markdown, parts, (*notes, *expander.notes))
