"""The one reader of YAML: config.yaml and posts' front matter both come through here,
so the loader (libyaml's safe one), its errors and its scalar rules are chosen once.
"""

from __future__ import annotations

from typing import Any

import yaml

_RESOLVER = yaml.resolver.Resolver()
_CONSTRUCTOR = yaml.constructor.SafeConstructor()
# What a plain scalar that PyYAML reads as other than text starts with ("" for the empty
# scalar): PyYAML looks up the ways to read one by its first character.
RESOLVED_FIRSTS = frozenset(_RESOLVER.yaml_implicit_resolvers)


class YamlError(Exception):
    """Text that is not valid YAML: ``problem`` in words, ``line`` (from 0) where known."""

    def __init__(self, problem: str, line: int | None) -> None:
        super().__init__(problem)
        self.problem = problem
        self.line = line


def read_yaml(text: str) -> Any:
    """The document in ``text`` as plain Python values; ``YamlError`` when it is not YAML."""
    try:
        return yaml.load(text, Loader=yaml.CSafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        raise YamlError(str(exc.problem), mark.line if mark else None) from None
    except (yaml.YAMLError, ValueError) as exc:  # ValueError: a date such as 2025-13-45
        raise YamlError(str(exc), None) from None
    except (KeyError, IndexError, TypeError, OverflowError):
        # PyYAML's constructors fail so on a tag with a value it cannot take
        # ("!!bool maybe", "!!int" with nothing after it).
        raise YamlError("a tagged value (such as !!int or !!bool) cannot be read", None) from None


def plain_scalar(text: str) -> Any:
    """An unquoted scalar as ``read_yaml`` reads it: str, int, float, bool, None, date...;
    ValueError when it would not read it."""
    tag = _RESOLVER.resolve(yaml.ScalarNode, text, (True, False))  # type: ignore[no-untyped-call]
    try:
        return _CONSTRUCTOR.yaml_constructors[tag](_CONSTRUCTOR, yaml.ScalarNode(tag, text))
    except (KeyError, ValueError, yaml.YAMLError):
        raise ValueError(f"{text!r} is not a plain YAML scalar") from None
