from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from lxml import html as lxml_html

from feedpub.content.body import render_body, sanitise

BASE = "https://example.org/posts/hello/"


def _doc(markdown: str, doc_id: str = "d1") -> lxml_html.HtmlElement:
    return lxml_html.fragment_fromstring(
        render_body(markdown, BASE, doc_id).html, create_parent="div"
    )


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


def test_every_footnote_reference_links_to_its_note() -> None:
    doc = _doc("One[^a] two[^b] again[^a].\n\n[^a]: First.\n[^b]: Second.\n")
    ids = _ids(lxml_html.tostring(doc, encoding="unicode"))
    refs = [a.get("href") for a in doc.iterfind(".//sup/a")]
    assert len(refs) == 3
    assert all(href.startswith("#") and href[1:] in ids for href in refs)
    notes = doc.findall(".//li")
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


def test_footnote_ids_differ_between_posts() -> None:
    first = render_body("A[^1]\n\n[^1]: x\n", BASE, "aaaa").html
    second = render_body("B[^1]\n\n[^1]: y\n", BASE, "bbbb").html
    assert _ids(first) and not _ids(first) & _ids(second)


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
        "#section",
        "https://example.org/posts/hello/raw.html",
    ]
    assert [i.get("src") for i in doc.iter("img")] == [
        "https://example.org/posts/hello/img/a.png",
        "https://cdn.example.net/i.png",
    ]


HOSTILE = (
    '<script>alert(1)</script><style>body{}</style><iframe src="https://evil.example/"></iframe>'
    '<object data="x"></object><form action="/x"><input name="a"></form>'
    '<p onclick="steal()" style="color:red">text</p><a href="javascript:alert(1)">js</a>'
    '<a href=" JaVaScRiPt:alert(1)">js2</a><img src="x" onerror="steal()">'
)


def test_sanitiser_removes_active_content() -> None:
    out = sanitise(HOSTILE, BASE)
    for bad in (
        "<script",
        "alert(1)",
        "<style",
        "<iframe",
        "<object",
        "<form",
        "<input",
        "onclick",
        "onerror",
        "style=",
        "javascript",
        "JaVaScRiPt",
    ):
        assert bad not in out
    assert "<p>text</p>" in out


def test_raw_html_passes_through() -> None:
    doc = _doc('<figure><img src="a.png" alt="A"><figcaption>Cap</figcaption></figure>\n')
    assert doc.find(".//figcaption").text == "Cap"


def test_plain_text_and_more_marker() -> None:
    body = render_body("Intro *one*.\n\n<!--more-->\n\nRest.\n", BASE, "x")
    assert body.before_more == "Intro one."
    assert body.paragraphs == ("Intro one.", "Rest.")
    assert "<!--more-->" not in body.html


def test_footnote_references_leave_no_gap_in_plain_text() -> None:
    body = render_body("风险 [^1]。\n\n[^1]: 来源\n", BASE, "x")
    assert body.paragraphs == ("风险。",)


@given(st.text(max_size=200))
def test_any_markdown_renders_without_active_content(source: str) -> None:
    out = render_body(source + "\n<script>x()</script>", BASE, "p").html
    assert "<script" not in out.lower()


SHORTCODES = {
    "FPSC1CSPF": '<figure class="sc"><img src="fig.png" alt="Fig"><script>x()</script></figure>',
    "FPSC2CSPF": "<kbd>Ctrl</kbd>&amp;<kbd>C</kbd>",
}


def test_a_block_placeholder_takes_the_place_of_its_paragraph() -> None:
    body = render_body("Intro.\n\nFPSC1CSPF\n\nAfter.\n", BASE, "x", parts=SHORTCODES)
    doc = lxml_html.fragment_fromstring(body.html, create_parent="div")
    assert [e.tag for e in doc] == ["p", "figure", "p"]
    assert doc.find("figure/img").get("src") == BASE + "fig.png"
    assert "<script" not in body.html and "x()" not in body.html
    assert body.paragraphs == ("Intro.", "After.")


def test_an_inline_placeholder_is_replaced_in_its_text() -> None:
    body = render_body("Press FPSC2CSPF now.\n", BASE, "x", parts=SHORTCODES)
    assert body.html == "<p>Press <kbd>Ctrl</kbd>&amp;<kbd>C</kbd> now.</p>\n"
    assert body.paragraphs == ("Press Ctrl & C now.",)


def test_no_placeholder_leaks_into_any_output() -> None:
    source = (
        "# Title FPSC2CSPF\n\n- FPSC1CSPF\n\n![FPSC2CSPF](a.png) `FPSC2CSPF` FPSC77CSPF\n\n"
        "<div>FPSC2CSPF</div>\n\n```\nFPSC2CSPF\n```\n\nText[^1].\n\n[^1]: Note FPSC2CSPF.\n"
    )
    body = render_body(source, BASE, "x", parts=SHORTCODES)
    for out in (body.html, body.text, *body.paragraphs):
        assert "FPSC" not in out
    doc = lxml_html.fragment_fromstring(body.html, create_parent="div")
    assert doc.find(".//p/img").get("alt") == "Ctrl & C"
    assert doc.find(".//li/figure") is not None


def test_links_to_posts_go_through_the_resolver() -> None:
    asked: list[str] = []

    def resolve(target: str) -> str | None:
        asked.append(target)
        return "https://example.org/posts/other/#part" if ".md" in target else None

    body = render_body(
        "[a](../other.md#part) [b](/about/) [c](https://x.org/y.md) [d](#here) ![e](pic.png)\n",
        BASE,
        "x",
        resolve=resolve,
    )
    doc = lxml_html.fragment_fromstring(body.html, create_parent="div")
    assert [a.get("href") for a in doc.iter("a")][:3] == [
        "https://example.org/posts/other/#part",
        "https://example.org/about/",
        "https://x.org/y.md",
    ]
    assert doc.find(".//img").get("src") == BASE + "pic.png"
    assert asked == ["../other.md#part", "/about/", "pic.png"]
