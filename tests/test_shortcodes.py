"""Hugo shortcodes: parsing by Hugo's rules, expansion through real templates,
the rendered bodies, and what ``feedpub check`` says about them."""

from __future__ import annotations

import pickle
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from feedpub.collector import collect
from feedpub.config import Config, load_config
from feedpub.content.links import PostNames
from feedpub.content.mdcode import code_ranges
from feedpub.content.render import RenderContext, expand_post, render_context, render_post
from feedpub.content.shortcode_syntax import MAX_DEPTH, Note, parse
from feedpub.content.shortcodes import ShortcodeTemplates
from feedpub.errors import RenderError
from feedpub.model import Post, RenderedPost
from tests.test_cli import _run

CONFIG = """\
site:
  title: T
  url: "https://e.org/"
  params: {canonical_url: "https://canon.example/path", Nested: {Key: deep}}
"""


def _site(tmp_path: Path, posts: dict[str, str], templates: dict[str, str] | None = None) -> Config:
    (tmp_path / "config.yaml").write_text(CONFIG, encoding="utf-8")
    for name, text in posts.items():
        path = tmp_path / "content" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    for name, text in (templates or {}).items():
        path = tmp_path / "templates" / "shortcodes" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return load_config(tmp_path / "config.yaml")


def _post(body: str, front: str = "") -> str:
    return f"---\ntitle: A post\ndate: 2026-01-01\n{front}---\n{body}"


def _rendered(tmp_path: Path, body: str, front: str = "", **site: str) -> RenderedPost:
    config = _site(tmp_path, {"posts/a.md": _post(body, front), **site})
    post, context = _first(config)
    return render_post(post, 70, context)


def _first(config: Config) -> tuple[Post, RenderContext]:
    posts = collect(config.content, config.site).posts
    context = render_context(config, PostNames(p.rel_path for p in posts))
    return next(p for p in posts if p.rel_path == "posts/a.md"), context


def _expanded(tmp_path: Path, body: str) -> tuple[str, dict[str, str], tuple[Note, ...]]:
    config = _site(tmp_path, {"posts/a.md": _post(body)})
    expansion = expand_post(*_first(config))
    return expansion.markdown, dict(expansion.parts), expansion.notes


# -- parsing -------------------------------------------------------------------


def _calls(source: str) -> list[tuple[str, tuple[object, ...], dict[str, object], bool]]:
    notes: list[Note] = []
    nodes = parse(source, notes)
    assert notes == []
    return [
        (n.tag.name, n.tag.args, dict(n.tag.params), n.inner is not None)
        for n in nodes
        if not isinstance(n, str) and hasattr(n, "tag")
    ]


def test_arguments_are_read_as_hugo_reads_them() -> None:
    # The values Hugo 0.168 gives .Params for these calls (checked with the binary).
    assert _calls('{{< show 1 2.5 true "q" `r` >}}') == [
        ("show", (1, 2.5, True, "q", "r"), {}, False)
    ]
    assert _calls('{{< show a=1 b="two words" c=`raw "q"` >}}') == [
        ("show", (), {"a": 1, "b": "two words", "c": 'raw "q"'}, False)
    ]
    assert _calls('{{< show k="a\\"b" >}}') == [("show", (), {"k": 'a"b'}, False)]
    assert _calls('{{< figure\n  src=/a.jpg\n  alt="A cat"\n/>}}') == [
        ("figure", (), {"src": "/a.jpg", "alt": "A cat"}, False)
    ]
    assert _calls("{{< x `line one\nline two` >}}") == [("x", ("line one\nline two",), {}, False)]


def test_tags_pair_up_by_name_and_nest() -> None:
    notes: list[Note] = []
    nodes = parse("{{< a >}}1{{< b />}}{{% c %}}2{{% /c %}}{{< /a >}}{{< d >}}", notes)
    outer, last = nodes[1], nodes[3]
    assert outer.tag.name == "a" and last.tag.name == "d" and last.inner is None  # type: ignore[union-attr]
    inner = outer.inner  # type: ignore[union-attr]
    assert inner[0] == "1"
    assert [n.tag.name for n in inner if hasattr(n, "tag")] == ["b", "c"]
    assert notes == []


@pytest.mark.parametrize(
    ("source", "reason"),
    [
        ('{{< x a=1 "b" >}}', "named and positional arguments cannot be mixed"),
        ("{{< x a/b >}}", "quote an argument"),
        ('{{< x "open >}}\n', "a quoted argument is not closed on its line"),
        ("{{< >}}", "a shortcode needs a name"),
        ("{{< x ", "'x' is not closed with >}}"),
    ],
)
def test_a_malformed_tag_is_reported_and_left_out(source: str, reason: str) -> None:
    notes: list[Note] = []
    nodes = parse(f"before {source} after", notes)
    text = "".join(n for n in nodes if isinstance(n, str))
    assert len(notes) == 1 and reason in notes[0].message
    assert "{{<" not in text and text.startswith("before ")


def test_code_ranges_follow_markdown_blocks_and_spans() -> None:
    source = "a `x` b\n\n```\nc\n```\n\n    d\n\n- item\n\n    e\n"
    found = [source[s:e] for s, e in code_ranges(source)]
    assert found == ["`x`", "```\n", "c\n", "```\n", "    d\n"]  # "e" is the item's paragraph


# -- expansion -------------------------------------------------------------------


def test_param_in_a_link_target_and_in_text(tmp_path: Path) -> None:
    rendered = _rendered(
        tmp_path,
        "Read [it]({{% param canonical_url %}}), {{< param mood >}}, {{% param nested.key %}}.\n",
        front="mood: happy\ncanonical_url: https://own.example/\n",
    )
    assert rendered.html == ('<p>Read <a href="https://own.example/">it</a>, happy, deep.</p>\n')


def test_param_falls_back_to_site_params_and_reports_a_missing_one(tmp_path: Path) -> None:
    markdown, _, notes = _expanded(
        tmp_path, "[a]({{% param CANONICAL_URL %}}) {{% param nope %}}\n"
    )
    assert markdown == "[a](https://canon.example/path) \n"
    assert [n.message for n in notes] == [
        "param 'nope' is neither in the front matter nor in site.params"
    ]


def test_youtube_becomes_a_linked_thumbnail(tmp_path: Path) -> None:
    rendered = _rendered(tmp_path, "Intro.\n\n{{< youtube dQw4w9WgXcQ >}}\n\nAfter.\n")
    watch = "https://www.youtube.com/watch?v=dQw4w9WgXcQ"
    assert f'<a href="{watch}"><img src="https://i.ytimg.com/vi/dQw4w9WgXcQ/hqdefault.jpg"' in (
        rendered.html
    )
    assert "<p>{{" not in rendered.html and "iframe" not in rendered.html
    assert rendered.html.startswith("<p>Intro.</p>\n<figure") and rendered.html.endswith(
        "<p>After.</p>\n"
    )


@pytest.mark.parametrize(
    ("call", "url"),
    [
        ("{{< vimeo 19899678 >}}", "https://vimeo.com/19899678"),
        (
            '{{< x user="SanDiegoZoo" id="1453110110599868418" >}}',
            "https://x.com/SanDiegoZoo/status/1453110110599868418",
        ),
        ("{{< tweet 1453110110599868418 >}}", "https://x.com/i/status/1453110110599868418"),
        ("{{< instagram CxOWiQNP2MO >}}", "https://www.instagram.com/p/CxOWiQNP2MO/"),
        ("{{< gist spf13 7896402 >}}", "https://gist.github.com/spf13/7896402"),
    ],
)
def test_embeds_feeds_cannot_show_become_links(tmp_path: Path, call: str, url: str) -> None:
    html = _rendered(tmp_path, f"{call}\n").html
    assert html == f'<p class="{html.split(chr(34))[1]}"><a href="{url}">{url}</a></p>\n'


def test_figure_with_a_markdown_caption(tmp_path: Path) -> None:
    html = _rendered(
        tmp_path, '{{< figure src="cat.jpg" caption="A *white* cat" link="/big.jpg" >}}\n'
    ).html
    assert html == (
        "<figure>\n"
        '<a href="https://e.org/big.jpg"><img src="https://e.org/posts/a/cat.jpg" alt="A white cat">\n'
        "</a><figcaption>\n<p>A <em>white</em> cat</p>\n</figcaption>\n</figure>\n"
    )


def test_comment_highlight_and_details(tmp_path: Path) -> None:
    html = _rendered(
        tmp_path,
        "{{< comment >}}secret plans{{< /comment >}}\n\n"
        "{{< highlight go >}}\nif a < b {}\n{{< /highlight >}}\n\n"
        '{{< details summary="More *info*" >}}\n**Bold** text.\n{{< /details >}}\n',
    ).html
    assert "secret" not in html
    assert '<pre><code class="language-go">if a &lt; b {}</code></pre>' in html
    assert (
        "<details>\n<summary>More <em>info</em></summary>\n<p><strong>Bold</strong> text.</p>"
        in html
    )


def test_escapes_show_the_tag_and_code_runs_shortcodes_as_hugo_does(tmp_path: Path) -> None:
    """Hugo expands shortcodes in code too (that is what the escapes are for);
    code that only looks like a shortcode stays as written."""
    html = _rendered(
        tmp_path,
        "Write {{</* youtube ID */>}} or {{%/* param x */%}}.\n\n"
        "```\n{{</* figure src=a */>}} v{{< param version >}} {{< .Title >}}\n```\n\n"
        "Inline `{{% param version %}}`.\n\n    {{< param version >}}\n",
        "version: 0.9.2\n",
    ).html
    assert html == (
        "<p>Write {{&lt; youtube ID &gt;}} or {{% param x %}}.</p>\n"
        "<pre><code>{{&lt; figure src=a &gt;}} v0.9.2 {{&lt; .Title &gt;}}\n</code></pre>\n"
        "<p>Inline <code>0.9.2</code>.</p>\n"
        "<pre><code>0.9.2\n</code></pre>\n"
    )


def test_a_shortcode_in_an_indented_list_paragraph_is_expanded(tmp_path: Path) -> None:
    html = _rendered(tmp_path, "1. Step\n\n    {{< youtube abc >}}\n").html
    assert "i.ytimg.com/vi/abc/" in html and "{{" not in html


def test_unknown_shortcodes_keep_what_they_enclose(tmp_path: Path) -> None:
    markdown, parts, notes = _expanded(
        tmp_path,
        "{{< notice warning >}}Keep **this**{{< /notice >}} and {{< gone />}}{{< gone >}}.\n",
    )
    assert markdown == "Keep **this** and .\n" and parts == {}
    assert [n.unknown for n in notes] == ["notice", "gone", "gone"]


def test_html_output_is_not_read_as_markdown_and_site_templates_win(tmp_path: Path) -> None:
    config = _site(
        tmp_path,
        {"posts/a.md": _post("{{< raw >}}\n\nSee {{< youtube abc >}} and {{% md %}}.\n")},
        {
            "raw.html.j2": "<p>*not emphasis* {{ page.title }} {{ site.title }}</p>",
            "youtube.html.j2": '<span class="mine">{{ get(0) }}</span>',
            "md.html.j2": "*emphasis* {{ args | length }}",
        },
    )
    html = render_post(*_with_length(_first(config))).html
    assert html == (
        "<p>*not emphasis* A post T</p>\n"
        '<p>See <span class="mine">abc</span> and <em>emphasis</em> 0.</p>\n'
    )


def _with_length(found: tuple[Post, RenderContext]) -> tuple[Post, int, RenderContext]:
    return found[0], 70, found[1]


def test_arguments_and_front_matter_are_escaped(tmp_path: Path) -> None:
    config = _site(
        tmp_path,
        {"posts/a.md": _post('{{< show "<b>x</b>" >}}\n', front='note: "<i>y</i>"\n')},
        {"show.html.j2": "<p>{{ get(0) }} {{ page.note }}</p>"},
    )
    html = render_post(*_with_length(_first(config))).html
    assert html == "<p>&lt;b&gt;x&lt;/b&gt; &lt;i&gt;y&lt;/i&gt;</p>\n"


def test_nested_markdown_shortcode_inside_html_one_is_rendered(tmp_path: Path) -> None:
    config = _site(
        tmp_path,
        {
            "posts/a.md": _post(
                "{{< wrap >}}outer {{% wrap %}}*nested md*{{% /wrap %}} end{{< /wrap >}}\n"
            )
        },
        {"wrap.html.j2": '<span class="w">{{ inner }}</span>'},
    )
    html = render_post(*_with_length(_first(config))).html
    # As Hugo 0.168 renders it: the inner {{% %}} is Markdown, the outer's inner HTML.
    assert html == '<span class="w">outer <span class="w"><em>nested md</em></span> end</span>\n'


def test_ref_names_another_post_by_its_permalink(tmp_path: Path) -> None:
    config = _site(
        tmp_path,
        {
            "posts/a.md": _post(
                'See [b]({{< ref "b.md#part" >}}), [c]({{% relref "/posts/c" %}}), [x]({{< ref missing >}}).\n'
            ),
            "posts/b.md": "---\ntitle: Bee\ndate: 2026-01-01\nslug: the-b\n---\nB\n",
            "posts/c.md": "---\ntitle: Sea\ndate: 2026-01-01\nslug: sea\n---\nC\n",
        },
    )
    post, context = _first(config)
    html = render_post(post, 70, context).html
    assert html == (
        '<p>See <a href="https://e.org/posts/the-b/#part">b</a>, '
        '<a href="https://e.org/posts/sea/">c</a>, <a href="https://e.org/posts/a/">x</a>.</p>\n'
    )
    assert [n.message for n in expand_post(post, context).notes] == ["ref 'missing' names no post"]


def test_shortcode_text_does_not_open_the_summary(tmp_path: Path) -> None:
    rendered = _rendered(
        tmp_path,
        "{{< youtube abc >}}\n\n{{< figure src=a.jpg caption=Cap >}}\n\nThe story begins.\n",
    )
    assert rendered.summary == "The story begins."


def test_a_failing_site_template_is_a_render_error(tmp_path: Path) -> None:
    config = _site(
        tmp_path, {"posts/a.md": _post("x\n\n{{< bad >}}\n")}, {"bad.html.j2": "{{ nothing_here }}"}
    )
    with pytest.raises(RenderError, match=r"body line 3: shortcode 'bad': .*nothing_here"):
        render_post(*_with_length(_first(config)))


def test_placeholders_never_take_the_number_of_a_lookalike_in_the_text(tmp_path: Path) -> None:
    markdown, parts, _ = _expanded(tmp_path, "FPSC0CSPF and {{< youtube abc >}} FPSC1CSPF\n")
    assert markdown == "FPSC0CSPF and FPSC2CSPF FPSC1CSPF\n" and list(parts) == ["FPSC2CSPF"]


def test_the_render_context_pickles_and_renders_the_same(tmp_path: Path) -> None:
    config = _site(tmp_path, {"posts/a.md": _post("{{< youtube abc >}}\n")})
    post, context = _first(config)
    first = render_post(post, 70, context)
    copy = pickle.loads(pickle.dumps(context))
    assert copy == context and isinstance(copy.shortcodes, ShortcodeTemplates)
    assert render_post(post, 70, copy) == first


# -- hostile input ---------------------------------------------------------------


HOSTILE = {
    "openers": "{{<" * 100_000,
    "raw": "{{< a `" + "x" * 300_000,
    "quotes": '{{< a "' * 50_000,
    "bare": "{{< a b=" + "x{{< a b=" * 30_000,
    "deep": "{{< d >}}" * 20_000 + "{{< /d >}}" * 20_000,
    "escapes": "{{</* " * 50_000,
    "closers": "{{< /x >}}" * 50_000,
    "list": "- a\n" * 20_000 + "{{< y >}}\n",
}


@pytest.mark.parametrize("source", HOSTILE.values(), ids=HOSTILE.keys())
def test_hostile_bodies_finish_quickly_without_delimiters(tmp_path: Path, source: str) -> None:
    started = time.perf_counter()
    markdown, _, _ = _expanded(tmp_path, source)
    assert time.perf_counter() - started < 20
    assert "{{<" not in markdown and "{{%" not in markdown


def test_many_code_spans_with_shortcodes_are_expanded_in_bounded_time(tmp_path: Path) -> None:
    source = "`{{< y >}}` " * 20_000 + "{{< y >}}"
    started = time.perf_counter()
    markdown, _, notes = _expanded(tmp_path, source)
    assert time.perf_counter() - started < 20  # a stall guard, not a speed target
    assert markdown == "`` " * 20_000 and {n.unknown for n in notes} - {None} == {"y"}


def test_nesting_deeper_than_the_limit_loses_only_the_extra_tags(tmp_path: Path) -> None:
    depth = MAX_DEPTH + 5
    source = "{{< d >}}" * depth + "core" + "{{< /d >}}" * depth
    markdown, _, notes = _expanded(tmp_path, source)
    assert markdown == "core"
    assert [n.message for n in notes if n.unknown is None] == [
        f"shortcodes nested more than {MAX_DEPTH} deep: their tags are left out"
    ]


FRAGMENTS = st.sampled_from(
    [
        "{{<",
        "{{%",
        ">}}",
        "%}}",
        "/*",
        "*/",
        " x ",
        "/",
        '"',
        "`",
        "\n",
        "\n\n",
        "    ",
        "=",
        "a",
        "```\n",
        "youtube",
        "/x",
        "- ",
    ]
)


@settings(max_examples=300, deadline=None)
@given(st.lists(FRAGMENTS, max_size=40))
def test_no_opening_delimiter_survives_outside_code(
    tmp_path_factory: pytest.TempPathFactory, parts: list[str]
) -> None:
    source = "".join(parts)
    notes: list[Note] = []
    nodes = parse(source, notes)
    text = "".join(n for n in nodes if isinstance(n, str))
    code = code_ranges(source)
    if not code:
        assert "{{<" not in text and "{{%" not in text


# -- feedpub check ---------------------------------------------------------------


def test_check_names_each_unknown_shortcode_once_with_the_template_to_add(tmp_path: Path) -> None:
    _site(
        tmp_path,
        {
            "posts/a.md": _post("Text.\n\n{{< notice >}}x{{< /notice >}}\n{{< notice />}}\n"),
            "posts/b.md": "---\ntitle: B\ndate: 2026-01-01\n---\n{{< notice >}}\n{{< youtube >}}\n{{% param nope %}}\n",
        },
    )
    result = _run("check", "--config", str(tmp_path / "config.yaml"))
    template = tmp_path / "templates" / "shortcodes" / "notice.html.j2"
    assert result.stderr.splitlines() == [
        f"{tmp_path}/content/posts/a.md:7: warning: shortcode 'notice' has no template: add {template} to show it"
        " (until then its tags are left out and what they enclose is kept)",
        f"{tmp_path}/content/posts/b.md:7: warning: param 'nope' is neither in the front matter nor in site.params",
    ]
    assert result.returncode == 0
    assert result.stdout.rstrip().endswith("0 errors, 2 warnings")
    assert _run("check", "--strict", "--config", str(tmp_path / "config.yaml")).returncode == 1


def test_check_reports_a_broken_template_as_an_error(tmp_path: Path) -> None:
    _site(tmp_path, {"posts/a.md": _post("{{< bad >}}\n")}, {"bad.html.j2": "{% if %}"})
    result = _run("check", "--config", str(tmp_path / "config.yaml"))
    assert result.returncode == 1
    assert f"{tmp_path}/content/posts/a.md:5: shortcode 'bad': " in result.stderr
