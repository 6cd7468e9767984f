from __future__ import annotations

import re
import unicodedata

from hypothesis import given
from hypothesis import strategies as st

from feedpub.content.text import (
    ELLIPSIS,
    _sanitised_path,
    display_width,
    hugo_path,
    normalise_title,
    slugify,
    term_slug,
    trim,
    words_and_minutes,
    wrap,
    xml_safe,
)


def _cjk(char: str) -> bool:
    """An oracle independent of the implementation's character ranges."""
    return unicodedata.name(char, "").startswith(
        ("CJK", "HANGUL", "HIRAGANA", "KATAKANA", "BOPOMOFO", "KANGXI")
    )


def test_xml_safe_removes_only_forbidden_characters() -> None:
    assert xml_safe("a\x00b\x08c\x0bd\x1fe\tf\ng\rh\ufffei") == "abcde\tf\ng\rhi"
    assert xml_safe("emoji 🎉 and עברית") == "emoji 🎉 and עברית"


def test_words_count_cjk_characters_and_latin_words() -> None:
    assert words_and_minutes("hello world")[0] == 2
    assert words_and_minutes("微软将评定")[0] == 5
    assert words_and_minutes("微软 Azure 云")[0] == 4
    assert words_and_minutes("")[0] == 0


def test_reading_time_is_at_least_one_minute_and_cjk_aware() -> None:
    assert words_and_minutes("")[1] == 1
    assert words_and_minutes("word " * 440)[1] == 2
    assert words_and_minutes("字" * 800)[1] == 2


def test_trim_keeps_short_text_as_is() -> None:
    assert trim("  short   text  ", 5) == "short text"


def test_trim_cuts_latin_text_at_a_word_boundary() -> None:
    assert trim("one two three four five six", 4) == "one two three four" + ELLIPSIS


def test_trim_prefers_a_sentence_end_in_the_second_half() -> None:
    text = "First sentence here. Second one is longer than the rest of it"
    assert trim(text, 6) == "First sentence here" + ELLIPSIS


def test_trim_counts_cjk_characters() -> None:
    text = "微软将为其云客户销售的人工智能模型引入安全排名系统"
    assert trim(text, 5) == "微软将为其" + ELLIPSIS


def test_trim_cuts_cjk_at_a_sentence_end() -> None:
    text = "第一句话比较长一些。第二句话也很长很长很长。"
    assert trim(text, 14) == "第一句话比较长一些" + ELLIPSIS


def test_trim_never_splits_a_character_from_its_marks() -> None:
    text = "葛\U000e0100葛\U000e0101葛"
    assert trim(text, 1) == "葛\U000e0100" + ELLIPSIS


def test_slugify_examples() -> None:
    assert slugify("Hello, World!") == "hello-world"
    assert slugify("AI 新闻 速递") == "ai-新闻-速递"
    assert slugify("C++ & C#") == "c-c"
    assert slugify("！！！") == ""
    assert slugify("Ｆｕｌｌｗｉｄｔｈ") == "fullwidth"


def test_normalise_title_ignores_case_space_and_punctuation() -> None:
    assert normalise_title("Hello,  World!") == normalise_title("hello world")
    assert normalise_title("微软：AI 安全") == normalise_title("微软AI安全")


_text = st.text(
    alphabet=st.sampled_from(list("ab cd.!?。，字词 汉\n\t")) | st.characters(), max_size=300
)


@given(_text, st.integers(min_value=1, max_value=80))
def test_trim_properties(text: str, limit: int) -> None:
    result = trim(text, limit)
    collapsed = " ".join(text.split())
    if not result.endswith(ELLIPSIS) or result == collapsed:
        assert result == collapsed
        return
    kept = result[: -len(ELLIPSIS)]
    assert collapsed.startswith(kept)
    assert words_and_minutes(kept)[0] <= limit
    rest = collapsed[len(kept) :]
    # The cut never falls inside a word: what follows is a space, punctuation,
    # or a CJK character (each of which is a word of its own).
    if kept and rest:
        boundary = rest[0].isspace() or not rest[0].isalnum() or _cjk(rest[0])
        assert boundary or _cjk(kept[-1]) or not kept[-1].isalnum()


@given(st.text(max_size=100))
def test_slugify_properties(text: str) -> None:
    slug = slugify(text)
    assert slug == slugify(slug)
    assert not slug.startswith("-") and not slug.endswith("-")
    assert "--" not in slug
    assert all(c.isalnum() or c in "-_" for c in slug)
    assert not any(c.isspace() for c in slug)


def test_term_slugs_are_safe_and_unique() -> None:
    assert term_slug("Machine Learning") == term_slug("machine-learning") == "machine-learning"
    assert term_slug("AI 新闻") == "ai-新闻"
    names = ["C++", "C#", "C", "c", "a/b", "a b", "v1.0", "v10", "#", "..", "Node.js", "nodejs"]
    slugs = {name: term_slug(name) for name in names}
    assert slugs["C"] == slugs["c"] == "c"
    assert len({slugs[n] for n in names if n != "c"}) == len(names) - 1
    for slug in slugs.values():
        assert slug and "/" not in slug and "." not in slug and "#" not in slug and "+" not in slug


@given(st.text(min_size=1, max_size=40), st.text(min_size=1, max_size=40))
def test_term_slugs_differ_for_different_terms(first: str, second: str) -> None:
    def fold(name: str) -> str:
        return re.sub(r"[\s_-]+", "-", unicodedata.normalize("NFKC", name).casefold()).strip("-")

    def same_term(a: str, b: str) -> bool:
        return fold(a) == fold(b)

    if term_slug(first) == term_slug(second):
        assert same_term(first, second)


def test_wrap_examples() -> None:
    assert wrap("one two three four", 9) == ["one two", "three", "four"]
    assert wrap("微软将为其云客户", 8) == ["微软将为", "其云客户"]
    assert wrap("AI 新闻 https://example.org/a/very/long/path ok", 10) == [
        "AI 新闻",
        "https://example.org/a/very/long/path",
        "ok",
    ]


@given(_text, st.integers(min_value=10, max_value=80))
def test_wrap_properties(text: str, width: int) -> None:
    lines = wrap(text, width)
    collapsed = " ".join(text.split())
    # Nothing is lost or reordered: the lines hold the same characters.
    assert "".join(lines).replace(" ", "") == collapsed.replace(" ", "")
    for line in lines:
        assert line == line.strip() and line
        if display_width(line) > width:
            assert " " not in line and len(line.split()) == 1


@given(st.text(alphabet=st.sampled_from("aZ09.-_/ #+~@%中é\u0301!?"), max_size=30))
def test_hugo_path_takes_the_short_way_only_where_it_changes_nothing(text: str) -> None:
    assert hugo_path(text) == _sanitised_path(text)


def test_hugo_path_keeps_what_hugo_keeps() -> None:
    assert hugo_path("Istio 1.6 Explain") == "istio-1.6-explain"
    assert hugo_path("istio-1.6-explain") == "istio-1.6-explain"
    assert hugo_path("a/./b/../c") == "a/b/c"
    assert hugo_path("C++ & C#") == "c++-c#"
