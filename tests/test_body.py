from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from lxml import html as lxml_html

from feedpub.content.body import render_body

BASE = "https://example.org/posts/hello/"


def _doc(markdown: str) -> lxml_html.HtmlElement:
    return lxml_html.fragment_fromstring(render_body(markdown, BASE).html, create_parent="div")


def _ids(html: str) -> set[str]:
    doc = lxml_html.fragment_fromstring(html, create_parent="div")
    return {e.get("id") for e in doc.iter() if e.get("id")}


def test_markdown_inside_a_lone_article_tag_is_rendered() -> None:
    doc = _doc("<article>\n## **TL;DR**\n\nText.\n</article>\n")
    assert [h.text_content() for h in doc.iter("h2")] == ["TL;DR"]
    assert doc.find("article") is not None
    assert "##" not in lxml_html.tostring(doc, encoding="unicode")


def test_indented_raw_html_inside_a_container_stays_html() -> None:
    doc = _doc('<div class="box">\n    <p>kept as HTML</p>\n</div>\n')
    assert doc.find(".//pre") is None
    assert doc.find(".//p").text == "kept as HTML"


def test_fenced_code_is_left_alone() -> None:
    doc = _doc("```html\n<div>\n## not a heading\n```\n")
    assert doc.find(".//h2") is None
    assert "## not a heading" in doc.find(".//code").text


def test_tables_and_strikethrough() -> None:
    doc = _doc("| a | b |\n|---|--:|\n| 1 | ~~2~~ |\n")
    assert doc.find(".//table") is not None
    assert doc.find(".//td/s").text == "2"


def test_footnotes_link_as_hugo_writes_them() -> None:
    # Ids and links as Hugo 0.168.0 wrote them for this source.
    doc = _doc("One[^a] two[^b] again[^a].\n\n[^a]: First.\n[^b]: Second.\n")
    refs = [(sup.get("id"), sup.find("a").get("href")) for sup in doc.iterfind(".//sup")]
    assert refs == [
        ("fnref:1", BASE + "#fn:1"),
        ("fnref:2", BASE + "#fn:2"),
        ("fnref1:1", BASE + "#fn:1"),
    ]
    notes = doc.findall(".//li")
    assert [n.get("id") for n in notes] == ["fn:1", "fn:2"]
    assert [a.get("href") for a in notes[0].iter("a")] == [BASE + "#fnref:1", BASE + "#fnref1:1"]
    assert [n.text_content().split(" ↩")[0] for n in notes] == ["First.", "Second."]


def test_unreferenced_footnotes_are_kept_without_a_back_link() -> None:
    doc = _doc("Text[^1].\n\n[^1]: Cited.\n[^2]: Never cited.\n")
    notes = doc.findall(".//li")
    assert len(notes) == 2
    assert "Never cited." in notes[1].text_content()
    assert notes[1].find(".//a") is None


def test_footnote_list_stands_where_the_definitions_were() -> None:
    doc = _doc("Text[^1].\n\n## References\n\n[^1]: Cited.\n\n---\n\nClosing line.\n")
    order = [(e.tag, e.get("class")) for e in doc]
    assert order == [
        ("p", None),
        ("h2", None),
        ("hr", "footnotes-sep"),
        ("section", "footnotes"),
        ("hr", None),
        ("p", None),
    ]


def test_relative_links_and_images_become_absolute() -> None:
    doc = _doc(
        "[up](../other/) [root](/about/) [same](page.html) [abs](https://x.org/) "
        "[mail](mailto:a@b.org) [note](#section)\n\n![pic](img/a.png)\n\n"
        '<a href="raw.html">raw</a> <img src="//cdn.example.net/i.png">\n'
    )
    hrefs = [a.get("href") for a in doc.iter("a")]
    assert hrefs == [
        "https://example.org/posts/other/",
        "https://example.org/about/",
        "https://example.org/posts/hello/page.html",
        "https://x.org/",
        "mailto:a@b.org",
        "https://example.org/posts/hello/#section",
        "https://example.org/posts/hello/raw.html",
    ]
    assert [i.get("src") for i in doc.iter("img")] == [
        "https://example.org/posts/hello/img/a.png",
        "https://cdn.example.net/i.png",
    ]


def test_raw_html_passes_through() -> None:
    doc = _doc('<figure><img src="a.png" alt="A"><figcaption>Cap</figcaption></figure>\n')
    assert doc.find(".//figcaption").text == "Cap"


def test_plain_text_and_more_marker() -> None:
    body = render_body("Intro *one*.\n\n<!--more-->\n\nRest.\n", BASE)
    assert body.before_more == "Intro one."
    assert body.paragraphs == ("Intro one.", "Rest.")
    assert "<!--more-->" not in body.html


def test_footnote_references_leave_no_gap_in_plain_text() -> None:
    body = render_body("风险 [^1]。\n\n[^1]: 来源\n", BASE)
    assert body.paragraphs == ("风险。",)


@given(st.text(max_size=200))
def test_any_markdown_renders_without_active_content(source: str) -> None:
    out = render_body(source + "\n<script>x()</script>", BASE).html
    assert "<script" not in out.lower()


SHORTCODES = {
    "FPSC1CSPF": '<figure class="sc"><img src="fig.png" alt="Fig"><script>x()</script></figure>',
    "FPSC2CSPF": "<kbd>Ctrl</kbd>&amp;<kbd>C</kbd>",
}


def test_a_block_placeholder_takes_the_place_of_its_paragraph() -> None:
    body = render_body("Intro.\n\nFPSC1CSPF\n\nAfter.\n", BASE, parts=SHORTCODES)
    doc = lxml_html.fragment_fromstring(body.html, create_parent="div")
    assert [e.tag for e in doc] == ["p", "figure", "p"]
    assert doc.find("figure/img").get("src") == BASE + "fig.png"
    assert "<script" not in body.html and "x()" not in body.html
    assert body.paragraphs == ("Intro.", "After.")


def test_an_inline_placeholder_is_replaced_in_its_text() -> None:
    body = render_body("Press FPSC2CSPF now.\n", BASE, parts=SHORTCODES)
    assert body.html == "<p>Press <kbd>Ctrl</kbd>&amp;<kbd>C</kbd> now.</p>\n"
    assert body.paragraphs == ("Press Ctrl & C now.",)


def test_no_placeholder_leaks_into_any_output() -> None:
    source = (
        "# Title FPSC2CSPF\n\n- FPSC1CSPF\n\n![FPSC2CSPF](a.png) `FPSC2CSPF`\n\n"
        "<div>FPSC2CSPF</div>\n\n```\nFPSC2CSPF\n```\n\nText[^1].\n\n[^1]: Note FPSC2CSPF.\n"
    )
    body = render_body(source, BASE, parts=SHORTCODES)
    for out in (body.html, body.text, *body.paragraphs):
        assert "FPSC" not in out
    doc = lxml_html.fragment_fromstring(body.html, create_parent="div")
    assert doc.find(".//p/img").get("alt") == "Ctrl & C"
    assert doc.find("h1").get("id") == "title-ctrl--c"
    assert doc.find(".//li/figure") is not None


def test_text_that_only_looks_like_a_placeholder_stays_as_written() -> None:
    body = render_body("Ticket FPSC77CSPF.\n\nFPSC78CSPF\n", BASE, parts=SHORTCODES)
    assert body.html == "<p>Ticket FPSC77CSPF.</p>\n<p>FPSC78CSPF</p>\n"
    assert body.paragraphs == ("Ticket FPSC77CSPF.", "FPSC78CSPF")


def test_links_to_posts_go_through_the_resolver() -> None:
    asked: list[str] = []

    def resolve(target: str) -> str | None:
        asked.append(target)
        return "https://example.org/posts/other/#part" if ".md" in target else None

    body = render_body(
        "[a](../other.md#part) [b](/about/) [c](https://x.org/y.md) [d](#here) ![e](pic.png)\n",
        BASE,
        resolve=resolve,
    )
    doc = lxml_html.fragment_fromstring(body.html, create_parent="div")
    assert [a.get("href") for a in doc.iter("a")] == [
        "https://example.org/posts/other/#part",
        "https://example.org/about/",
        "https://x.org/y.md",
        BASE + "#here",
    ]
    assert doc.find(".//img").get("src") == BASE + "pic.png"
    assert asked == ["../other.md#part", "/about/", "pic.png"]


# Headings and the ids Hugo 0.168.0 (default markup settings, built from these
# lines) gave them, in this order: the numbering runs through the whole list.
HUGO_HEADING_IDS = [
    ("# Hello World", "hello-world"),
    ("## Hello World", "hello-world-1"),
    ("## Hello World", "hello-world-2"),
    ("## 何时发送更新？", "何时发送更新"),
    ("## **TL;DR**", "tldr"),
    ("## Café & Crème", "café--crème"),
    ("## A -- B --- C ---- D", "a--b--c---d"),
    ('## Don\'t "quote" it...', "dont-quote-it"),
    ("## **bold** then *em* and *x* *y*", "bold-then-em-and-x-y"),
    ("## [foo *bar*](https://x.org) baz", "foo--baz"),
    ("## `code span` here", "code-span-here"),
    ("## Foo <em>bar</em> baz", "foo-bar-baz"),
    ("## Under_score 1.2.3", "under_score-123"),
    ("## !!!", "heading"),
    ("## Emoji 🎉 end", "emoji--end"),
    ("## heading", "heading-1"),
    ("## heading-1", "heading-1-1"),
    ("## Explicit {#hello-world-3}", "hello-world-3"),
    ("## Hello World", "hello-world-4"),
    ("## With class {.big #custom-id}", "custom-id"),
    ("## custom-id", "custom-id-1"),
    ("## Trailing #", "trailing"),
    ("Setext one\nline two\n----------", "line-two"),
    ("## Ünïcödé ÀÉÎ", "ünïcödé-àéî"),
    ("## Tab\tsep  double  space", "tabsep--double--space"),
    ("## **Q&A time** rest", "qa-time-rest"),
    ("## &eacute;t&eacute; &amp; co", "été--co"),
    ("## *a -- b* c", "a--c"),
    ("## a\\*b\\_c", "ab_c"),
    ("## ![alt text](i.png) after", "alt-text-after"),
    ("## Привет мир", "привет-мир"),
    ("## ١٢٣ arabic digits ½ ²", "١٢٣-arabic-digits--"),
    ("## x<br>y", "xy"),
    ("## *a'b c* x", "a-x"),
    ('## *a "q" b* x', "a--x"),
    ("## *a \\* b* x", "a--b-x"),
    ("## *a...b c* x", "a-x-1"),
    ("## <https://x.org> auto", "auto"),
    ("## [a](u)[b](v)", "ab"),
    ("## *a **b** c* d", "a--d"),
    ("## *a_b c* x", "a_-x"),
    ("## [`code` rest](u) x", "code-x"),
    ("## ![a *b* c](i.png) x", "a--x-1"),
]


def test_heading_ids_are_the_ones_hugo_gives() -> None:
    doc = _doc("\n\n".join(source for source, _ in HUGO_HEADING_IDS) + "\n")
    headings = [e for e in doc if e.tag in ("h1", "h2")]
    assert [h.get("id") for h in headings] == [wanted for _, wanted in HUGO_HEADING_IDS]
    assert "{" not in lxml_html.tostring(doc, encoding="unicode")


def test_an_empty_heading_gets_no_id() -> None:
    assert _doc("## \n\n## x\n").findall("h2")[0].get("id") is None


def test_heading_attributes_apply_where_the_sanitiser_allows() -> None:
    doc = _doc('## Heading {#my-id .a .b style="color:red" onclick="x()"}\n')
    heading = doc.find("h2")
    assert (heading.get("id"), heading.get("class"), heading.text) == ("my-id", "a b", "Heading")
    assert heading.get("style") is None and heading.get("onclick") is None


def test_braces_that_are_not_attributes_stay_text() -> None:
    doc = _doc("## Set {x} here\n\n## Ends {bad attr}\n\nText with {.inline} braces.\n")
    assert [h.text for h in doc.iter("h2")] == ["Set {x} here", "Ends {bad attr}"]
    assert doc.find("p").text == "Text with {.inline} braces."


def test_block_attributes_go_to_the_block_above_as_in_hugo() -> None:
    # Hugo 0.168.0 with parser.attribute.block on gave each of these blocks the
    # class, dropped the attributes after a blank line and after a code fence,
    # and kept a heading's own id over the one on the line below it.
    doc = _doc(
        "Para one.\n{.border-0}\n\nPara two.\n\n{.solitary}\n\n"
        '| a | b |\n|---|---|\n| 1 | 2 |\n{.table style="color:red"}\n\n'
        "- item a\n- item b\n{.list}\n\n> quote\n{.q}\n\n```\ncode\n```\n{.code-attr}\n\n"
        '## Block attr heading\n{#block-id .hcls}\n\n![img](pic.png)\n{.imgp width="50"}\n'
    )
    shown = [(e.tag, dict(e.attrib)) for e in doc]
    assert shown == [
        ("p", {"class": "border-0"}),
        ("p", {}),
        ("table", {"class": "table"}),
        ("ul", {"class": "list"}),
        ("blockquote", {"class": "q"}),
        ("pre", {}),
        ("h2", {"id": "block-attr-heading", "class": "hcls"}),
        ("p", {"class": "imgp"}),
    ]
    assert "{" not in lxml_html.tostring(doc, encoding="unicode")


def test_media_leave_a_link_to_their_source() -> None:
    body = render_body(
        '<video controls poster="poster.jpg"><source src="clip.mp4" type="video/mp4">'
        "Fallback text</video>\n\n"
        '<iframe src="https://www.youtube.com/embed/abc" title="YouTube player"></iframe>\n\n'
        'Listen: <audio src="talk.mp3" controls></audio> <video></video>\n',
        BASE,
    )
    doc = lxml_html.fragment_fromstring(body.html, create_parent="div")
    links = [
        (a.get("href"), a.text_content(), [i.get("src") for i in a.iter("img")])
        for a in doc.iter("a")
    ]
    assert links == [
        (BASE + "clip.mp4", "", [BASE + "poster.jpg"]),
        ("https://www.youtube.com/embed/abc", "YouTube player", []),
        (BASE + "talk.mp3", "talk.mp3", []),
    ]
    assert body.media_replaced == 3
    assert "Fallback" not in body.html


def test_a_shortcodes_frame_becomes_a_link_too() -> None:
    parts = {
        "FPSC3CSPF": '<div class="video"><iframe src="https://player.example/v/1"></iframe></div>'
    }
    body = render_body("FPSC3CSPF\n", BASE, parts=parts)
    assert (
        body.html
        == '<div class="video"><a href="https://player.example/v/1">https://player.example/v/1</a></div>\n'
    )
    assert body.media_replaced == 1


@given(st.text(alphabet='[]()#:/.<>ab \n^*!"=', max_size=120))
def test_every_link_is_absolute(source: str) -> None:
    html = render_body(source + "\n[x](#y)[^1]\n\n[^1]: z\n", BASE).html
    doc = lxml_html.fragment_fromstring(html, create_parent="div")
    for element in doc.iter():
        for name in ("href", "src"):
            value = element.get(name)
            assert value is None or value.startswith(("https://", "http://", "mailto:")), value


def test_heading_attributes_after_text_of_several_bytes_a_character() -> None:
    # The parser reports where things are in bytes; cutting the attribute block
    # off a Chinese heading must not cut into its characters.
    doc = _doc("## 中文标题 {#zh .c}\n\n## 中文 \\{#x}\n\nSetext 标题 {#s}\n===\n")
    shown = [(e.tag, e.get("id"), e.get("class"), e.text_content()) for e in doc]
    assert shown == [
        ("h2", "zh", "c", "中文标题"),
        ("h2", "中文-x", None, "中文 {#x}"),
        ("h1", "s", None, "Setext 标题"),
    ]


def test_lists_are_written_tight_or_loose_as_the_source_has_them() -> None:
    html = render_body("- a\n- b\n  - c\n\n3. x\n\n4. y\n", BASE).html
    assert html == (
        "<ul>\n<li>a</li>\n<li>b\n<ul>\n<li>c</li>\n</ul>\n</li>\n</ul>\n"
        '<ol start="3">\n<li>\n<p>x</p>\n</li>\n<li>\n<p>y</p>\n</li>\n</ol>\n'
    )
    assert render_body("- a\n- b\n", BASE).paragraphs == ("a", "b")


def test_link_addresses_are_encoded_as_commonmark_writes_them() -> None:
    doc = _doc("[t](/标签/a%20b/ 'T') [i](https://bücher.example/x) <a@b.org> [p](50%)\n")
    assert [(a.get("href"), a.get("title")) for a in doc.iter("a")] == [
        ("https://example.org/%E6%A0%87%E7%AD%BE/a%20b/", "T"),
        ("https://xn--bcher-kva.example/x", None),
        ("mailto:a@b.org", None),
        ("https://example.org/posts/hello/50%25", None),
    ]
