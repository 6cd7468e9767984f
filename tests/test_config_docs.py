"""The README's configuration tables and the sample config.yaml say what the
declarations in feedpub/config_schema.py say: the same keys, the same defaults."""

from __future__ import annotations

import json
import re
from typing import Any

from feedpub.config_schema import ConfigOptions
from feedpub.options import (
    REQUIRED,
    Derived,
    Option,
    OptionalSub,
    Refused,
    Section,
    Sub,
    options_of,
)
from feedpub.yamlfile import YamlError, read_yaml
from tests.conftest import REPO

_ROW = re.compile(r"\| `([a-z_.]+)` \| (.*?) \| (.*) \|")
_SAMPLE_KEY = re.compile(r"( *)(?:# ?( *))?([a-z_]+):(.*)")
_SAMPLE_COMMENT = re.compile(r" {2,}# (.*)$")
_SAMPLE_DEFAULT = re.compile(r"\((required[^()]*|default: .*)\)$")


def declared(
    section: type[Section] = ConfigOptions, prefix: str = "", optional: bool = False
) -> dict[str, tuple[Option[Any], bool]]:
    """Every key path declared, with its option and whether its section is optional."""
    found: dict[str, tuple[Option[Any], bool]] = {}
    for option in options_of(section):
        key = prefix + option.key
        if isinstance(option, Sub | OptionalSub):
            found |= declared(option.section_type, key + ".", isinstance(option, OptionalSub))
        elif not isinstance(option, Refused):
            found[key] = (option, optional)
    return found


def _shown(value: object, in_list: bool = False) -> str:
    """A default as config.yaml would hold it; list items quoted where YAML needs it."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, list):
        return "[" + ", ".join(_shown(v, in_list=True) for v in value) + "]"
    if isinstance(value, str) and in_list:
        try:
            plain = read_yaml(value) == value
        except YamlError:
            plain = False
        return value if plain else json.dumps(value)
    return str(value)


def documented_default(option: Option[Any], optional_section: bool) -> str:
    """The default as the README's tables write it."""
    if isinstance(option, Derived):
        return option.source
    if option.default is REQUIRED:
        return "required in the section" if optional_section else "required"
    if option.default is None:
        return "none"
    if option.default == "":
        return "empty"
    return f"`{_shown(option.default)}`"


def readme_disagreements(readme: str) -> list[str]:
    section = readme.split("\n## Configuration\n", 1)[1].split("\n## ", 1)[0]
    rows = {m[1]: (m[2], m[3]) for m in map(_ROW.fullmatch, section.splitlines()) if m}
    keys = declared()
    found = [f"README.md documents {key}, which is not declared" for key in rows if key not in keys]
    for key, (option, optional) in keys.items():
        if key not in rows:
            found.append(f"README.md has no row for {key}")
            continue
        default, meaning = rows[key]
        expected = documented_default(option, optional)
        if default != expected:
            found.append(f"README.md: {key}: default {default}, declared {expected}")
        if not meaning.startswith(option.doc):
            found.append(f"README.md: {key}: meaning does not start with {option.doc!r}")
    return found


def sample_disagreements(sample: str) -> list[str]:
    """What config.yaml sets, or shows in a comment, against the declarations."""
    keys = declared()
    stack: list[tuple[int, str]] = []
    shown: set[str] = set()
    found: list[str] = []
    for number, line in enumerate(sample.splitlines(), 1):
        match = _SAMPLE_KEY.fullmatch(line)
        if match is None:
            continue
        indent = len(match[1]) + len(match[2] or "")
        while stack and stack[-1][0] >= indent:
            stack.pop()
        key = ".".join([k for _, k in stack] + [match[3]])
        stack.append((indent, match[3]))
        comment = _SAMPLE_COMMENT.search(match[4])
        value = match[4][: comment.start()] if comment else match[4]
        if not value.strip():
            continue  # a section: its keys follow
        shown.add(key)
        if key not in keys:
            found.append(f"config.yaml:{number}: {key} is not declared")
            continue
        note = comment[1] if comment else ""
        default = _SAMPLE_DEFAULT.search(note)
        if default is None:
            if "default" in note or "required" in note:
                found.append(f"config.yaml:{number}: {key}: write it as (default: ...)")
            continue
        written = default[1].removeprefix("default: ")
        expected = documented_default(*keys[key]).replace("`", "")
        if written != expected:
            found.append(f"config.yaml:{number}: {key}: default {written}, declared {expected}")
    found += [f"config.yaml does not show {key}" for key in keys if key not in shown]
    return found


def test_the_readme_tables_match_the_declarations() -> None:
    assert readme_disagreements((REPO / "README.md").read_text(encoding="utf-8")) == []


def test_the_sample_config_matches_the_declarations() -> None:
    assert sample_disagreements((REPO / "config.yaml").read_text(encoding="utf-8")) == []


def test_a_wrong_readme_row_is_named() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    wrong = (
        readme.replace("| `feeds.limit` | `50` |", "| `feeds.limit` | `40` |")
        .replace("| `web.confirm_hours` |", "| `web.confirm_hour` |")
        .replace(
            "| `feeds.full_content` | `true` | Include", "| `feeds.full_content` | `true` | Put"
        )
    )
    assert readme_disagreements(wrong) == [
        "README.md documents web.confirm_hour, which is not declared",
        "README.md: feeds.limit: default `40`, declared `50`",
        "README.md: feeds.full_content: meaning does not start with "
        '"Include each post\'s full HTML, not only its summary."',
        "README.md has no row for web.confirm_hours",
    ]


def test_a_wrong_sample_line_is_named() -> None:
    sample = "\n".join(
        [
            "feeds:",
            "  limit: 50                 # items per feed (default: 40)",
            "  formats: [rss]            # default: all three",
            "# smtp:",
            "#   hots: smtp.example.org",
            "#   port: 25                # (default: 587 (465 with tls))",
        ]
    )
    found = sample_disagreements(sample)
    assert found[:4] == [
        "config.yaml:2: feeds.limit: default 40, declared 50",
        "config.yaml:3: feeds.formats: write it as (default: ...)",
        "config.yaml:5: smtp.hots is not declared",
        "config.yaml does not show site.title",
    ]
    assert "config.yaml does not show smtp.port" not in found
