"""Front matter reads as PyYAML reads it, whether ryaml or PyYAML parsed it, and
most YAML front matter is left to ryaml."""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
import yaml
from hypothesis import example, given, settings
from hypothesis import strategies as st

from bench.corpus import write_corpus
from feedpub.content import front
from feedpub.content.front import split
from feedpub.errors import ContentError
from tests.conftest import REPO, SEEDS

# Plain scalars that PyYAML and ryaml read apart, or alike by different rules, and
# text that looks like them.
TRICKY = [
    *["true", "True", "TRUE", "tRue", "false", "FALSE", "yes", "Yes", "YES", "yEs", "No"],
    *["NO", "on", "On", "OFF", "Off", "y", "Y", "n", "N", "~", "null", "Null", "NULL"],
    *["nULL", "", "0", "-0", "+0", "-1", "+1", "00", "007", "08", "-012", "0_1", "1_000"],
    *["0x1F", "+0x1F", "-0x1F", "0X1F", "0x", "0x_1F", "0o17", "-0o7", "0b101", "-0b11"],
    *["0b", "18446744073709551616", "1" + "0" * 39, "-1" + "0" * 39, "0x" + "f" * 33],
    *["1:30", "190:20:30", "-1:20.5", "1.5", "1.", ".5", "-.5", "+.5", "1e3", "1.0e3"],
    *["1.0e+3", "5E-1", "1.0e+400", "1_000.5", ".inf", "+.inf", "-.Inf", ".NaN", "+.nan"],
    *["inf", "NaN", "Infinity", "2025-06-09", "2025-06-09T13:49:22Z", "2025-6-9"],
    *["2025-06-09T13:49:22.539Z", "2025-06-09 13:49:22", "2025-06-09t13:49:22+08:00"],
    *["2001-12-14 21:59:43.10 -5", "2025-06-09 13:49:22 Z", "2025-13-45", "="],
    *["<<", "!", "&", "*", "a: b", "a:b", "a #b", "a#b", "C#", "#x", "- x", "-x", "?x"],
    *["[x]", "{x: 1}", "&a", "*a", "!x", "|", ">", "%x", "@x", "`x", "'x'", '"x"', "it's"],
    *['say "hi"', "a, b", "新闻", "AI 新闻：标题", "x\\n", "\\x01", "tab\there", " lead"],
    *["trail ", "https://example.org/a?b=c#d", "😀", "é\u2028x"],
]
KEYS = ["title", "date", "tags", "cover", "summary", "draft", "slug", "weight", "lastmod"]
KEYS += ["a-b", "_x", "y", "n", "k1", "série", "'quoted'", '"double"']
ALPHABET = st.sampled_from(
    [*"ab 1:#-'\",[]{}&*!|>%@`?\\\t新", "\u2028", "\x85", "\ufeff", "\x01", "\ud800"]
)
ODD_KEYS = st.sampled_from(
    ["true", "on", "null", "No", "<<", "=", "1", "2025-06-09", "'2025-06-09'", "1:20", "''"]
)
scalars = st.one_of(*[st.sampled_from(TRICKY)] * 3, st.text(ALPHABET, max_size=8))


def _typed(value: Any) -> Any:
    """A value with its types spelt out: True and 1 must not compare equal here, nor
    two NaNs with different signs."""
    if isinstance(value, dict):
        return ("dict", [(_typed(k), _typed(v)) for k, v in value.items()])
    if isinstance(value, list):
        return ("list", [_typed(v) for v in value])
    if isinstance(value, float):
        return ("float", struct.pack(">d", value).hex())
    return (type(value).__name__, repr(value))


def _outcome(text: str) -> Any:
    """What split makes of ``text``: its values (types spelt out) and body, or its
    error (any other exception is a failure the two readings must share too)."""
    try:
        meta, body = split(text, "post.md")
    except ContentError as exc:
        return ("error", exc.reason, exc.line)
    except Exception as exc:
        return ("failed", type(exc).__name__, str(exc))
    return (_typed(meta), body)


def _refuse(front_matter: str) -> Any:
    raise front._ApartFromPyYAML


def _pyyaml_outcome(text: str) -> Any:
    """What split makes of ``text`` when PyYAML reads all YAML front matter, as it did
    before ryaml."""
    with mock.patch.object(front, "_fast", _refuse):
        return _outcome(text)


def _takes_ryaml(front_matter: str) -> bool:
    """Whether ryaml's reading of ``front_matter`` stands, PyYAML not asked."""
    try:
        front._fast(front_matter)
    except front._ApartFromPyYAML:
        return False
    return True


def _front(text: str) -> str:
    return front._YAML.split(text.lstrip())[0]


def _assert_read_as_pyyaml(text: str) -> None:
    """split's values for ``text`` are PyYAML's own, and as split gave before ryaml."""
    assert _outcome(text) == _pyyaml_outcome(text)
    meta, _ = split(text, "post.md")
    assert _typed(meta) == _typed(yaml.load(_front(text), Loader=yaml.CSafeLoader) or {})


STYLES = ["plain", "double", "single", "raw", "escaped", "fold-double", "fold-single"]
STYLES += ["literal", "folded"]


def _styled(text: str, style: str) -> str:
    """``text`` as a scalar of ``style``: "raw" leaves single quotes in it undoubled,
    "escaped" writes its first character as an escape, the "fold" styles break the
    line at its first space, and "literal" and "folded" are block scalars."""
    if style == "double":
        return f'"{text}"'
    if style == "single":
        return "'" + text.replace("'", "''") + "'"
    if style == "raw":
        return f"'{text}'"
    if style == "escaped" and text and ord(text[0]) < 0x10000:
        return f'"\\u{ord(text[0]):04x}{text[1:]}"'
    if style in ("literal", "folded"):
        return ("|-" if style == "literal" else ">-") + "\n    " + text
    if style.startswith("fold-"):
        quote = '"' if style == "fold-double" else "'"
        return quote + (text.replace(" ", "\n     ", 1) or "\n  x") + quote
    return text


@st.composite
def written_scalar(draw: st.DrawFn) -> str:
    return _styled(draw(scalars), draw(st.sampled_from(STYLES[:1] * 3 + STYLES[1:])))


@st.composite
def entry(draw: st.DrawFn) -> str:
    rare = draw(st.integers(0, 9)) == 0  # now and then something odd, mostly the usual
    key = draw(ODD_KEYS | st.text(ALPHABET, max_size=4) if rare else st.sampled_from(KEYS))
    kind = draw(
        st.sampled_from(["scalar"] * 3 + ["flow", "block", "mapping", "literal", "node", "empty"])
    )
    gap = draw(st.sampled_from([" ", "  ", ""]) if rare else st.just(" "))
    indent = " " * draw(st.sampled_from([0, 2, 4]))
    if kind == "scalar":
        return f"{key}:{gap}{draw(written_scalar())}"
    if kind == "flow":
        items = draw(st.lists(written_scalar(), max_size=3))
        joiner = draw(st.sampled_from([", ", ",", " , "]))
        return f"{key}:{gap}[{joiner.join(items)}]"
    if kind == "block":
        items = draw(st.lists(written_scalar(), max_size=3))
        return f"{key}:" + "".join(f"\n{indent}- {item}" for item in items)
    if kind == "mapping":
        pairs = draw(st.lists(st.tuples(st.sampled_from(KEYS), written_scalar()), max_size=3))
        return f"{key}:" + "".join(f"\n{indent}{k}: {v}" for k, v in pairs)
    if kind == "literal":  # a block scalar
        header = draw(st.sampled_from(["|", "|-", "|+", ">", ">-", "|2"]))
        lines = draw(st.lists(scalars, min_size=1, max_size=2))
        return f"{key}: {header}" + "".join(f"\n  {line}" for line in lines)
    if kind == "node":  # anchors, aliases, tags and merge keys
        node = draw(
            st.sampled_from(["&a ", "&a [", "*a", "!!str ", "!!int ", "!!timestamp ", "!x ", "! "])
        )
        if node == "*a":
            return f"{key}: *a" if draw(st.booleans()) else "<<: *a"
        return f"{key}: {node}{draw(written_scalar())}{']' if node.endswith('[') else ''}"
    return f"{key}:{gap}"


stray_lines = st.sampled_from(["", "# a comment", "  # indented comment", "  stray", "...", "-"])
documents = st.lists(st.one_of(*[entry()] * 5, stray_lines), max_size=5).map(
    lambda lines: "\n" + "\n".join(lines) + "\n"
)


@settings(max_examples=3000, deadline=None)
@given(documents)
@example("\ntitle: x\n  continued\n")
@example("\ncover:\n  image: a\n    deeper: b\n")
@example("\ntags:\n- a\n  - b\n")
@example("\ndate: 2025-06-09\nsync_time: '2025-06-09'\n")
@example('\ndate: "\\u0032025-06-09"\n')
@example('\ndate: "2025-06-09\n     13:49:22"\nupdated: 2025-06-09 13:49:22\n')
@example("\nnote: |-\n  2025-06-09\ndate: 2025-06-09\n")
@example("\na: &a 2025-06-09\nb: *a\n")
@example("\na: !!str 2025-06-09\n")
def test_split_reads_yaml_as_pyyaml_does(front_matter: str) -> None:
    text = f"---{front_matter}---\nBody\n"
    assert _outcome(text) == _pyyaml_outcome(text)


PLACES = ["a: {}\n", "a: [{}, x]\n", "a:\n  - {}\n", "{}: x\n", "date: 2025-06-09\na: {}\n"]
PLACES += ['a: ["x",{}]\ndate: 2025-06-09\n']


def test_every_tricky_scalar_in_every_style_and_place() -> None:
    for text in TRICKY:
        for style in STYLES:
            for place in PLACES:
                document = "---\n" + place.format(_styled(text, style)) + "---\n"
                assert _outcome(document) == _pyyaml_outcome(document), document


def test_the_bench_corpus_reads_as_pyyaml_reads_it(tmp_path: Path) -> None:
    write_corpus(tmp_path, 300)
    texts = [p.read_text(encoding="utf-8") for p in (tmp_path / "content").rglob("*.md")]
    assert len(texts) == 300
    for text in texts:
        _assert_read_as_pyyaml(text)
        assert _takes_ryaml(_front(text))


FIXTURES = sorted(
    path
    for path in [
        *SEEDS.glob("*.txt"),
        *(REPO / "content").rglob("*.md"),
        *(REPO / "tests" / "data").rglob("*.md"),
    ]
    if front._YAML.FM_BOUNDARY.match(path.read_text(encoding="utf-8").lstrip())
)


@pytest.mark.parametrize("path", FIXTURES, ids=lambda path: path.name)
def test_fixture_front_matter_reads_as_pyyaml_reads_it(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    _assert_read_as_pyyaml(text)
    assert _takes_ryaml(_front(text))


def test_there_are_fixtures() -> None:
    assert len(FIXTURES) > 20
    assert any(path.suffix == ".txt" for path in FIXTURES) == SEEDS.is_dir()


# What ryaml reads (PyYAML's reading stands in where YAML 1.1 differs): typical
# Hugo posts, and texts that PyYAML reads as something else when plain.
TAKE_RYAML = [
    "title: Hello\ndate: 2026-04-05T00:20:00Z\ndraft: false\ntags: [a, b]\n",
    "date: 2026-04-05\nlastmod: 2026-04-05 10:20:00\nexpiry: 2026-04-05t10:20:00.5+08:00\n",
    "published: yes\nhidden: Off\nagain: NO\n",
    "octal: 012\nbig: 1_000\nclock: 1:20\nhex: 0x1F\nbinary: 0b11\nsmall: .5\n",
    "date: 2026-04-05T00:20:00Z\nsync_time: '2026-04-05T01:00:00Z'\nseen: \"2026-04-06\"\n",
    'answer: "yes"\nnumber: "012"\nlast: "1:20"\n',
    "tags: [a, 2026-04-05, 'b']\ncover:\n  image: x.png\n  date: 2026-04-05\n",
    "description: >\n  A summary.\ndate: 2026-04-05\n",
    'title: ""\nempty:\nnothing: ~\nratio: 1.5\nlow: -.inf\nbig: 18446744073709551615\n',
    "title: AT&T buys Yahoo!\nwhen: 2026-04-05\n",
    'title: "Why \\"this\\" matters \\u263a"\nwhen: 2026-04-05\n',
]
# What goes to PyYAML whole.
TO_PYYAML = [
    "a: &x 1\nb: *x\n",
    "base: {a: 1}\nother:\n  <<: {b: 2}\n",
    "a: !!str 2026-04-05\n",
    "a: 0o12\n",
    "a: 1e3\n",
    "a: -.5\n",
    "a: 1" + "0" * 40 + "\n",
    "a: .nan\n",
    "1: one\n",
    "yes: y\n",
    "2026-04-05: x\n",
    "a: 1\na: 2\n",  # ryaml refuses the duplicate, PyYAML keeps the last
    "a: 2026-04-05\nb: '2026-04-05'\n",  # the same text plain and quoted
    'a: 2026-04-05\nb: ["c","2026\\x2d04-05"]\n',  # an escape could spell the date
    "a: |-\n  2026-04-05\nb: 2026-04-05\n",  # and so could a block scalar
    "a: 2025-13-45\n",  # a date PyYAML refuses
]


@pytest.mark.parametrize("front_matter", TAKE_RYAML)
def test_what_ryaml_reads(front_matter: str) -> None:
    assert _takes_ryaml(front_matter)
    _assert_read_as_pyyaml(f"---\n{front_matter}---\n")


@pytest.mark.parametrize("front_matter", TO_PYYAML)
def test_what_goes_to_pyyaml(front_matter: str) -> None:
    assert not _takes_ryaml(front_matter)
    assert _outcome(f"---\n{front_matter}---\n") == _pyyaml_outcome(f"---\n{front_matter}---\n")


def test_a_date_after_a_quote_stays_text() -> None:
    meta, _ = split("---\nupdated: '2025-06-09'\nseen: \"2025-06-10 10:00\"\n---\n", "a.md")
    assert meta == {"updated": "2025-06-09", "seen": "2025-06-10 10:00"}


@pytest.mark.parametrize(
    ("front_matter", "reason", "line"),
    [
        ("date: 2025-13-45", "invalid YAML in front matter: month must be in 1..12", None),
        ("title: [a", "invalid YAML in front matter: did not find expected ',' or ']'", 3),
        (
            "title: a\n  b: c",
            "invalid YAML in front matter: mapping values are not allowed in this context",
            3,
        ),
        (
            "title: a\ntags: !x [a]",
            "invalid YAML in front matter: could not determine a constructor for the tag '!x'",
            3,
        ),
        (
            "title: a\ncover: {a: 1, a: 2}\nbad: [",
            "invalid YAML in front matter: did not find expected node content",
            5,
        ),
    ],
)
def test_what_ryaml_refuses_pyyaml_explains(
    front_matter: str, reason: str, line: int | None
) -> None:
    with pytest.raises(ContentError) as caught:
        split(f"---\n{front_matter}\n---\nBody\n", "post.md")
    assert caught.value.problem.message == reason
    assert caught.value.problem.line == line


def test_an_escape_xml_forbids_is_dropped() -> None:
    meta, _ = split('---\ntitle: "a\\x01b\\u2028c"\ndate: 2025-06-09\n---\n', "a.md")
    assert meta["title"] == "ab\u2028c"
    assert _typed(meta["date"]) == _typed(yaml.safe_load("2025-06-09"))


@pytest.mark.parametrize(
    ("text", "meta", "body"),
    [
        (
            '+++\ntitle = "T"\n[cover]\nimage = "c.png"\n+++\n\nBody\n',
            {"title": "T", "cover": {"image": "c.png"}},
            "Body\n",
        ),
        ('\n{"title": "T", "tags": ["a"]}\nBody\n', {"title": "T", "tags": ["a"]}, "Body\n"),
        ('{\n  "title": "T\\u0001"\n}\n', {"title": "T"}, ""),  # an escape XML cannot carry
    ],
    ids=["toml", "json", "json-escape"],
)
def test_toml_and_json_front_matter(text: str, meta: dict[str, Any], body: str) -> None:
    assert split(text, "a.md") == (meta, body)
    assert front.body_of(text) == body
    assert front.head_digest(text) is not None


def test_the_head_digest_ignores_the_body_in_every_form() -> None:
    for head in ('+++\ntitle = "T"\n+++\n', '{"title": "T"}\n', "---\ntitle: T\n---\n"):
        assert front.head_digest(head + "one") == front.head_digest(head + "two")
        assert front.head_digest(head + "one") != front.head_digest(head.replace("T", "U") + "one")


@pytest.mark.parametrize(
    ("text", "reason", "line"),
    [
        ('+++\ntitle = "T"\n', "front matter has no closing +++ line", 1),
        (
            '\n+++\ntitle = "T"\ndate = \n+++\n',
            "invalid TOML in front matter: Invalid value (column 8)",
            4,
        ),
        ('{"title": "T",\n "date": }\nBody\n', "invalid JSON in front matter: Expecting value", 2),
        (
            '["a"]\n',
            "no front matter; the file must start with a line of --- (YAML), +++ (TOML) or { (JSON)",
            1,
        ),
        ("+++\n+++\n", None, None),
    ],
)
def test_toml_and_json_errors_name_the_line(
    text: str, reason: str | None, line: int | None
) -> None:
    if reason is None:
        assert split(text, "a.md") == ({}, "")
        return
    with pytest.raises(ContentError) as caught:
        split(text, "a.md")
    assert (caught.value.reason, caught.value.line) == (reason, line)


@pytest.mark.parametrize("front", ["title: !!int\n", "title: !!bool maybe\n", "a: !!int 1e999\n"])
def test_a_tag_its_value_cannot_take_is_a_content_error(front: str) -> None:
    with pytest.raises(ContentError) as caught:
        split(f"---\n{front}---\nBody.\n", "post.md")
    assert "invalid YAML in front matter" in str(caught.value)
