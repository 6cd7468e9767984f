"""Every key of config.yaml, declared once: its type, default, check and doc.

The README's configuration tables and the sample config.yaml are held to these
declarations by tests/test_config_docs.py. Checks that need more than one key live
with the builders in ``feedpub.config``.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from feedpub.cron import CronSchedule, parse_cron
from feedpub.options import (
    Boolean,
    Choice,
    ChoiceList,
    Derived,
    Integer,
    Invalid,
    Number,
    Option,
    OptionalSub,
    Params,
    Pattern,
    Port,
    Refused,
    Section,
    Sub,
    Text,
    TextList,
    TimeZone,
    as_text,
    as_texts,
    kind,
)
from feedpub.pacing import DomainPace
from feedpub.subscribers import check_email
from feedpub.verp import template_problem

FEED_FORMATS = ("rss", "atom", "json")
TAXONOMIES = ("tags", "categories")
PERMALINK_FIELDS = ("folder", "slug", "year", "month", "day")
# The DKIM signature algorithms (RFC 6376, RFC 8463).
DKIM_ALGORITHMS = ("rsa-sha256", "ed25519-sha256")
# Hugo's permalink attributes (resources/page/permalinks.go) that a post's file
# and front matter decide; the ones that name the post itself come first.
HUGO_NAMING_ATTRIBUTES = (
    "slug",
    "title",
    "filename",
    "slugorfilename",
    "contentbasename",
    "slugorcontentbasename",
)
HUGO_ATTRIBUTES = (
    *HUGO_NAMING_ATTRIBUTES,
    "section",
    "year",
    "month",
    "monthname",
    "day",
    "weekday",
    "weekdayname",
    "yearday",
)
# A Hugo attribute: a colon and a word (a colon written \: is a colon).
HUGO_ATTRIBUTE = re.compile(r"(?<!\\):(\w+)")
# Where popular themes keep a post's cover image (PaperMod, Docsy, Ananke, Stack...).
DEFAULT_COVER_FIELDS = (
    "cover.image",
    "images",
    "image",
    "featured_image",
    "banner",
    "thumbnail",
)
SUBJECT_FIELDS = ("title", "site_title", "number", "date", "lead_title")
_LANGUAGE = re.compile(r"[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8})*")
_DOMAIN_NAME = re.compile(r"(?:[a-z0-9](?:[a-z0-9-]*[a-z0-9])?\.)+[a-z0-9-]+")
_INTERVAL = re.compile(r"(\d+)\s*([smh])")
_INTERVAL_SECONDS = {"s": 1, "m": 60, "h": 3600}

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True, slots=True)
class IntervalSchedule:
    """A build every ``seconds``, written as an interval such as ``15m``."""

    seconds: int
    text: str

    def __str__(self) -> str:
        return self.text


class Language(Text):
    def convert(self, value: object) -> str:
        tag = super().convert(value)
        if not _LANGUAGE.fullmatch(tag):
            raise Invalid(f"expected a language tag such as en or zh-CN, got {tag!r}")
        return tag


class AbsoluteUrl(Text):
    """An absolute http(s) URL, ending in a slash (added when missing)."""

    def convert(self, value: object) -> str:
        url = super().convert(value)
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise Invalid(
                f"expected an absolute http(s) URL such as https://example.org/, got {url!r}"
            )
        return url if url.endswith("/") else url + "/"


class TokenUrl(Text):
    """A link pattern holding ``{token}``, relative to site.url or absolute."""

    def convert(self, value: object) -> str:
        pattern = super().convert(value)
        if "{token}" not in pattern:
            raise Invalid(f"expected a URL pattern with {{token}}, got {pattern!r}")
        return pattern


class BounceAddress(Option[str | None]):
    """A VERP envelope sender: an address with ``{token}`` in its local part;
    empty is none."""

    def convert(self, value: object) -> str | None:
        text = as_text(value)
        if not text:
            return None
        problem = template_problem(text)
        if problem is not None:
            raise Invalid(problem)
        return text

    def unset(self) -> None:
        return None


class Email(Option[str | None]):
    """An email address as subscribers' addresses are checked; empty is none."""

    def convert(self, value: object) -> str | None:
        address = as_text(value)
        if not address:
            return None
        try:
            return check_email(address)
        except ValueError:
            raise Invalid(f"expected an email address, got {address!r}") from None

    def unset(self) -> None:
        return None


def hugo_pattern(pattern: str) -> bool:
    """Whether a permalink pattern is in Hugo's syntax (``:slug``) rather than
    feedpub's (``{slug}``)."""
    return "{" not in pattern and HUGO_ATTRIBUTE.search(pattern) is not None


class Permalink(Pattern):
    """A post's URL pattern: ``posts/{slug}/``, or Hugo's own permalink syntax
    (``/:year/:month/:slug/``) as written in hugo.toml."""

    def convert(self, value: object) -> str:
        pattern = as_text(value)
        if not hugo_pattern(pattern):
            return super().convert(value)
        used = HUGO_ATTRIBUTE.findall(pattern)
        unknown = [a for a in used if a not in HUGO_ATTRIBUTES]
        if unknown:
            allowed = ", ".join(":" + a for a in HUGO_ATTRIBUTES)
            raise Invalid(f"unknown Hugo permalink attribute :{unknown[0]}; use {allowed}")
        if not any(a in HUGO_NAMING_ATTRIBUTES for a in used):
            raise Invalid(
                "expected a pattern that names the post, with :slug, :title, :filename or "
                f":contentbasename, such as /:year/:month/:slug/, got {pattern!r}"
            )
        return pattern


class Cron(Option[CronSchedule]):
    def convert(self, value: object) -> CronSchedule:
        try:
            return parse_cron(as_text(value))
        except ValueError as exc:
            raise Invalid(str(exc)) from None


class BuildSchedule(Option[CronSchedule | IntervalSchedule]):
    """An interval such as ``15m`` (at least 10 seconds) or a cron schedule."""

    def convert(self, value: object) -> CronSchedule | IntervalSchedule:
        text = as_text(value)
        match = _INTERVAL.fullmatch(text.strip())
        if match is not None:
            seconds = int(match.group(1)) * _INTERVAL_SECONDS[match.group(2)]
            if seconds < 10:
                raise Invalid(f"expected an interval of at least 10s, got {text!r}")
            return IntervalSchedule(seconds, text)
        try:
            return parse_cron(text)
        except ValueError as exc:
            raise Invalid(f"expected an interval such as 15m or a cron schedule; {exc}") from None


class Networks(Option[tuple[Network, ...]]):
    """IP addresses (one-address networks) and CIDR networks."""

    def convert(self, value: object) -> tuple[Network, ...]:
        networks: list[Network] = []
        problems: list[str] = []
        for text in as_texts(value):
            try:
                networks.append(ipaddress.ip_network(text.strip()))
            except ValueError:
                try:
                    whole = ipaddress.ip_network(text.strip(), strict=False)
                except ValueError:
                    problems.append(
                        "expected IP addresses or networks such as 10.0.0.1, 10.0.0.0/8 or "
                        f"fd00::/8, got {text!r}"
                    )
                else:
                    problems.append(f"{text!r} has host bits set; write the network as {whole}")
        if problems:
            raise Invalid(*problems)
        return tuple(networks)


class AuthorOptions(Section):
    name = Derived(Text(doc="Author of posts that name none."), "`site.title`")
    email = Email(doc="The author's email address.", default=None)


class SiteOptions(Section):
    title = Text(doc="Title of the site, its feeds and newsletter.")
    url = AbsoluteUrl(doc="Absolute `http(s)` URL of the site.")
    id = Derived(Text(doc="A stable name for the site, used in feed ids."), "host of `site.url`")
    description = Derived(Text(doc="One-line description for feeds."), "`site.title`")
    language = Language(doc="Language tag such as `en` or `zh-CN`.", default="en")
    timezone = TimeZone(doc="IANA time zone name.", default="UTC")
    author = Sub(AuthorOptions)
    params = Params(
        doc="Values for the `param` shortcode when a post's front matter has none (Hugo's "
        "`params`).",
        default={},
    )


class ContentOptions(Section):
    dir = Text(doc="Folder of posts.", default="content")
    static_dir = Text(
        doc="Folder whose files the site serves at its root (Hugo's `static/`).", default="static"
    )
    include = TextList(
        doc="Glob patterns relative to `content.dir`; `**/` spans folders, `*` does not.",
        default=["**/*.md", "**/*.markdown"],
    )
    exclude = TextList(
        doc="Glob patterns to leave out (the sample config leaves out Hugo's `_index.md`).",
        default=[],
    )
    permalink = Permalink(
        PERMALINK_FIELDS,
        doc="Each post's URL relative to `site.url`, in this form or in Hugo's (see below).",
        default="posts/{slug}/",
        needs="slug",
        example="posts/{slug}/",
    )
    cover_fields = TextList(
        doc="Front-matter fields tried in order for a post's cover image; `cover.image` is "
        "`image` inside `cover`, and a list gives its first item.",
        default=list(DEFAULT_COVER_FIELDS),
    )


class FeedsOptions(Section):
    output_dir = Text(doc="Where feeds are written.", default="feeds")
    formats = ChoiceList(FEED_FORMATS, doc="Which feed formats to write.", nonempty=True)
    limit = Integer(doc="Items per feed, newest first.", default=50, minimum=1)
    full_content = Boolean(doc="Include each post's full HTML, not only its summary.", default=True)
    summary_length = Integer(
        doc="Length of generated summaries: words in Latin text, characters in CJK text.",
        default=70,
        minimum=1,
    )
    taxonomies = ChoiceList(TAXONOMIES, doc="Which taxonomies get a feed per term.")
    base_url = Text(
        doc="Where `feeds.output_dir` is served, relative to `site.url` or absolute.",
        default="feeds/",
    )
    stylesheet = Boolean(
        doc="Write `feed.xsl` and reference it from the RSS and Atom feeds, so a person who "
        'opens a feed in a browser sees a readable page with a "copy this address into your '
        'feed reader" hint.',
        default=True,
    )


class SenderOptions(Section):
    name = Derived(Text(doc="Sender name."), "`newsletter.title`")
    email = Derived(
        Email(doc="Sender address (required one way or the other)."), "`site.author.email`"
    )


class NewsletterOptions(Section):
    title = Derived(
        Text(doc="The newsletter's name, in the header, footer and `List-Id`."), "`site.title`"
    )
    sender = Sub(SenderOptions, key="from")
    subject = Pattern(
        SUBJECT_FIELDS, doc="Subject pattern.", default="{title} #{number}: {lead_title}"
    )
    template = Text(
        doc="Template set in `templates_dir` (or built in): "
        "`NAME.html.j2`, `NAME.txt.j2`, `NAME.css`.",
        default="digest",
    )
    content = Choice(
        ("summary", "full"),
        doc="`summary`, or `full` for each post's whole HTML in the email "
        "(the text part always has summaries).",
        default="summary",
    )
    schedule = Cron(
        doc="When the daemon sends: five cron fields (minute hour day month weekday) "
        "in `site.timezone`.",
        default="0 8 * * mon",
    )
    reply_to = Email(doc="`Reply-To` address.", default=None)
    max_posts = Integer(doc="Posts shown in one issue.", default=10, minimum=1)
    unsubscribe_url = TokenUrl(
        doc="Unsubscribe link pattern, relative to `site.url` or absolute; must hold `{token}`.",
        default="newsletter/unsubscribe/{token}",
    )
    manage_url = TokenUrl(
        doc="Subscription settings link pattern; must hold `{token}`.",
        default="newsletter/manage/{token}",
    )
    unsubscribe_email = Derived(
        Email(doc="The `mailto:` address in `List-Unsubscribe`."), "`newsletter.from.email`"
    )
    postal_address = Text(
        doc="Postal address shown in the footer (anti-spam laws ask for one).", default=""
    )
    default_name = Derived(
        Text(doc="Used in the greeting for subscribers who gave no name."),
        "the word for a reader in `site.language`",
    )
    list_id = Derived(Text(doc="The `List-Id` identifier."), "`newsletter.<from domain>`")
    bounce_address = BounceAddress(
        doc="The envelope sender of each message, with `{token}` where each delivery's own "
        "token goes (VERP): `bounces+{token}@example.org`. Bounces come back to it and name "
        "the delivery they are about; `feedpub bounces fetch` reads them.",
        default=None,
    )


class DeliveryOptions(Section):
    soft_bounce_limit = Integer(
        doc="Soft bounces (a full mailbox, a server down for days) within "
        "`delivery.soft_bounce_days` that mark a subscriber `bounced`.",
        default=3,
        minimum=1,
    )
    soft_bounce_days = Integer(
        doc="The days over which soft bounces are counted.", default=30, minimum=1
    )
    lease_seconds = Integer(
        doc="How long a worker holds the deliveries it claims before another may take "
        "them over: one that dies is replaced this long after. Renewed while it sends.",
        default=60,
        minimum=5,
    )
    batch = Integer(doc="How many deliveries a worker claims at a time.", default=100, minimum=1)


class BouncesOptions(Section):
    source = Choice(
        ("maildir", "mbox", "imap"),
        doc="Where bounces and complaints arrive: `maildir`, `mbox` or `imap`.",
    )
    path = Text(doc="The Maildir folder or the mbox file, for `maildir` and `mbox`.", default="")
    host = Text(doc="The IMAP server, for `imap`.", default="")
    port = Derived(Port(doc="The IMAP server's port."), "993 (143 with `starttls` or `none`)")
    security = Choice(
        ("tls", "starttls", "none"),
        doc="`tls` (implicit TLS), `starttls` or `none` (only for a server on this machine).",
        default="tls",
    )
    username = Text(doc="The IMAP user name.", default="")
    password = Refused(
        "secrets never go in this file; name an environment variable in "
        "bounces.password_env instead"
    )
    password_env = Text(
        doc="The environment variable holding the IMAP password.",
        default="FEEDPUB_BOUNCES_PASSWORD",
    )
    folder = Text(doc="The IMAP folder bounces arrive in.", default="INBOX")
    processed_folder = Derived(
        Text(doc="The IMAP folder read messages are moved to."),
        "none: they are marked seen",
    )
    max_bytes = Integer(
        doc="Larger messages are not read, only reported and set aside.",
        default=10_000_000,
        minimum=10_000,
    )
    timeout = Number(doc="Seconds to wait for the IMAP server.", default=30, minimum=1)
    ca_file = Derived(
        Text(doc="A CA certificate file to trust, for a server with a private certificate."),
        "system store",
    )


class SesOptions(Section):
    topics = TextList(
        doc="The ARNs of the SNS topics whose notifications are taken; any other topic is "
        "refused (anyone can sign through SNS)."
    )


class PostmarkOptions(Section):
    username = Text(doc="The user name of the webhook's basic authentication.")
    password_env = Text(
        doc="The environment variable holding its password.",
        default="FEEDPUB_POSTMARK_PASSWORD",
    )


class MailgunOptions(Section):
    signing_key_env = Text(
        doc="The environment variable holding Mailgun's HTTP webhook signing key.",
        default="FEEDPUB_MAILGUN_SIGNING_KEY",
    )


class SendgridOptions(Section):
    public_key = Text(
        doc="The verification key of SendGrid's signed event webhook (base64, as SendGrid "
        "shows it)."
    )


class WebhooksOptions(Section):
    ses = OptionalSub(SesOptions)
    postmark = OptionalSub(PostmarkOptions)
    mailgun = OptionalSub(MailgunOptions)
    sendgrid = OptionalSub(SendgridOptions)


class ServerUrl(Option[str | None]):
    """A PostgreSQL database's URL, without a password; empty is none."""

    def unset(self) -> None:
        return None

    def convert(self, value: object) -> str | None:
        text = as_text(value).strip()
        if not text:
            return None
        parts = urlsplit(text)
        if parts.scheme not in ("postgresql", "postgres", "postgresql+psycopg"):
            raise Invalid(
                f"expected a PostgreSQL URL such as postgresql://feedpub@db.example.org:5432/"
                f"feedpub, got {text!r}"
            )
        if parts.password is not None:
            raise Invalid(
                "secrets never go in this file; take the password out of the URL and name an "
                "environment variable in state.password_env instead"
            )
        try:
            parts.port  # noqa: B018 (raises for a port that is not a number)
        except ValueError:
            raise Invalid(f"the port in {text!r} is not a number") from None
        if not parts.path.strip("/"):
            raise Invalid(f"expected the database's name after the host, as in {text}/feedpub")
        return "postgresql" + text[len(parts.scheme) :]


class StateOptions(Section):
    path = Text(
        doc="The SQLite state file: subscribers, issues, the posts each covered, deliveries. "
        "With `state.url`, its folder still holds this machine's build cache.",
        default="state/feedpub.db",
    )
    url = ServerUrl(
        doc="A PostgreSQL database to keep the state in instead, shared by every worker, "
        "daemon and web process on any machine: `postgresql://feedpub@db.example.org:5432/"
        "feedpub`. No password here: see `state.password_env`.",
        default=None,
    )
    password = Refused(
        "secrets never go in this file; name an environment variable in state.password_env instead"
    )
    password_env = Text(
        doc="The environment variable that holds the PostgreSQL password (unset: none, as "
        "with a local socket or a `~/.pgpass` file).",
        default="FEEDPUB_STATE_PASSWORD",
    )


# How each domain's limits are checked, as smtp.rate_limit and smtp.connections are.
_DOMAIN_RATE = Number(doc="", default=0, minimum=0)
_DOMAIN_CONNECTIONS = Integer(doc="", default=0, minimum=0)


class DomainLimits(Option[Mapping[str, DomainPace]]):
    """Recipient domains, each with its ``rate`` and ``connections``."""

    def convert(self, value: object) -> Mapping[str, DomainPace]:
        if not isinstance(value, Mapping):
            raise Invalid(f"expected a mapping of domains to their limits, got {kind(value)}")
        limits: dict[str, DomainPace] = {}
        problems: list[str] = []
        for domain, pace in value.items():
            name = str(domain).strip().lower()
            if not _DOMAIN_NAME.fullmatch(name):
                problems.append(f"{domain!r} is not a domain name")
            elif not isinstance(pace, Mapping) or set(pace) - {"rate", "connections"}:
                problems.append(f"{name}: expected a mapping with rate and connections")
            else:
                try:
                    rate = _DOMAIN_RATE.convert(pace.get("rate", 0))
                    connections = _DOMAIN_CONNECTIONS.convert(pace.get("connections", 0))
                except Invalid as exc:
                    problems.extend(f"{name}: {message}" for message in exc.messages)
                    continue
                limits[name] = DomainPace(rate, connections)
        if problems:
            raise Invalid(*problems)
        return limits


class DkimOptions(Section):
    selector = Text(
        doc="The DKIM selector: the public key is published at `SELECTOR._domainkey.DOMAIN`."
    )
    domain = Text(doc="The signing domain (`d=`).")
    key_file = Text(
        doc="The private key: for `rsa-sha256` in PEM; for `ed25519-sha256` the key's 32 bytes "
        "in base64, as `dknewkey --ktype ed25519` writes it."
    )
    algorithm = Choice(
        DKIM_ALGORITHMS,
        doc="`rsa-sha256`, or `ed25519-sha256` (RFC 8463; smaller and faster keys, which not "
        "every receiver checks yet).",
        default="rsa-sha256",
    )


class SmtpOptions(Section):
    host = Text(doc="The mail server.")
    port = Derived(Port(doc="The mail server's port."), "587 (465 with `tls`)")
    security = Choice(
        ("starttls", "tls", "none"),
        doc="`starttls`, `tls` (implicit TLS) or `none`.",
        default="starttls",
    )
    username = Derived(Text(doc="Log in with this user name (AUTH)."), "none")
    password = Refused(
        "secrets never go in this file; name an environment variable in smtp.password_env instead"
    )
    password_env = Text(
        doc="The environment variable holding the password.", default="FEEDPUB_SMTP_PASSWORD"
    )
    timeout = Number(doc="Seconds to wait for the server.", default=30, minimum=1)
    rate_limit = Number(doc="Messages per second at most; `0` for no limit.", default=0, minimum=0)
    connections = Integer(
        doc="Connections to the server used at once for a digest (each keeps to "
        "`smtp.rate_limit`).",
        default=1,
        minimum=1,
    )
    max_attempts = Integer(
        doc="Tries per message in one run when the server answers 4xx or the connection drops; "
        "then the message waits for the next run.",
        default=4,
        minimum=1,
    )
    retry_delay = Number(
        doc="Seconds before the first retry, doubled for each further one (at most 60).",
        default=2,
        minimum=0,
    )
    ca_file = Derived(
        Text(doc="A CA certificate file to trust, for servers with a private certificate."),
        "system store",
    )
    domains = DomainLimits(
        doc="Recipient domains to pace, each with `rate` (messages per second at most; `0` for "
        "no limit) and `connections` (messages on their way at once; `0` for "
        "`smtp.connections`): `{gmail.com: {rate: 20, connections: 2}}`. A subdomain counts "
        'as its domain. A domain that answers 4xx "too many" or "rate limited" has its '
        "rate halved (one a second if it had none), at most once in 30 s and never below one "
        'a minute; the other domains go on as they were. A greylisting "try again later" '
        "slows nothing.",
        default={},
    )
    dkim = OptionalSub(DkimOptions)


class ScheduleOptions(Section):
    build = BuildSchedule(
        doc="How often the daemon rebuilds the feeds: an interval (`90s`, `15m`, `2h`, "
        "at least 10 s) or five cron fields as in `newsletter.schedule`, in `site.timezone`.",
        default="15m",
    )
    bounces = BuildSchedule(
        doc="How often the daemon reads the bounce mailbox, when there is a `bounces` "
        "section: an interval or five cron fields, as `schedule.build`.",
        default="30m",
    )


class WebOptions(Section):
    host = Text(doc="The address `feedpub serve` listens on.", default="127.0.0.1")
    port = Port(doc="The port `feedpub serve` listens on.", default=8080)
    public_url = Derived(
        AbsoluteUrl(
            doc="The address people reach the web app at; confirmation links start with it."
        ),
        "`site.url`",
    )
    secret_env = Text(
        doc="The environment variable with the secret (at least 32 bytes) "
        "that signs the form tokens and their cookies.",
        default="FEEDPUB_SECRET_KEY",
    )
    confirm_hours = Integer(doc="How long a confirmation link works.", default=48, minimum=1)
    trusted_proxies = Networks(
        doc="The reverse proxies whose `X-Forwarded-For` header may name the client: "
        "a list of IP addresses or CIDR networks, IPv4 or IPv6 "
        "(`127.0.0.1`, `10.0.0.0/8`, `::1`).",
        default=[],
    )

    status_token_env = Text(
        doc="The environment variable holding the token that opens the status page "
        "`/status` (the password of the browser's login prompt, any user name); "
        "while it is unset, there is no status page.",
        default="FEEDPUB_STATUS_TOKEN",
    )


class ConfigOptions(Section):
    """The whole file."""

    site = Sub(SiteOptions)
    content = Sub(ContentOptions)
    feeds = Sub(FeedsOptions)
    templates_dir = Text(doc="Your templates.", default="templates")
    newsletter = OptionalSub(NewsletterOptions)
    state = Sub(StateOptions)
    outbox_dir = Text(
        doc="Without an `smtp` section, each message is written here "
        "as an `.eml` file instead of sent.",
        default="outbox",
    )
    smtp = OptionalSub(SmtpOptions)
    delivery = Sub(DeliveryOptions)
    bounces = OptionalSub(BouncesOptions)
    schedule = Sub(ScheduleOptions)
    web = Sub(WebOptions)
    webhooks = Sub(WebhooksOptions)
