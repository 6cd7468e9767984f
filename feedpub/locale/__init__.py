"""The message catalogs: feedpub's chrome text (digest, confirmation email, web
pages) in every language that has a ``LANGUAGE.po`` file in this folder.

A catalog is compiled when it is loaded, so a new language is one .po file.
"""

from __future__ import annotations

import gettext
from dataclasses import dataclass
from datetime import date
from io import BytesIO
from pathlib import Path

from babel import Locale, UnknownLocaleError
from babel.core import get_global
from babel.dates import format_date
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

CATALOGS_DIR = Path(__file__).parent
# The language the templates and the code are written in, and the fallback.
SOURCE_LANGUAGE = "en"


def shipped_languages() -> list[str]:
    """The catalogs in this folder, by name (``en``, ``zh_CN``)."""
    return sorted(path.stem for path in CATALOGS_DIR.glob("*.po"))


def _language_script_territory(locale: Locale) -> tuple[str, str | None, str | None]:
    """The locale's language, script and territory, the missing ones filled in
    from CLDR's likely subtags (zh -> Hans, CN; en-GB -> Latn)."""
    likely_subtags = get_global("likely_subtags")
    keys = (str(locale), f"{locale.language}_{locale.territory}", locale.language)
    likely = Locale.parse(next((likely_subtags[k] for k in keys if k in likely_subtags), locale))
    return (locale.language, locale.script or likely.script, locale.territory or likely.territory)


def catalog_name(language: str, available: list[str]) -> str:
    """The catalog for a language tag: one of the same language and script, the
    same territory preferred (zh, zh-CN, zh-Hans and zh-SG all read zh_CN;
    zh-TW, written in another script, does not); else the source language."""
    try:
        locale = Locale.parse(language, sep="-")
    except (ValueError, UnknownLocaleError):
        return SOURCE_LANGUAGE
    if str(locale) in available:
        return str(locale)
    wanted = _language_script_territory(locale)
    candidates = {name: _language_script_territory(Locale.parse(name)) for name in available}
    same_script = [name for name, found in candidates.items() if found[:2] == wanted[:2]]
    same_territory = [name for name in same_script if candidates[name] == wanted]
    return (same_territory or same_script or [SOURCE_LANGUAGE])[0]


@dataclass(frozen=True, slots=True)
class Catalog:
    """The chrome's text and dates in one language."""

    locale: Locale
    translations: gettext.GNUTranslations

    def gettext(self, message: str) -> str:
        return self.translations.gettext(message)

    def ngettext(self, singular: str, plural: str, count: int) -> str:
        return self.translations.ngettext(singular, plural, count)

    def pgettext(self, context: str, message: str) -> str:
        return self.translations.pgettext(context, message)

    def format_date(self, day: date) -> str:
        # TRANSLATORS: how the chrome writes a date, as a CLDR date pattern
        # (yyyy year, MM month as a number, MMMM its name, dd day), such as
        # "d MMMM yyyy". Keep yyyy-MM-dd for the ISO form.
        return format_date(day, self.gettext("yyyy-MM-dd"), locale=self.locale)


def load_catalog(language: str) -> Catalog:
    """The shipped catalog that fits the language tag ``language`` (see
    ``catalog_name``), compiled from its .po file."""
    name = catalog_name(language, shipped_languages())
    with (CATALOGS_DIR / f"{name}.po").open("rb") as po_file:
        messages = read_po(po_file, locale=name)
    compiled = BytesIO()
    write_mo(compiled, messages)
    compiled.seek(0)
    return Catalog(Locale.parse(name), gettext.GNUTranslations(compiled))


class Catalogs:
    """Catalogs loaded once each, by the language tag they were asked for."""

    def __init__(self) -> None:
        self._loaded: dict[str, Catalog] = {}

    def for_language(self, language: str) -> Catalog:
        if language not in self._loaded:
            self._loaded[language] = load_catalog(language)
        return self._loaded[language]
