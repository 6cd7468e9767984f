from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest

from feedpub.config import load_config
from feedpub.cron import parse_cron
from feedpub.errors import ConfigError
from feedpub.model import Severity
from tests.conftest import REPO


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def _messages(path: Path) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    return [str(p) for p in caught.value.problems]


def test_the_bundled_config_is_valid_and_quiet() -> None:
    config = load_config(REPO / "config.yaml")
    assert config.warnings == ()
    assert config.site.url == "https://example.org/"
    assert str(config.site.timezone) == "Asia/Shanghai"
    assert config.content.dir == REPO / "content"
    assert config.feeds.formats == ("rss", "atom", "json")


def test_defaults_for_a_minimal_config(tmp_path: Path) -> None:
    config = load_config(_write(tmp_path, "site:\n  title: T\n  url: https://e.org\n"))
    assert config.site.url == "https://e.org/"
    assert config.site.description == "T"
    assert config.site.language == "en"
    assert str(config.site.timezone) == "UTC"
    assert config.site.author.name == "T" and config.site.author.email is None
    assert config.content.dir == tmp_path / "content"
    assert config.content.include == ("**/*.md", "**/*.markdown")
    assert config.content.permalink == "posts/{slug}/"
    feeds = config.feeds
    assert (feeds.output_dir, feeds.limit, feeds.full_content, feeds.summary_length) == (
        tmp_path / "feeds",
        50,
        True,
        70,
    )
    assert feeds.taxonomies == ("tags", "categories")


def test_paths_are_relative_to_the_config_folder(tmp_path: Path) -> None:
    (tmp_path / "site").mkdir()
    path = tmp_path / "site" / "config.yaml"
    path.write_text(
        "site: {title: T, url: 'https://e.org/'}\ncontent: {dir: posts}\nfeeds: {output_dir: ../out}\n"
    )
    config = load_config(path)
    assert config.content.dir == tmp_path / "site" / "posts"
    assert config.feeds.output_dir == tmp_path / "site" / "../out"


def test_every_problem_is_reported_at_once_with_its_key(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        """site:
  url: example.org
  language: "english please"
  timezone: Mars/Olympus
  author: {email: nobody}
content:
  permalink: "posts/{title}/"
  include: 5
feeds:
  limit: 0
  full_content: "yes"
  summary_length: 2.5
  formats: [rss, xml]
  taxonomies: tags
""",
    )
    label = str(path)
    assert _messages(path) == [
        f"{label}: site.title: is required",
        f"{label}: site.url: expected an absolute http(s) URL such as https://example.org/, got 'example.org'",
        f"{label}: site.language: expected a language tag such as en or zh-CN, got 'english please'",
        f"{label}: site.timezone: expected an IANA time zone name such as Asia/Shanghai, got 'Mars/Olympus'",
        f"{label}: site.author.email: expected an email address, got 'nobody'",
        f"{label}: content.include: expected a list of text, got the number 5",
        f"{label}: content.permalink: unknown placeholder {{title}}; use {{folder}}, {{slug}}, {{year}}, {{month}}, {{day}}",
        f"{label}: feeds.formats: expected a list drawn from rss, atom, json, got 'xml'",
        f"{label}: feeds.limit: expected a whole number of at least 1, got the number 0",
        f"{label}: feeds.full_content: expected true or false, got 'yes'",
        f"{label}: feeds.summary_length: expected a whole number of at least 1, got the number 2.5",
    ]


def test_a_permalink_without_slug_is_refused(tmp_path: Path) -> None:
    path = _write(
        tmp_path, "site: {title: T, url: 'https://e.org/'}\ncontent: {permalink: '{year}/'}\n"
    )
    assert _messages(path) == [
        f"{path}: content.permalink: expected a pattern with {{slug}}, such as posts/{{slug}}/"
    ]


def test_a_section_that_is_not_a_mapping(tmp_path: Path) -> None:
    path = _write(tmp_path, "site: {title: T, url: 'https://e.org/'}\nfeeds: [rss]\n")
    assert _messages(path) == [f"{path}: feeds: expected a mapping, got a list"]


def test_unknown_keys_are_warned_about_with_a_suggestion(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "site: {title: T, url: 'https://e.org/', titel: X}\nfeeds: {limt: 5}\nnewsleter: {}\n",
    )
    config = load_config(path)
    assert [str(w) for w in config.warnings] == [
        f"{path}: warning: site.titel: unknown key, ignored (did you mean 'title'?)",
        f"{path}: warning: feeds.limt: unknown key, ignored (did you mean 'limit'?)",
        f"{path}: warning: newsleter: unknown key, ignored (did you mean 'newsletter'?)",
    ]
    assert all(w.severity is Severity.WARNING for w in config.warnings)
    assert config.feeds.limit == 50


def test_invalid_yaml_names_the_line(tmp_path: Path) -> None:
    path = _write(tmp_path, "site:\n  title: T\n  url: [unclosed\n")
    assert _messages(path) == [f"{path}:4: invalid YAML: did not find expected ',' or ']'"]


def test_a_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.yaml"
    assert _messages(path) == [f"{path}: file not found (pass --config PATH)"]


SITE = "site: {title: T, url: 'https://e.org/'}\n"
SENDER = SITE.replace("}", ", author: {email: me@e.org}}")


def test_newsletter_defaults(tmp_path: Path) -> None:
    path = _write(tmp_path, SENDER + "newsletter: {}\n")
    newsletter = load_config(path).newsletter
    assert newsletter is not None
    assert (newsletter.title, newsletter.sender_name, newsletter.sender_email) == (
        "T",
        "T",
        "me@e.org",
    )
    assert newsletter.subject == "{title} #{number}: {lead_title}"
    assert (newsletter.max_posts, newsletter.template, newsletter.content) == (
        10,
        "digest",
        "summary",
    )
    assert newsletter.schedule == parse_cron("0 8 * * mon")
    assert newsletter.unsubscribe_url == "https://e.org/newsletter/unsubscribe/{token}"
    assert newsletter.manage_url == "https://e.org/newsletter/manage/{token}"
    assert newsletter.unsubscribe_email == "me@e.org"
    assert newsletter.list_id == "newsletter.e.org"
    assert load_config(_write(tmp_path, SITE)).newsletter is None


def test_newsletter_problems_are_named(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        SITE
        + """newsletter:
  from: {email: not-an-address}
  subject: "{title} {when}"
  template: fancy
  content: everything
  schedule: "0 8 * *"
  unsubscribe_url: "https://e.org/unsubscribe"
  reply_to: nobody
""",
    )
    label = str(path)
    assert _messages(path) == [
        f"{label}: newsletter.from.email: expected an email address, got 'not-an-address'",
        f"{label}: newsletter.subject: unknown placeholder {{when}}; use {{title}}, {{site_title}}, {{number}}, {{date}}, {{lead_title}}",
        f"{label}: newsletter.template: no template set 'fancy': expected fancy.html.j2 in {tmp_path / 'templates'} or among the built-in templates",
        f"{label}: newsletter.content: expected summary or full, got 'everything'",
        f"{label}: newsletter.schedule: expected 5 cron fields (minute hour day month weekday), got 4",
        f"{label}: newsletter.reply_to: expected an email address, got 'nobody'",
        f"{label}: newsletter.unsubscribe_url: expected a URL pattern with {{token}}, got 'https://e.org/unsubscribe'",
    ]


def test_newsletter_needs_a_sender(tmp_path: Path) -> None:
    path = _write(tmp_path, SITE + "newsletter: {title: News}\n")
    assert _messages(path) == [
        f"{path}: newsletter.from.email: is required (or set site.author.email)"
    ]


def test_the_schedule_is_read_once_here_for_the_scheduler(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        SENDER
        + "newsletter: {schedule: '0 8 * * sat-sun'}\nschedule: {build: '0 */2 * * fri-mon'}\n",
    )
    config = load_config(path)
    assert config.newsletter is not None
    assert config.newsletter.schedule == parse_cron("0 8 * * sat-sun")
    assert config.build_schedule == parse_cron("0 */2 * * fri-mon")


def test_a_schedule_running_backwards_says_how_to_write_it(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        SENDER + "newsletter: {schedule: '0 22-6 * * *'}\nschedule: {build: '0 8 31 feb *'}\n",
    )
    assert _messages(path) == [
        f"{path}: newsletter.schedule: hour range 22-6 runs backwards; write it as 22-23,0-6",
        f"{path}: schedule.build: expected an interval such as 15m or a cron schedule; day '31' never comes in month 'feb'; the schedule would never run",
    ]


OWN_FOLDER = (
    "feeds.output_dir: must be a folder of its own, since everything in it is served to the public"
)


@pytest.mark.parametrize(
    ("settings", "problem"),
    [
        ("feeds: {output_dir: .}", "'.' is the site folder, with config.yaml"),
        ("feeds: {output_dir: ./}", "'.' is the site folder, with config.yaml"),
        ("feeds: {output_dir: ..}", "'..' contains the site folder, with config.yaml"),
        (
            "feeds: {output_dir: content}",
            "'content' is the content folder content, drafts included",
        ),
        (
            "feeds: {output_dir: site}\ncontent: {dir: site/posts}",
            "'site' contains the content folder site/posts, drafts included",
        ),
        (
            "feeds: {output_dir: state}",
            "'state' contains the state file state/feedpub.db, with subscribers' addresses",
        ),
        (
            "feeds: {output_dir: public}\nstate: {path: public/../public/x.db}",
            "'public' contains the state file public/../public/x.db, with subscribers' addresses",
        ),
        (
            "feeds: {output_dir: outbox}",
            "'outbox' is the outbox folder outbox, with every message sent",
        ),
        (
            "feeds: {output_dir: out}\noutbox_dir: out/mail",
            "'out' contains the outbox folder out/mail, with every message sent",
        ),
        ("feeds: {output_dir: templates}", "'templates' is the templates folder templates"),
        ("feeds: {output_dir: static}", "'static' is the static folder static"),
    ],
)
def test_the_output_folder_holds_nothing_else(tmp_path: Path, settings: str, problem: str) -> None:
    path = _write(tmp_path, SITE + settings + "\n")
    assert _messages(path) == [f"{path}: {OWN_FOLDER}; {problem}"]


def test_the_output_folder_is_compared_after_symlinks(tmp_path: Path) -> None:
    (tmp_path / "site").mkdir()
    (tmp_path / "public").symlink_to(tmp_path / "site")
    path = tmp_path / "site" / "config.yaml"
    path.write_text(SITE + f"feeds: {{output_dir: {tmp_path / 'public'}}}\n")
    assert _messages(path) == [
        f"{path}: {OWN_FOLDER}; '{tmp_path / 'public'}' is the site folder, with config.yaml"
    ]


@pytest.mark.parametrize("output_dir", ["feeds", "static/feeds", "../public", "content-feeds"])
def test_an_output_folder_of_its_own_is_fine(tmp_path: Path, output_dir: str) -> None:
    (tmp_path / "site").mkdir()
    path = tmp_path / "site" / "config.yaml"
    path.write_text(SITE + f"feeds: {{output_dir: {output_dir}}}\n")
    assert load_config(path).feeds.output_dir == tmp_path / "site" / output_dir


def test_a_login_is_never_sent_in_clear_text_over_the_network(tmp_path: Path) -> None:
    path = _write(
        tmp_path, SITE + "smtp: {host: smtp.example.org, security: none, username: digest}\n"
    )
    assert _messages(path) == [
        f"{path}: smtp.security: none would send the password for smtp.username to "
        "smtp.example.org in clear text; use starttls or tls (none with a login is only for "
        "a server on this machine: localhost, 127.0.0.1 or ::1)"
    ]


@pytest.mark.parametrize(
    ("host", "security", "username"),
    [
        ("localhost", "none", "digest"),
        ("LocalHost", "none", "digest"),
        ("127.0.0.1", "none", "digest"),
        ("127.8.9.10", "none", "digest"),
        ("::1", "none", "digest"),
        ("smtp.example.org", "none", ""),  # no login, no password to give away
        ("smtp.example.org", "starttls", "digest"),
        ("smtp.example.org", "tls", "digest"),
    ],
)
def test_plain_smtp_is_fine_on_this_machine_or_without_a_login(
    tmp_path: Path, host: str, security: str, username: str
) -> None:
    path = _write(
        tmp_path, SITE + f"smtp: {{host: '{host}', security: {security}, username: '{username}'}}\n"
    )
    smtp = load_config(path).smtp
    assert smtp is not None and (smtp.host, smtp.security) == (host, security)


def test_trusted_proxies(tmp_path: Path) -> None:
    assert load_config(_write(tmp_path, SITE)).web.trusted_proxies == ()
    path = _write(
        tmp_path,
        SITE + "web:\n  trusted_proxies: [127.0.0.1, 10.0.0.0/8, '::1', '2001:db8::/32']\n",
    )
    assert load_config(path).web.trusted_proxies == (
        ipaddress.IPv4Network("127.0.0.1/32"),
        ipaddress.IPv4Network("10.0.0.0/8"),
        ipaddress.IPv6Network("::1/128"),
        ipaddress.IPv6Network("2001:db8::/32"),
    )
    one = _write(tmp_path, SITE + "web: {trusted_proxies: 192.168.1.2}\n")
    assert load_config(one).web.trusted_proxies == (ipaddress.IPv4Network("192.168.1.2/32"),)


def test_bad_trusted_proxies_are_named(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        SITE + "web:\n  trusted_proxies: [10.0.0.1/8, proxy.local, 10.0.0.0/33, 'fe80::1/10']\n",
    )
    assert _messages(path) == [
        f"{path}: web.trusted_proxies: '10.0.0.1/8' has host bits set; write the network as 10.0.0.0/8",
        f"{path}: web.trusted_proxies: expected IP addresses or networks such as 10.0.0.1, 10.0.0.0/8 or fd00::/8, got 'proxy.local'",
        f"{path}: web.trusted_proxies: expected IP addresses or networks such as 10.0.0.1, 10.0.0.0/8 or fd00::/8, got '10.0.0.0/33'",
        f"{path}: web.trusted_proxies: 'fe80::1/10' has host bits set; write the network as fe80::/10",
    ]
    not_a_list = _write(tmp_path, SITE + "web: {trusted_proxies: 5}\n")
    assert _messages(not_a_list) == [
        f"{not_a_list}: web.trusted_proxies: expected a list of text, got the number 5"
    ]


def test_hugo_permalinks_and_cover_fields_are_read(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "site: {title: T, url: 'https://e.org/'}\n"
        "content: {permalink: '/:year/:month/:slug/', cover_fields: [hero, cover.image]}\n",
    )
    config = load_config(path)
    assert config.content.permalink == ":year/:month/:slug/"
    assert config.content.cover_fields == ("hero", "cover.image")


@pytest.mark.parametrize(
    ("pattern", "problem"),
    [
        (
            "/:year/:sections/:slug/",
            "unknown Hugo permalink attribute :sections; use :slug, :title, :filename, "
            ":slugorfilename, :contentbasename, :slugorcontentbasename, :section, :year, "
            ":month, :monthname, :day, :weekday, :weekdayname, :yearday",
        ),
        (
            "/:year/:month/",
            "expected a pattern that names the post, with :slug, :title, :filename or "
            ":contentbasename, such as /:year/:month/:slug/, got '/:year/:month/'",
        ),
    ],
)
def test_bad_hugo_permalinks_are_named(tmp_path: Path, pattern: str, problem: str) -> None:
    path = _write(
        tmp_path,
        f"site: {{title: T, url: 'https://e.org/'}}\ncontent: {{permalink: '{pattern}'}}\n",
    )
    assert _messages(path) == [f"{path}: content.permalink: {problem}"]


def test_list_health_keys_and_their_defaults(tmp_path: Path) -> None:
    config = load_config(_write(tmp_path, SITE))
    assert (config.delivery.limit, config.delivery.days) == (3, 30)
    assert config.bounces is None and config.bounce_schedule is None
    assert config.webhooks.ses_topics is None and config.webhooks.postmark is None
    path = _write(
        tmp_path,
        SITE
        + "newsletter: {from: {email: d@example.org}, bounce_address: 'b+{token}@example.org'}\n"
        + "bounces: {source: imap, host: imap.example.org, username: b}\n"
        + "schedule: {bounces: 10m}\n"
        + "webhooks: {ses: {topics: [arn:aws:sns:eu-west-1:1:t]}, postmark: {username: p}}\n",
    )
    config = load_config(path)
    assert config.newsletter is not None
    assert config.newsletter.bounce_address == "b+{token}@example.org"
    assert config.bounces is not None
    assert (config.bounces.port, config.bounces.folder) == (993, "INBOX")
    assert config.bounce_schedule is not None and config.bounce_schedule.seconds == 600
    assert config.webhooks.ses_topics == frozenset({"arn:aws:sns:eu-west-1:1:t"})
    assert config.webhooks.postmark == ("p", "FEEDPUB_POSTMARK_PASSWORD")


def test_list_health_mistakes_are_named(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        SITE
        + "newsletter: {from: {email: d@example.org}, bounce_address: 'bounces@example.org'}\n"
        + "bounces: {source: imap, security: none, host: imap.example.org}\n"
        + "webhooks: {ses: {topics: []}}\n",
    )
    assert _messages(path) == [
        f"{path}: newsletter.bounce_address: expected exactly one {{token}} in the local part, "
        "like bounces+{token}@example.org, got 'bounces@example.org'",
        f"{path}: bounces.security: none would send the password for bounces.username to "
        "imap.example.org in clear text; use tls or starttls (none is only for a server on "
        "this machine)",
        f"{path}: bounces.username: is required with source: imap",
        f"{path}: webhooks.ses.topics: needs at least one topic ARN: anyone can sign through SNS",
    ]
    path = _write(tmp_path, SITE + "bounces: {source: maildir}\n")
    assert _messages(path) == [f"{path}: bounces.path: is required with source: maildir"]
