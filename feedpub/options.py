"""Declared options: each key of config.yaml is written once, as an ``Option`` on a
``Section`` class, with its default, its check and a one-line doc (mkdocs'
``config_options`` is the model).

A default is written as config.yaml would hold it and read by the option itself, so
it obeys the same check. Reading a section reports every problem to a ``Report``,
which lists them in the order the options are declared, wherever they were found.
"""

from __future__ import annotations

import string
from collections.abc import Mapping, Sequence
from typing import Any, Generic, TypeVar, overload
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from feedpub.model import Problem, Severity

T = TypeVar("T")
S = TypeVar("S", bound="Section")


UNSET: Any = object()
"""A key that is not in the file. (A key with no value, null, counts as not given.)"""
REQUIRED: Any = object()
"""The default of an option that has none: the key must be given."""


class Invalid(Exception):
    """A value an option refuses; each of ``messages`` says why."""

    def __init__(self, *messages: str) -> None:
        super().__init__(*messages)
        self.messages = messages


def kind(value: object) -> str:
    """How a YAML value looks to the person who wrote it."""
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, int | float):
        return f"the number {value}"
    if isinstance(value, str):
        return f"{value!r}"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__


def one_of(words: Sequence[str]) -> str:
    """``a, b or c``."""
    return f"{', '.join(words[:-1])} or {words[-1]}" if len(words) > 1 else words[0]


class Report:
    """The problems found in one file, each placed where its key is declared."""

    def __init__(self, label: str) -> None:
        self.label = label
        self._found: list[tuple[tuple[int, ...], Problem]] = []

    def add(
        self, place: tuple[int, ...], message: str, severity: Severity = Severity.ERROR
    ) -> None:
        self._found.append((place, Problem(self.label, message, severity=severity)))

    def problems(self) -> list[Problem]:
        return [problem for _, problem in sorted(self._found, key=lambda found: found[0])]


class Option(Generic[T]):
    """One key: ``default`` (a config.yaml value, or ``REQUIRED``), a one-line ``doc``,
    and ``convert``, which checks a value that is there and turns it into ``T``."""

    def __init__(self, *, doc: str, default: object = REQUIRED, key: str = "") -> None:
        self.doc = doc
        self.default = default
        self.key = key
        self.name = key

    def __set_name__(self, owner: type[Section], name: str) -> None:
        self.name = name
        self.key = self.key or name

    @overload
    def __get__(self, section: None, owner: type[Section]) -> Option[T]: ...
    @overload
    def __get__(self, section: Section, owner: type[Section]) -> T: ...
    def __get__(self, section: Section | None, owner: type[Section]) -> Option[T] | T:
        if section is None:
            return self
        value: T = section.value(self.name)
        return value

    def convert(self, value: object) -> T:
        raise NotImplementedError

    def unset(self) -> T:
        """The value when the key is not given."""
        return self.convert(self.default)

    def blank(self) -> T:
        """A stand-in for a required value that is missing or wrong (the file is refused)."""
        raise TypeError(f"{type(self).__name__} cannot be required")

    def read(self, value: object, section: Section) -> T:
        if value is UNSET or value is None:
            if self.default is REQUIRED:
                section.refuse(self.name, "is required")
                return self.blank()
            return self.unset()
        try:
            return self.convert(value)
        except Invalid as exc:
            section.refuse(self.name, *exc.messages)
            return self.blank() if self.default is REQUIRED else self.unset()


class Derived(Option[T | None]):
    """An option whose default is worked out from other keys (``source`` says from what,
    as the README does); unset, it reads as None for the section's builder to fill in."""

    def __init__(self, option: Option[T], source: str) -> None:
        super().__init__(doc=option.doc, default=None, key=option.key)
        self.option = option
        self.source = source

    def convert(self, value: object) -> T | None:
        return self.option.convert(value)

    def unset(self) -> None:
        return None


class Refused(Option[None]):
    """A key that must not be in the file (such as a password); not a setting of its own."""

    def __init__(self, reason: str) -> None:
        super().__init__(doc=reason, default=None)

    def convert(self, value: object) -> None:
        raise Invalid(self.doc)

    def unset(self) -> None:
        return None


def as_text(value: object) -> str:
    """A scalar as text (``5`` is ``"5"``); Invalid for lists, mappings and true/false."""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise Invalid(f"expected text, got {kind(value)}")
    return str(value)


def as_texts(value: object) -> tuple[str, ...]:
    """A list of text; one text alone is a list of one."""
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise Invalid(f"expected a list of text, got {kind(value)}")
    return tuple(value)


class Text(Option[str]):
    def convert(self, value: object) -> str:
        return as_text(value)

    def blank(self) -> str:
        return ""


class Choice(Text):
    """One word of ``allowed``."""

    def __init__(self, allowed: Sequence[str], *, doc: str, default: object = REQUIRED) -> None:
        super().__init__(doc=doc, default=default)
        self.allowed = tuple(allowed)

    def convert(self, value: object) -> str:
        text = super().convert(value)
        if text not in self.allowed:
            raise Invalid(f"expected {one_of(self.allowed)}, got {text!r}")
        return text


class Pattern(Text):
    """A ``str.format`` pattern using only the placeholders in ``fields``, and
    ``needs`` among them when given (``example`` shows how)."""

    def __init__(
        self, fields: Sequence[str], *, doc: str, default: str, needs: str = "", example: str = ""
    ) -> None:
        super().__init__(doc=doc, default=default)
        self.fields = tuple(fields)
        self.needs = needs
        self.example = example

    def convert(self, value: object) -> str:
        pattern = super().convert(value)
        try:
            used = [f for _, f, _, _ in string.Formatter().parse(pattern) if f is not None]
        except ValueError as exc:
            raise Invalid(f"is not a valid pattern ({exc})") from None
        unknown = [f for f in used if f not in self.fields]
        if unknown:
            allowed = ", ".join("{" + f + "}" for f in self.fields)
            raise Invalid(f"unknown placeholder {{{unknown[0]}}}; use {allowed}")
        if self.needs and self.needs not in used:
            raise Invalid(f"expected a pattern with {{{self.needs}}}, such as {self.example}")
        return pattern


class TimeZone(Option[ZoneInfo]):
    def convert(self, value: object) -> ZoneInfo:
        name = as_text(value)
        try:
            return ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            raise Invalid(
                f"expected an IANA time zone name such as Asia/Shanghai, got {name!r}"
            ) from None


class Integer(Option[int]):
    def __init__(self, *, doc: str, default: object = REQUIRED, minimum: int) -> None:
        super().__init__(doc=doc, default=default)
        self.minimum = minimum

    def convert(self, value: object) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value < self.minimum:
            raise Invalid(f"expected a whole number of at least {self.minimum}, got {kind(value)}")
        return value


class Port(Integer):
    def __init__(self, *, doc: str, default: object = REQUIRED) -> None:
        super().__init__(doc=doc, default=default, minimum=1)

    def convert(self, value: object) -> int:
        port = super().convert(value)
        if port > 65535:
            raise Invalid(f"expected a port number up to 65535, got the number {port}")
        return port


class Number(Option[float]):
    def __init__(self, *, doc: str, default: float, minimum: float) -> None:
        super().__init__(doc=doc, default=default)
        self.minimum = minimum

    def convert(self, value: object) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float) or value < self.minimum:
            raise Invalid(f"expected a number of at least {self.minimum:g}, got {kind(value)}")
        return float(value)


class Boolean(Option[bool]):
    def convert(self, value: object) -> bool:
        if not isinstance(value, bool):
            raise Invalid(f"expected true or false, got {kind(value)}")
        return value


class Params(Option[Mapping[str, Any]]):
    """A mapping of names to any YAML values, names matched without regard to case."""

    def convert(self, value: object) -> Mapping[str, Any]:
        if not isinstance(value, Mapping):
            raise Invalid(f"expected a mapping of names to values, got {kind(value)}")
        return {str(name).lower(): item for name, item in value.items()}


class TextList(Option[tuple[str, ...]]):
    def convert(self, value: object) -> tuple[str, ...]:
        return as_texts(value)


class ChoiceList(TextList):
    """Words of ``allowed``, each once; at least one when ``nonempty``."""

    def __init__(self, allowed: Sequence[str], *, doc: str, nonempty: bool = False) -> None:
        super().__init__(doc=doc, default=list(allowed))
        self.allowed = tuple(allowed)
        self.nonempty = nonempty

    def convert(self, value: object) -> tuple[str, ...]:
        words = super().convert(value)
        wrong = [w for w in words if w not in self.allowed]
        if wrong:
            allowed = ", ".join(self.allowed)
            raise Invalid(f"expected a list drawn from {allowed}, got {wrong[0]!r}")
        if self.nonempty and not words:
            raise Invalid(f"expected at least one of {', '.join(self.allowed)}")
        return tuple(dict.fromkeys(words))


class Sub(Option[S]):
    """A mapping of its own, read by ``section_type``; missing, all its defaults hold."""

    def __init__(self, section_type: type[S], *, key: str = "") -> None:
        super().__init__(doc="", default=None, key=key)
        self.section_type = section_type

    def read(self, value: object, section: Section) -> S:
        return section.subsection(self, None if value is UNSET else value)


class OptionalSub(Option[S | None]):
    """A mapping that turns a feature on: None when the key is not in the file."""

    def __init__(self, section_type: type[S]) -> None:
        super().__init__(doc="", default=None)
        self.section_type = section_type

    def read(self, value: object, section: Section) -> S | None:
        return None if value is UNSET else section.subsection(self, value)


def options_of(section_type: type[Section]) -> list[Option[Any]]:
    """The options ``section_type`` declares, in order."""
    return [v for v in vars(section_type).values() if isinstance(v, Option)]


class Section:
    """A mapping of config.yaml read by the options its subclass declares; problems go
    to ``report``, each named by its key path. (Attributes are private so that any
    name is free for an option.)"""

    def __init__(
        self,
        data: object,
        report: Report,
        path: tuple[str, ...] = (),
        place: tuple[int, ...] = (),
    ) -> None:
        self._report = report
        self._path = path
        self._place = place
        self._values: dict[str, Any] = {}
        self._refused: set[str] = set()
        declared = options_of(type(self))
        self._index = {option.name: i for i, option in enumerate(declared)}
        self._keys = {option.name: option.key for option in declared}
        mapping: Mapping[Any, Any] = data if isinstance(data, Mapping) else {}
        if data is not None and not isinstance(data, Mapping):
            where = ".".join(path) or "top level"
            report.add(place, f"{where}: expected a mapping, got {kind(data)}")
        for option in declared:
            self._values[option.name] = option.read(mapping.get(option.key, UNSET), self)
        keys = list(self._keys.values())
        for key in mapping:
            if key not in keys:
                import difflib  # here: only a config with a misspelt key needs it

                hint = difflib.get_close_matches(str(key), sorted(keys), n=1)
                suggestion = f" (did you mean {hint[0]!r}?)" if hint else ""
                message = f"{self._key_path(str(key))}: unknown key, ignored{suggestion}"
                report.add((*place, len(keys)), message, Severity.WARNING)

    def _key_path(self, key: str) -> str:
        return ".".join((*self._path, key))

    def value(self, name: str) -> Any:
        """What the option called ``name`` read."""
        return self._values[name]

    def subsection(self, option: Sub[S] | OptionalSub[S], data: object) -> S:
        """``data`` read as the section ``option`` declares."""
        place = (*self._place, self._index[option.name])
        return option.section_type(data, self._report, (*self._path, option.key), place)

    def refuse(self, name: str, *messages: str) -> None:
        """Report why the value of the option called ``name`` cannot be used."""
        self._refused.add(name)
        place = (*self._place, self._index[name])
        for message in messages:
            self._report.add(place, f"{self._key_path(self._keys[name])}: {message}")

    def error(self, name: str, message: str) -> None:
        """Report ``message`` about the option called ``name``, unless its value was
        refused already (a check across keys has nothing to add then)."""
        if name not in self._refused:
            self.refuse(name, message)
