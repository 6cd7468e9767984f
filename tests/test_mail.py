"""One issue for one recipient: the headers mail clients and inbox providers
read (RFC 5322, 2369, 8058) and Message-IDs that never collide."""

from __future__ import annotations

import html
import re
from dataclasses import replace
from urllib.parse import quote

from hypothesis import given, settings
from hypothesis import strategies as st

from feedpub.config import Config, NewsletterConfig
from feedpub.digest import PLACEHOLDERS
from feedpub.mail import MessageMaker, build_message, message_name
from feedpub.model import Issue, Recipient
from tests.test_digest import ADA, _html, _parse


def test_message_headers(config: Config, issue: Issue) -> None:
    message = _parse(build_message(issue, ADA, config.newsletter))  # type: ignore[arg-type]
    assert message["From"] == "AI News Digest <digest@example.org>"
    assert message["To"] == "Ada Lovelace <ada@example.net>"
    assert message["Reply-To"] == "desk@example.org"
    assert message["Subject"] == "AI 新闻速递 · AI News Digest #1: 微软将为云客户评定AI模型安全等级"
    assert message["Date"] == "Mon, 30 Nov 2026 12:00:00 +0000"
    assert re.fullmatch(r"<feedpub\.1\.[0-9a-f]{32}@example\.org>", message["Message-ID"])
    assert message["List-Id"] == "AI 新闻速递 · AI News Digest <digest.example.org>"
    assert message["List-Unsubscribe"] == (
        f"<https://example.org/newsletter/unsubscribe/{ADA.token}>, "
        f"<mailto:unsubscribe@example.org?subject=unsubscribe%20{ADA.token}>"
    )
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert message.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in message.iter_parts()] == ["text/plain", "text/html"]


def test_list_unsubscribe_is_never_an_encoded_word(config: Config, issue: Issue) -> None:
    long_token = "x" * 120
    raw = build_message(issue, replace(ADA, token=long_token), config.newsletter).as_bytes()  # type: ignore[arg-type]
    header = re.search(rb"^List-Unsubscribe: .*?\r\n(?=\S)", raw, re.S | re.M)
    assert header is not None
    assert b"=?" not in header.group(0)
    assert all(len(line) <= 998 for line in header.group(0).split(b"\r\n"))
    assert long_token.encode() in header.group(0).replace(b"\r\n ", b" ")


def test_message_id_is_stable_per_issue_and_recipient(config: Config, issue: Issue) -> None:
    newsletter: NewsletterConfig = config.newsletter  # type: ignore[assignment]
    first = build_message(issue, ADA, newsletter)
    again = build_message(issue, ADA, newsletter)
    other = build_message(issue, replace(ADA, email="bob@example.net"), newsletter)
    assert first["Message-ID"] == again["Message-ID"] != other["Message-ID"]
    assert first.as_bytes() == again.as_bytes()
    next_issue = replace(issue, number=2)
    assert build_message(next_issue, ADA, newsletter)["Message-ID"] != first["Message-ID"]
    other_list = replace(newsletter, list_id="other.example.org")
    assert build_message(issue, ADA, other_list)["Message-ID"] != first["Message-ID"]
    shouted = build_message(issue, replace(ADA, email="ADA@Example.NET"), newsletter)
    assert shouted["Message-ID"] == first["Message-ID"]  # one address, however it is spelled


def test_message_ids_of_two_recipients_never_collide(config: Config, issue: Issue) -> None:
    newsletter: NewsletterConfig = config.newsletter  # type: ignore[assignment]
    # Among 31,000 subscribers these two shared the 32-bit digest ids once carried.
    pair = [replace(ADA, email=e) for e in ("user2607@example.com", "user31079@example.com")]
    first, second = (build_message(issue, r, newsletter) for r in pair)
    assert first["Message-ID"] != second["Message-ID"]
    assert message_name(first) != message_name(second)


_NAMES = st.text(alphabet=st.sampled_from("Ada Lovelace张三éß\"\\,;:<>()@.\t-'!"), max_size=80)
_TOKENS = st.text(alphabet=st.sampled_from("abcdef0123456789-_~"), min_size=1, max_size=120)


@settings(max_examples=200, deadline=None)
@given(
    name=_NAMES,
    local=st.from_regex(r"[a-z0-9][a-z0-9+_-]{0,30}(\.[a-z0-9]{1,8})?", fullmatch=True),
    token=_TOKENS,
)
def test_the_fast_maker_writes_the_bytes_of_the_full_message(
    config: Config, issue: Issue, name: str, local: str, token: str
) -> None:
    """What is sent is what build_message describes, byte for byte, whatever the
    recipient's name (quotes, commas, CJK, long), address and token."""
    assert config.newsletter is not None
    for newsletter in (config.newsletter, replace(config.newsletter, reply_to=None)):
        recipient = Recipient(f"{local}@example.net", name, token)
        data, data_name = MessageMaker(issue, newsletter).make(recipient)
        message = build_message(issue, recipient, newsletter)
        assert data == message.as_bytes()
        assert data_name == message_name(message)


def test_the_fast_maker_fills_in_placeholders_as_build_message_does(
    config: Config, issue: Issue
) -> None:
    """Values that hold or complete a placeholder, templates with CR or with
    placeholders side by side: each still comes out as build_message writes it."""
    assert config.newsletter is not None
    name, email, unsubscribe = (PLACEHOLDERS[key] for key in ("name", "email", "unsubscribe_url"))
    issues = [
        issue,
        replace(issue, text=f"Hi {name}\r\n{email}{unsubscribe}.\r", html=f"<p>{name}{email}</p>"),
        replace(issue, text=f"{name[:-2]}{name}{name[-2:]} {email[:5]}", html=f"{name}x{email}"),
    ]
    names = ["Ada", f"Ada {email}", f"Ada {email[:-1]}", name[:-3], f"x{email[-2:]}", "e", ""]
    for each in issues:
        maker = MessageMaker(each, config.newsletter)
        for who in names:
            recipient = Recipient("ada@example.net", who, "tok-ada")
            assert (
                maker.make(recipient)[0]
                == build_message(each, recipient, config.newsletter).as_bytes()
            )


def test_a_token_goes_into_the_urls_as_the_whole_url_would_be_quoted(
    config: Config, issue: Issue
) -> None:
    assert config.newsletter is not None
    template = "https://example.org/u/{token}?again={token}&note=ä b"
    newsletter = replace(config.newsletter, unsubscribe_url=template)
    for token in ("tok-ada", "tok/ä b%", "~x.y_z"):
        message = build_message(issue, replace(ADA, token=token), newsletter)
        expected = quote(template.replace("{token}", token), safe=":/?#[]@!$&'()*+,;=%~")
        assert str(message["List-Unsubscribe"]).startswith(f"<{expected}>, <mailto:")
        assert html.escape(expected) in _html(message)
