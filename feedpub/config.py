"""config.yaml: its schema, defaults and validation.

``load_config`` reads the file once and returns a typed, frozen ``Config``;
every problem is reported at once, each named by its key path.
"""

from __future__ import annotations

import ipaddress
import re
import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml

from feedpub.cron import CronSchedule, parse_cron
from feedpub.errors import ConfigError
from feedpub.model import Author, Problem, Severity
from feedpub.theme import template_path

FEED_FORMATS = ("rss", "atom", "json")
DIGEST_CONTENT = ("summary", "full")
SMTP_SECURITY = ("starttls", "tls", "none")
SUBJECT_FIELDS = ("title", "site_title", "number", "date", "lead_title")
_INTERVAL = re.compile(r"(\d+)\s*([smh])")
INTERVAL_SECONDS = {"s": 1, "m": 60, "h": 3600}
TAXONOMIES = ("tags", "categories")
PERMALINK_FIELDS = ("slug", "year", "month", "day")

_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
_LANGUAGE = re.compile(r"[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8})*")


@dataclass(frozen=True, slots=True)
class SiteConfig:
    title: str
    url: str
    id: str
    description: str
    language: str
    timezone: ZoneInfo
    author: Author


@dataclass(frozen=True, slots=True)
class ContentConfig:
    dir: Path
    static_dir: Path
    include: tuple[str, ...]
    exclude: tuple[str, ...]
    permalink: str


@dataclass(frozen=True, slots=True)
class FeedsConfig:
    output_dir: Path
    limit: int
    full_content: bool
    summary_length: int
    formats: tuple[str, ...]
    taxonomies: tuple[str, ...]
    base_url: str
    stylesheet: bool


@dataclass(frozen=True, slots=True)
class NewsletterConfig:
    title: str
    sender_name: str
    sender_email: str
    reply_to: str | None
    subject: str
    max_posts: int
    template: str
    content: str
    schedule: CronSchedule
    unsubscribe_url: str
    manage_url: str
    unsubscribe_email: str
    postal_address: str
    default_name: str
    list_id: str


@dataclass(frozen=True, slots=True)
class DkimConfig:
    selector: str
    domain: str
    key_file: Path


@dataclass(frozen=True, slots=True)
class SmtpConfig:
    host: str
    port: int
    security: str
    username: str | None
    password_env: str
    timeout: float
    rate_limit: float
    max_attempts: int
    retry_delay: float
    ca_file: Path | None
    dkim: DkimConfig | None


@dataclass(frozen=True, slots=True)
class WebConfig:
    host: str
    port: int
    public_url: str
    secret_env: str
    confirm_hours: int
    trusted_proxies: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]


@dataclass(frozen=True, slots=True)
class IntervalSchedule:
    """A build every ``seconds``, written as an interval such as ``15m``."""

    seconds: int
    text: str

    def __str__(self) -> str:
        return self.text


@dataclass(frozen=True, slots=True)
class Config:
    path: Path
    site: SiteConfig
    content: ContentConfig
    feeds: FeedsConfig
    templates_dir: Path
    newsletter: NewsletterConfig | None
    state_path: Path
    outbox_dir: Path
    smtp: SmtpConfig | None
    build_schedule: CronSchedule | IntervalSchedule
    web: WebConfig
    warnings: tuple[Problem, ...]

    def require_newsletter(self) -> NewsletterConfig:
        if self.newsletter is None:
            raise ConfigError(
                [
                    Problem(
                        str(self.path),
                        "newsletter: section missing; the digest needs newsletter.from",
                    )
                ]
            )
        return self.newsletter


def _kind(value: object) -> str:
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


_MISSING = object()


class _Section:
    """One mapping of the file, read key by key; problems go to a shared list."""

    def __init__(self, data: object, prefix: str, label: str, problems: list[Problem]) -> None:
        self._prefix = prefix
        self._label = label
        self._problems = problems
        self._seen: set[str] = set()
        self._data: Mapping[Any, Any] = {}
        if isinstance(data, Mapping):
            self._data = data
        elif data is not None:
            self._problems.append(
                Problem(
                    label,
                    f"{prefix or 'top level'}: expected a mapping, got {_kind(data)}",
                )
            )

    def _key(self, key: str) -> str:
        return f"{self._prefix}.{key}" if self._prefix else key

    def error(self, key: str, message: str) -> None:
        self._problems.append(Problem(self._label, f"{self._key(key)}: {message}"))

    def raw(self, key: str) -> object:
        self._seen.add(key)
        return self._data.get(key, _MISSING)

    def section(self, key: str) -> _Section:
        value = self.raw(key)
        return _Section(
            None if value is _MISSING else value,
            self._key(key),
            self._label,
            self._problems,
        )

    def text(self, key: str, default: str | None = None) -> str:
        value = self.raw(key)
        if value is _MISSING or value is None:
            if default is None:
                self.error(key, "is required")
                return ""
            return default
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            self.error(key, f"expected text, got {_kind(value)}")
            return default or ""
        return str(value)

    def integer(self, key: str, default: int, minimum: int) -> int:
        value = self.raw(key)
        if value is _MISSING:
            return default
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            self.error(
                key,
                f"expected a whole number of at least {minimum}, got {_kind(value)}",
            )
            return default
        return value

    def boolean(self, key: str, default: bool) -> bool:
        value = self.raw(key)
        if value is _MISSING:
            return default
        if not isinstance(value, bool):
            self.error(key, f"expected true or false, got {_kind(value)}")
            return default
        return value

    def strings(self, key: str, default: tuple[str, ...]) -> tuple[str, ...]:
        value = self.raw(key)
        if value is _MISSING:
            return default
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            self.error(key, f"expected a list of text, got {_kind(value)}")
            return default
        return tuple(value)

    def choices(
        self, key: str, default: tuple[str, ...], allowed: tuple[str, ...]
    ) -> tuple[str, ...]:
        values = self.strings(key, default)
        wrong = [v for v in values if v not in allowed]
        if wrong:
            self.error(
                key,
                f"expected a list drawn from {', '.join(allowed)}, got {wrong[0]!r}",
            )
            return default
        return tuple(dict.fromkeys(values))

    def warn_unknown(self) -> None:
        known = sorted(self._seen)
        for key in self._data:
            if key in self._seen:
                continue
            import difflib  # only for a key to warn about

            hint = difflib.get_close_matches(str(key), known, n=1)
            suggestion = f" (did you mean {hint[0]!r}?)" if hint else ""
            self._problems.append(
                Problem(
                    self._label,
                    f"{self._key(str(key))}: unknown key, ignored{suggestion}",
                    severity=Severity.WARNING,
                )
            )


def _site(section: _Section) -> SiteConfig:
    title = section.text("title")
    url = section.text("url")
    parts = urlsplit(url)
    if url and (parts.scheme not in ("http", "https") or not parts.netloc):
        section.error(
            "url",
            f"expected an absolute http(s) URL such as https://example.org/, got {url!r}",
        )
    if not url.endswith("/"):
        url += "/"
    site_id = section.text("id", parts.hostname or "")
    description = section.text("description", title)
    language = section.text("language", "en")
    if not _LANGUAGE.fullmatch(language):
        section.error("language", f"expected a language tag such as en or zh-CN, got {language!r}")
    zone_name = section.text("timezone", "UTC")
    try:
        timezone = ZoneInfo(zone_name)
    except (ZoneInfoNotFoundError, ValueError):
        section.error(
            "timezone",
            f"expected an IANA time zone name such as Asia/Shanghai, got {zone_name!r}",
        )
        timezone = ZoneInfo("UTC")
    author_section = section.section("author")
    author = Author(author_section.text("name", title), author_section.text("email", "") or None)
    if author.email and not _EMAIL.fullmatch(author.email):
        author_section.error("email", f"expected an email address, got {author.email!r}")
    author_section.warn_unknown()
    return SiteConfig(title, url, site_id, description, language, timezone, author)


def _permalink(section: _Section) -> str:
    pattern = section.text("permalink", "posts/{slug}/")
    try:
        fields = [f for _, f, _, _ in string.Formatter().parse(pattern) if f is not None]
    except ValueError as exc:
        section.error("permalink", f"is not a valid pattern ({exc})")
        return pattern
    unknown = [f for f in fields if f not in PERMALINK_FIELDS]
    if unknown:
        allowed = ", ".join("{" + f + "}" for f in PERMALINK_FIELDS)
        section.error("permalink", f"unknown placeholder {{{unknown[0]}}}; use {allowed}")
    elif "slug" not in fields:
        section.error("permalink", "expected a pattern with {slug}, such as posts/{slug}/")
    return pattern.lstrip("/")


def _content(section: _Section, base: Path) -> ContentConfig:
    directory = base / section.text("dir", "content")
    static = base / section.text("static_dir", "static")
    include = section.strings("include", ("**/*.md", "**/*.markdown"))
    exclude = section.strings("exclude", ())
    return ContentConfig(directory, static, include, exclude, _permalink(section))


def _feeds(section: _Section, base: Path, site_url: str) -> FeedsConfig:
    formats = section.choices("formats", FEED_FORMATS, FEED_FORMATS)
    if not formats:
        section.error("formats", f"expected at least one of {', '.join(FEED_FORMATS)}")
    return FeedsConfig(
        output_dir=base / section.text("output_dir", "feeds"),
        limit=section.integer("limit", 50, minimum=1),
        full_content=section.boolean("full_content", True),
        summary_length=section.integer("summary_length", 70, minimum=1),
        formats=formats,
        taxonomies=section.choices("taxonomies", TAXONOMIES, TAXONOMIES),
        base_url=_base_url(section, site_url),
        stylesheet=section.boolean("stylesheet", True),
    )


def _base_url(section: _Section, site_url: str) -> str:
    """Where output_dir is served: relative to the site URL, or absolute."""
    value = section.text("base_url", "feeds/")
    url = urljoin(site_url, value)
    site_ok = urlsplit(site_url).scheme in ("http", "https")
    if site_ok and urlsplit(url).scheme not in ("http", "https"):
        section.error(
            "base_url", f"expected a path such as feeds/ or an http(s) URL, got {value!r}"
        )
    return url if url.endswith("/") else url + "/"


def _build_schedule(section: _Section) -> CronSchedule | IntervalSchedule:
    value = section.text("build", "15m")
    match = _INTERVAL.fullmatch(value.strip())
    if match is not None:
        seconds = int(match.group(1)) * INTERVAL_SECONDS[match.group(2)]
        if seconds < 10:
            section.error("build", f"expected an interval of at least 10s, got {value!r}")
        return IntervalSchedule(seconds, value)
    try:
        return parse_cron(value)
    except ValueError as exc:
        section.error("build", f"expected an interval such as 15m or a cron schedule; {exc}")
        return IntervalSchedule(15 * 60, value)


def _token_url(section: _Section, key: str, default: str, site_url: str) -> str:
    pattern = section.text(key, default)
    if "{token}" not in pattern:
        section.error(key, f"expected a URL pattern with {{token}}, got {pattern!r}")
    return urljoin(site_url, pattern)


def _email(section: _Section, key: str, default: str | None) -> str | None:
    """An address given at ``key`` (checked), else ``default`` (checked where it was given)."""
    value = section.text(key, "") or None
    if value is None:
        return default
    if not _EMAIL.fullmatch(value):
        section.error(key, f"expected an email address, got {value!r}")
    return value


def _newsletter(section: _Section, site: SiteConfig, templates_dir: Path) -> NewsletterConfig:
    title = section.text("title", site.title)
    sender_section = section.section("from")
    sender_name = sender_section.text("name", title)
    sender_email = _email(sender_section, "email", site.author.email)
    if sender_email is None:
        sender_section.error("email", "is required (or set site.author.email)")
    sender_section.warn_unknown()
    domain = (sender_email or "").rpartition("@")[2] or "localhost"

    subject = section.text("subject", "{title} #{number}: {lead_title}")
    try:
        fields = [f for _, f, _, _ in string.Formatter().parse(subject) if f is not None]
    except ValueError as exc:
        fields = []
        section.error("subject", f"is not a valid pattern ({exc})")
    unknown = [f for f in fields if f not in SUBJECT_FIELDS]
    if unknown:
        allowed = ", ".join("{" + f + "}" for f in SUBJECT_FIELDS)
        section.error("subject", f"unknown placeholder {{{unknown[0]}}}; use {allowed}")

    template = section.text("template", "digest")
    if not template_path(templates_dir, f"{template}.html.j2").is_file():
        section.error(
            "template",
            f"no template set {template!r}: expected {template}.html.j2 in {templates_dir} "
            "or among the built-in templates",
        )
    content = section.text("content", "summary")
    if content not in DIGEST_CONTENT:
        section.error("content", f"expected summary or full, got {content!r}")
    default_schedule = "0 8 * * mon"
    try:
        schedule = parse_cron(section.text("schedule", default_schedule))
    except ValueError as exc:
        section.error("schedule", str(exc))
        schedule = parse_cron(default_schedule)

    return NewsletterConfig(
        title=title,
        sender_name=sender_name,
        sender_email=sender_email or "",
        reply_to=_email(section, "reply_to", None),
        subject=subject,
        max_posts=section.integer("max_posts", 10, minimum=1),
        template=template,
        content=content,
        schedule=schedule,
        unsubscribe_url=_token_url(
            section, "unsubscribe_url", "newsletter/unsubscribe/{token}", site.url
        ),
        manage_url=_token_url(section, "manage_url", "newsletter/manage/{token}", site.url),
        unsubscribe_email=_email(section, "unsubscribe_email", sender_email) or "",
        postal_address=section.text("postal_address", ""),
        default_name=section.text("default_name", "there"),
        list_id=section.text("list_id", f"newsletter.{domain}"),
    )


def _number(section: _Section, key: str, default: float, minimum: float) -> float:
    value = section.raw(key)
    if value is _MISSING:
        return default
    if isinstance(value, bool) or not isinstance(value, int | float) or value < minimum:
        section.error(key, f"expected a number of at least {minimum:g}, got {_kind(value)}")
        return default
    return float(value)


def _dkim(section: _Section, base: Path) -> DkimConfig | None:
    if section.raw("selector") is _MISSING and section.raw("key_file") is _MISSING:
        return None
    key_file = base / section.text("key_file")
    if not key_file.is_file():
        section.error("key_file", f"no such file: {key_file}")
    return DkimConfig(section.text("selector"), section.text("domain"), key_file)


def _smtp(section: _Section, base: Path) -> SmtpConfig:
    security = section.text("security", "starttls")
    if security not in SMTP_SECURITY:
        section.error("security", f"expected starttls, tls or none, got {security!r}")
    port = section.integer("port", 465 if security == "tls" else 587, minimum=1)
    if port > 65535:
        section.error("port", f"expected a port number up to 65535, got the number {port}")
    if section.raw("password") is not _MISSING:
        section.error(
            "password",
            "secrets never go in this file; name an environment variable "
            "in smtp.password_env instead",
        )
    host = section.text("host")
    username = section.text("username", "") or None
    if security == "none" and username and not _is_loopback(host):
        section.error(
            "security",
            f"none would send the password for smtp.username to {host} in clear text; "
            "use starttls or tls (none with a login is only for a server on this machine: "
            "localhost, 127.0.0.1 or ::1)",
        )
    ca_file = section.text("ca_file", "") or None
    dkim_section = section.section("dkim")
    dkim = _dkim(dkim_section, base)
    dkim_section.warn_unknown()
    return SmtpConfig(
        host=host,
        port=port,
        security=security,
        username=username,
        password_env=section.text("password_env", "FEEDPUB_SMTP_PASSWORD"),
        timeout=_number(section, "timeout", 30.0, minimum=1),
        rate_limit=_number(section, "rate_limit", 0.0, minimum=0),
        max_attempts=section.integer("max_attempts", 4, minimum=1),
        retry_delay=_number(section, "retry_delay", 2.0, minimum=0),
        ca_file=base / ca_file if ca_file else None,
        dkim=dkim,
    )


def _is_loopback(host: str) -> bool:
    """Whether ``host`` names this machine: localhost, 127.0.0.0/8 or ::1."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _networks(
    section: _Section, key: str
) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    """A list of IP addresses (one-address networks) and CIDR networks."""
    networks = []
    for value in section.strings(key, ()):
        try:
            networks.append(ipaddress.ip_network(value.strip()))
        except ValueError:
            try:
                whole = ipaddress.ip_network(value.strip(), strict=False)
            except ValueError:
                section.error(
                    key,
                    "expected IP addresses or networks such as 10.0.0.1, 10.0.0.0/8 or "
                    f"fd00::/8, got {value!r}",
                )
            else:
                section.error(key, f"{value!r} has host bits set; write the network as {whole}")
    return tuple(networks)


def _web(section: _Section, site_url: str) -> WebConfig:
    port = section.integer("port", 8080, minimum=1)
    if port > 65535:
        section.error("port", f"expected a port number up to 65535, got the number {port}")
    public_url = section.text("public_url", "") or site_url  # site.url is checked as site.url
    if section.raw("public_url") is not _MISSING and urlsplit(public_url).scheme not in (
        "http",
        "https",
    ):
        section.error("public_url", f"expected an absolute http(s) URL, got {public_url!r}")
    return WebConfig(
        host=section.text("host", "127.0.0.1"),
        port=port,
        public_url=public_url if public_url.endswith("/") else public_url + "/",
        secret_env=section.text("secret_env", "FEEDPUB_SECRET_KEY"),
        confirm_hours=section.integer("confirm_hours", 48, minimum=1),
        trusted_proxies=_networks(section, "trusted_proxies"),
    )


def _shown(path: Path, base: Path) -> str:
    """``path`` as written in the config: relative to its folder when it is inside it."""
    try:
        return str(path.relative_to(base))
    except ValueError:
        return str(path)


def _check_output_dir(
    section: _Section, output_dir: Path, base: Path, kept_out: Sequence[tuple[str, Path]]
) -> None:
    """Everything under feeds.output_dir is served to the public, so it must not be,
    or hold, any of ``kept_out`` (what, where)."""
    output = output_dir.resolve()
    for what, path in kept_out:
        resolved = path.resolve()
        if resolved == output or output in resolved.parents:
            relation = "is" if resolved == output else "contains"
            section.error(
                "output_dir",
                "must be a folder of its own, since everything in it is served to the public; "
                f"{_shown(output_dir, base)!r} {relation} {what}",
            )
            return


def load_config(path: Path) -> Config:
    """Read and validate ``path``; raise ``ConfigError`` naming every problem."""
    label = str(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise ConfigError([Problem(label, "file not found (pass --config PATH)")]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError([Problem(label, f"cannot be read: {exc}")]) from None
    try:
        data = yaml.load(text, Loader=yaml.CSafeLoader)
    except yaml.MarkedYAMLError as exc:
        line = exc.problem_mark.line + 1 if exc.problem_mark else None
        raise ConfigError([Problem(label, f"invalid YAML: {exc.problem}", line)]) from None
    except yaml.YAMLError as exc:
        raise ConfigError([Problem(label, f"invalid YAML: {exc}")]) from None

    problems: list[Problem] = []
    root = _Section({} if data is None else data, "", label, problems)
    base = path.parent
    sections = {name: root.section(name) for name in ("site", "content", "feeds")}
    site = _site(sections["site"])
    content = _content(sections["content"], base)
    feeds = _feeds(sections["feeds"], base, site.url)
    templates_dir = base / root.text("templates_dir", "templates")
    newsletter = None
    if root.raw("newsletter") is not _MISSING:
        sections["newsletter"] = root.section("newsletter")
        newsletter = _newsletter(sections["newsletter"], site, templates_dir)
    state = root.section("state")
    state_path = base / state.text("path", "state/feedpub.db")
    outbox_dir = base / root.text("outbox_dir", "outbox")
    smtp = None
    if root.raw("smtp") is not _MISSING:
        sections["smtp"] = root.section("smtp")
        smtp = _smtp(sections["smtp"], base)
    schedule = root.section("schedule")
    build_schedule = _build_schedule(schedule)
    web_section = root.section("web")
    web = _web(web_section, site.url)
    _check_output_dir(
        sections["feeds"],
        feeds.output_dir,
        base,
        [
            (f"the site folder, with {path.name}", base),
            (f"the content folder {_shown(content.dir, base)}, drafts included", content.dir),
            (f"the state file {_shown(state_path, base)}, with subscribers' addresses", state_path),
            (f"the outbox folder {_shown(outbox_dir, base)}, with every message sent", outbox_dir),
            (f"the templates folder {_shown(templates_dir, base)}", templates_dir),
            (f"the static folder {_shown(content.static_dir, base)}", content.static_dir),
        ],
    )
    for section in (*sections.values(), state, schedule, web_section, root):
        section.warn_unknown()

    errors = [p for p in problems if p.severity is Severity.ERROR]
    if errors:
        raise ConfigError(errors)
    return Config(
        path,
        site,
        content,
        feeds,
        templates_dir,
        newsletter,
        state_path,
        outbox_dir,
        smtp,
        build_schedule,
        web,
        tuple(problems),
    )
