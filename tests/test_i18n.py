"""Message catalogs: complete, chosen by site.language, and used by every piece
of chrome (digest, confirmation email, web pages and notices)."""

from __future__ import annotations

import email
import shutil
from dataclasses import replace
from datetime import date
from email.message import EmailMessage
from email.policy import default as default_policy
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog as MessageCatalog
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import read_po
from starlette.testclient import TestClient

from feedpub import locale
from feedpub.config import Config
from feedpub.confirmations import ConfirmationSender
from feedpub.delivery import OutboxDeliverer
from feedpub.locale import CATALOGS_DIR, catalog_name, load_catalog, shipped_languages
from feedpub.mail import build_message, with_default_name
from feedpub.model import Issue, Recipient
from feedpub.pipeline import DigestSender, compose_digest
from feedpub.store import Store
from feedpub.web import RateLimiter, create_app
from tests.conftest import NOW, REPO, sample_site
from tests.test_digest import _part, _text

SECRET = "test-secret-not-for-production"


def _extracted() -> MessageCatalog:
    """Every message the templates and the code mark, as Babel extracts them."""
    with (CATALOGS_DIR / "babel.cfg").open() as mapping:
        method_map, options_map = parse_mapping_cfg(mapping)
    found = MessageCatalog()
    for _, lineno, message, comments, context in extract_from_dir(
        REPO, method_map, options_map, comment_tags=("TRANSLATORS:",)
    ):
        found.add(message, None, [("", lineno)], auto_comments=comments, context=context)
    return found


def _shipped(name: str) -> MessageCatalog:
    with (CATALOGS_DIR / f"{name}.po").open("rb") as po_file:
        return read_po(po_file, locale=name)


def test_en_and_zh_cn_ship() -> None:
    assert shipped_languages() == ["en", "zh_CN"]


@pytest.mark.parametrize("name", ["en", "zh_CN"])
def test_each_catalog_holds_every_marked_message_and_no_other(name: str) -> None:
    def keys(catalog: MessageCatalog) -> set[tuple[str, str | None]]:
        return {(m.id if isinstance(m.id, str) else m.id[0], m.context) for m in catalog if m.id}

    extracted, shipped = keys(_extracted()), keys(_shipped(name))
    assert extracted - shipped == set(), "missing from the catalog"
    assert shipped - extracted == set(), "no longer used"
    assert len(extracted) > 50


def test_zh_cn_translates_every_message_with_the_same_placeholders() -> None:
    catalog = _shipped("zh_CN")
    untranslated = [m.id for m in catalog if m.id and not all(_strings(m.string))]
    assert untranslated == []
    # Babel checks that python-format placeholders match the msgid's.
    assert [(m.id, errors) for m, errors in catalog.check()] == []


def _strings(string: str | tuple[str, ...]) -> tuple[str, ...]:
    return (string,) if isinstance(string, str) else string


@pytest.mark.parametrize(
    ("language", "name"),
    [
        ("zh", "zh_CN"),
        ("zh-CN", "zh_CN"),
        ("zh-cn", "zh_CN"),
        ("zh-Hans", "zh_CN"),
        ("zh-SG", "zh_CN"),
        ("en", "en"),
        ("en-GB", "en"),
        ("fr", "en"),  # no catalog: English
        ("zh-TW", "en"),  # Traditional script: no catalog yet
        ("qqq", "en"),  # not a language Babel knows
    ],
)
def test_site_language_picks_a_catalog(language: str, name: str) -> None:
    assert catalog_name(language, shipped_languages()) == name


def test_a_territory_catalog_wins_over_the_language_one() -> None:
    assert catalog_name("pt-BR", ["en", "pt", "pt_BR"]) == "pt_BR"
    assert catalog_name("pt-PT", ["en", "pt", "pt_BR"]) == "pt"


def _issue(config: Config) -> Issue:
    draft = compose_digest(config, NOW, frozenset(), 1)
    assert draft.issue is not None
    return draft.issue


def test_the_digest_speaks_the_site_language(tmp_path: Path) -> None:
    config = sample_site(tmp_path)
    zh = _issue(config)
    assert "第 1 期 · 2026-11-30" in zh.text and "阅读全文: [1]" in zh.text
    assert ">退订</a> · <a" in zh.html and ">Unsubscribe<" not in zh.html
    en = _issue(replace(config, site=replace(config.site, language="en")))
    assert "Issue #1 · 2026-11-30" in en.text and "Read more: [1]" in en.text
    assert ">Unsubscribe</a> · <a" in en.html and "退订" not in en.html
    fallback = _issue(replace(config, site=replace(config.site, language="fr-CA")))
    assert (fallback.html, fallback.text) == (en.html.replace('lang="en"', 'lang="fr-CA"'), en.text)


@pytest.mark.parametrize(
    ("language", "greeting"),
    [("zh-CN", "读者，你好："), ("en", "Hello there,"), ("fr", "Hello there,")],
)
def test_a_subscriber_without_a_name_is_greeted_in_the_site_language(
    tmp_path: Path, language: str, greeting: str
) -> None:
    config = sample_site(tmp_path)
    assert config.newsletter is not None
    site = replace(
        config,
        site=replace(config.site, language=language),
        newsletter=replace(config.newsletter, default_name=None),
    )
    newsletter = with_default_name(site.require_newsletter(), language)
    nameless = Recipient("new@example.net", "", "tok-new-0123456789abcdef0123456789abcdef")
    assert greeting in _text(build_message(_issue(site), nameless, newsletter))
    named = replace(newsletter, default_name="friend")
    assert with_default_name(named, language).default_name == "friend"


def _confirmation(config: Config) -> EmailMessage:
    with Store(config.state) as store:
        store.queue_subscribe_request("new@example.net", "", NOW)
    ConfirmationSender(config, lambda c: OutboxDeliverer(c.outbox_dir), lambda: NOW).run()
    (path,) = config.outbox_dir.iterdir()
    message = email.message_from_bytes(path.read_bytes(), policy=default_policy)
    assert isinstance(message, EmailMessage)
    return message


def test_the_confirmation_speaks_the_site_language(tmp_path: Path) -> None:
    zh = _confirmation(sample_site(tmp_path / "zh"))
    assert zh["Subject"] == "确认订阅《AI 新闻速递 · AI News Digest》"
    assert "这个链接 48 小时内有效" in _part(zh, "plain")
    assert "请点击下面的按钮确认订阅。" in _part(zh, "html")
    config = sample_site(tmp_path / "en")
    en = _confirmation(replace(config, site=replace(config.site, language="en")))
    assert en["Subject"] == "Confirm your subscription: AI 新闻速递 · AI News Digest"
    assert "The link works for 48 hours." in _part(en, "plain")
    assert "Please confirm your subscription with the button below." in _part(en, "html")


@pytest.fixture
def zh_site(tmp_path: Path) -> Config:
    return sample_site(tmp_path)


def _client(config: Config, per_client: RateLimiter | None = None) -> TestClient:
    app = create_app(config, SECRET, clock=lambda: NOW, per_client=per_client)
    return TestClient(app, base_url="https://example.org")


def test_web_pages_and_notices_on_the_zh_site_are_chinese(zh_site: Config) -> None:
    client = _client(zh_site, RateLimiter(1, 600))
    page = client.get("/newsletter/subscribe")
    assert "订阅邮件简报" in page.text and ">往期</a>" in page.text
    form = page.text.split('name="csrf" value="', 1)[1].split('"', 1)[0]
    bad = client.post("/newsletter/subscribe", data={"csrf": form, "email": "nope"})
    assert bad.status_code == 400 and "这不是有效的邮箱地址。" in bad.text
    flood = client.post("/newsletter/subscribe", data={"csrf": form, "email": "a@example.net"})
    assert flood.status_code == 429 and "请求过于频繁" in flood.text
    expired = client.post("/newsletter/subscribe", data={"email": "a@example.net"})
    assert expired.status_code == 403 and "表单已过期" in expired.text
    forged = client.get("/newsletter/confirm/" + "0" * 32)
    assert forged.status_code == 400 and "链接无效" in forged.text and "重新订阅" in forged.text
    unknown = client.get("/newsletter/manage/" + "0" * 32)
    assert unknown.status_code == 404 and "找不到这个订阅" in unknown.text
    assert "还没有发过简报。" in client.get("/issues/").text
    assert "没有这一期" in client.get("/issues/9/").text


def test_web_notices_on_an_english_site_are_english(zh_site: Config) -> None:
    client = _client(replace(zh_site, site=replace(zh_site.site, language="en")))
    forged = client.get("/newsletter/confirm/" + "0" * 32)
    assert forged.status_code == 400 and "This link is not valid" in forged.text
    assert ">Past issues</a>" in forged.text and "链接" not in forged.text


FRENCH = """\
msgid ""
msgstr ""
"Language: fr\\n"
"Plural-Forms: nplurals=2; plural=(n > 1);\\n"

msgid "yyyy-MM-dd"
msgstr "d MMMM yyyy"

msgid "Past issues"
msgstr "Numéros précédents"

msgid "No such issue"
msgstr "Ce numéro n’existe pas"
"""


def test_a_new_language_is_one_po_file(
    tmp_path: Path, zh_site: Config, monkeypatch: pytest.MonkeyPatch
) -> None:
    catalogs = tmp_path / "locale"
    shutil.copytree(CATALOGS_DIR, catalogs, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    (catalogs / "fr.po").write_text(FRENCH, encoding="utf-8")
    monkeypatch.setattr(locale, "CATALOGS_DIR", catalogs)
    assert load_catalog("fr-CA").format_date(date(2026, 11, 30)) == "30 novembre 2026"
    french = replace(zh_site, site=replace(zh_site.site, language="fr"))
    client = _client(french)
    assert "No issue has gone out yet." in client.get("/issues/").text  # not translated: English
    assert "Ce numéro n’existe pas" in client.get("/issues/9/").text
    with Store(french.state) as store:
        store.add_subscriber("ada@example.net", "Ada", (), "active", NOW)
        DigestSender(french, store, OutboxDeliverer(french.outbox_dir), clock=lambda: NOW).run()
    listing = client.get("/issues/")
    assert "<h1>Numéros précédents</h1>" in listing.text
    assert "· 30 novembre 2026</span>" in listing.text
