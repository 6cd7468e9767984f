"""The quick front-matter reading must give PyYAML's answer, or step aside."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import example, given, settings
from hypothesis import strategies as st

from feedpub.content import front
from feedpub.content.front import split
from feedpub.errors import ContentError

SEEDS = Path(__file__).resolve().parents[2] / "shared" / "seeds"
SAMPLE = Path(__file__).resolve().parents[1] / "content"

# Words PyYAML reads as something other than text, and text that looks like them.
TRICKY = [
    "true",
    "True",
    "TRUE",
    "yes",
    "No",
    "on",
    "OFF",
    "y",
    "n",
    "~",
    "null",
    "Null",
    "",
    "0",
    "-1",
    "+1",
    "007",
    "0x1F",
    "0o17",
    "0b101",
    "1_000",
    "1:30",
    "190:20:30",
    "1.5",
    "-.5",
    ".inf",
    "-.Inf",
    ".NaN",
    "1e3",
    "1.0e+3",
    "2025-06-09",
    "2025-06-09T13:49:22Z",
    "2025-06-09T13:49:22.539Z",
    "2025-06-09 13:49:22",
    "2025-06-09t13:49:22+08:00",
    "2025-13-45",
    "=",
    "<<",
    "a: b",
    "a:b",
    "a #b",
    "a#b",
    "C#",
    "#x",
    "- x",
    "-x",
    "?x",
    "[x]",
    "{x: 1}",
    "&a",
    "*a",
    "!x",
    "|",
    ">",
    "%x",
    "@x",
    "`x",
    "'x'",
    '"x"',
    "it's",
    'say "hi"',
    "a, b",
    "新闻",
    "AI 新闻：标题",
    "x\\n",
    "tab\there",
    " lead",
    "trail ",
    "https://example.org/a?b=c#d",
]
KEYS = ["title", "date", "tags", "cover", "a-b", "_x", "y", "k1"]
ALPHABET = st.sampled_from([*"ab 1:#-'\",[]{}&*!|>%@`?\\\t新", "\u2028", "\x85", "\ufeff"])


ODD_KEYS = st.sampled_from(["true", "on", "null", "No", "<<", "="]) | st.text(ALPHABET, max_size=4)


def _typed(value: Any) -> Any:
    """A value with its types spelt out: True and 1 must not compare equal here."""
    if isinstance(value, dict):
        return ("dict", [(_typed(k), _typed(v)) for k, v in value.items()])
    if isinstance(value, list):
        return ("list", [_typed(v) for v in value])
    return (type(value).__name__, repr(value))


# Scalars the quick reading takes itself, so that most documents exercise it.
PLAIN = [t for t in TRICKY if t and front._INDICATORS.isdisjoint(t[0]) and "\\" not in t]
scalars = st.one_of(st.sampled_from(PLAIN), st.sampled_from(TRICKY), st.text(ALPHABET, max_size=8))


@st.composite
def written_scalar(draw: st.DrawFn) -> str:
    text = draw(scalars)
    style = draw(st.sampled_from(["plain", "plain", "double", "single", "single-raw"]))
    if style == "double":
        return f'"{text}"'
    if style == "single":
        return "'" + text.replace("'", "''") + "'"
    if style == "single-raw":
        return f"'{text}'"
    return text


@st.composite
def entry(draw: st.DrawFn) -> str:
    rare = draw(st.integers(0, 9)) == 0  # now and then something odd, mostly the usual
    key = draw(ODD_KEYS if rare else st.sampled_from(KEYS))
    kind = draw(st.sampled_from(["scalar", "flow", "block", "mapping", "empty"]))
    gap = draw(st.sampled_from([" ", "  ", ""]) if rare else st.just(" "))
    if kind == "scalar":
        return f"{key}:{gap}{draw(written_scalar())}"
    if kind == "flow":
        items = draw(st.lists(written_scalar(), max_size=3))
        joiner = draw(st.sampled_from([", ", ",", " , "]))
        return f"{key}:{gap}[{joiner.join(items)}]"
    indent = " " * draw(st.sampled_from([0, 2, 4]))
    if kind == "block":
        items = draw(st.lists(written_scalar(), max_size=3))
        return f"{key}:" + "".join(f"\n{indent}- {item}" for item in items)
    if kind == "mapping":
        pairs = draw(st.lists(st.tuples(st.sampled_from(KEYS), written_scalar()), max_size=3))
        return f"{key}:" + "".join(f"\n{indent}{k}: {v}" for k, v in pairs)
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
def test_the_quick_reading_agrees_with_pyyaml(text: str) -> None:
    quick = front._quick(text)
    if quick is None:
        return  # left to PyYAML, which is the reference
    assert _typed(quick) == _typed(yaml.load(text, Loader=yaml.CSafeLoader))


def _front(path: Path) -> str:
    return front._YAML.split(path.read_text(encoding="utf-8"))[0]


def test_real_front_matter_takes_the_quick_reading() -> None:
    """The seed, the sample site and a post of every shape feedpub writes are
    read quickly (a quick reading that always stepped aside would pass the test above)."""
    texts = [_front(p) for p in [*SEEDS.glob("*.txt"), *SAMPLE.rglob("*.md")]]
    texts.append(
        "\ntitle: 'It''s here'\ndate: 2025-06-09\ntags:\n  - AI\n  - 大模型\n"
        "categories: [AI News, '评测']\ncover:\n  image: /images/a.png\n  alt: \"A\"\n"
        "word_count: 2000\ndraft: no\n# a comment\nsource_url: https://example.org/a#b\n"
    )
    assert len(texts) > 8
    for text in texts:
        quick = front._quick(text)
        assert quick is not None, text
        assert _typed(quick) == _typed(yaml.load(text, Loader=yaml.CSafeLoader))


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
    ],
)
def test_what_the_quick_reading_refuses_pyyaml_explains(
    front_matter: str, reason: str, line: int | None
) -> None:
    with pytest.raises(ContentError) as caught:
        split(f"---\n{front_matter}\n---\nBody\n", "post.md")
    assert caught.value.problem.message == reason
    assert caught.value.problem.line == line


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
