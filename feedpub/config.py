"""config.yaml: load it into a typed, frozen ``Config``.

The keys, their defaults and single-key checks are declared once in
``feedpub.config_schema``; the builders here turn the declared sections into the
dataclasses the rest of feedpub uses, and hold the checks that need several keys.
Every problem is reported at once, each named by its key path.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit
from zoneinfo import ZoneInfo

from feedpub.config_schema import (
    DEFAULT_COVER_FIELDS,
    BouncesOptions,
    ConfigOptions,
    DkimOptions,
    FeedsOptions,
    NewsletterOptions,
    SiteOptions,
    SmtpOptions,
    WebhooksOptions,
    WebOptions,
)
from feedpub.config_schema import IntervalSchedule as IntervalSchedule
from feedpub.cron import CronSchedule
from feedpub.errors import ConfigError
from feedpub.listpolicy import SoftBouncePolicy
from feedpub.model import Author, Problem, Severity, StateLocation
from feedpub.options import Report
from feedpub.pacing import DomainPace
from feedpub.theme import template_path
from feedpub.yamlfile import YamlError, read_yaml


@dataclass(frozen=True, slots=True)
class SiteConfig:
    title: str
    url: str
    id: str
    description: str
    language: str
    timezone: ZoneInfo
    author: Author
    # Left out of the hash (YAML values need not be hashable), not out of equality.
    params: Mapping[str, Any] = field(default_factory=dict, hash=False)


@dataclass(frozen=True, slots=True)
class ContentConfig:
    dir: Path
    static_dir: Path
    include: tuple[str, ...]
    exclude: tuple[str, ...]
    permalink: str
    cover_fields: tuple[str, ...] = DEFAULT_COVER_FIELDS


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
    default_name: str | None  # None: the word for a reader in the site's language
    list_id: str
    bounce_address: str | None = None  # a VERP template with {token}


@dataclass(frozen=True, slots=True)
class BouncesConfig:
    source: str  # maildir, mbox or imap
    path: Path | None
    host: str
    port: int
    security: str
    username: str
    password_env: str
    folder: str
    processed_folder: str | None
    max_bytes: int
    timeout: float
    ca_file: Path | None


@dataclass(frozen=True, slots=True)
class WebhooksConfig:
    """The providers whose webhooks the web app takes; None where not set up."""

    ses_topics: frozenset[str] | None = None
    postmark: tuple[str, str] | None = None  # user name, password variable
    mailgun_key_env: str | None = None
    sendgrid_key: str | None = None


@dataclass(frozen=True, slots=True)
class DkimConfig:
    selector: str
    domain: str
    key_file: Path
    algorithm: str = "rsa-sha256"


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
    connections: int = 1
    domains: Mapping[str, DomainPace] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class WebConfig:
    host: str
    port: int
    public_url: str
    secret_env: str
    confirm_hours: int
    trusted_proxies: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]
    status_token_env: str = "FEEDPUB_STATUS_TOKEN"


@dataclass(frozen=True, slots=True)
class Config:
    path: Path
    site: SiteConfig
    content: ContentConfig
    feeds: FeedsConfig
    templates_dir: Path
    newsletter: NewsletterConfig | None
    state: StateLocation
    outbox_dir: Path
    smtp: SmtpConfig | None
    build_schedule: CronSchedule | IntervalSchedule
    web: WebConfig
    delivery: SoftBouncePolicy
    # How long a worker holds the deliveries it claims, and how many at a time.
    lease: timedelta
    claim_batch: int
    bounces: BouncesConfig | None
    bounce_schedule: CronSchedule | IntervalSchedule | None
    webhooks: WebhooksConfig
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


def _site(site: SiteOptions) -> SiteConfig:
    author = Author(site.title if site.author.name is None else site.author.name, site.author.email)
    return SiteConfig(
        title=site.title,
        url=site.url,
        id=urlsplit(site.url).hostname or "" if site.id is None else site.id,
        description=site.title if site.description is None else site.description,
        language=site.language,
        timezone=site.timezone,
        author=author,
        params=site.params,
    )


def _feeds(feeds: FeedsOptions, base: Path, site_url: str) -> FeedsConfig:
    # base_url is where output_dir is served: relative to the site URL, or absolute.
    base_url = urljoin(site_url, feeds.base_url)
    if site_url and urlsplit(base_url).scheme not in ("http", "https"):
        feeds.error(
            "base_url", f"expected a path such as feeds/ or an http(s) URL, got {feeds.base_url!r}"
        )
    return FeedsConfig(
        output_dir=base / feeds.output_dir,
        limit=feeds.limit,
        full_content=feeds.full_content,
        summary_length=feeds.summary_length,
        formats=feeds.formats,
        taxonomies=feeds.taxonomies,
        base_url=base_url if base_url.endswith("/") else base_url + "/",
        stylesheet=feeds.stylesheet,
    )


def _newsletter(
    newsletter: NewsletterOptions, site: SiteConfig, templates_dir: Path
) -> NewsletterConfig:
    title = site.title if newsletter.title is None else newsletter.title
    sender = newsletter.sender
    sender_email = sender.email or site.author.email
    if sender_email is None:
        sender.error("email", "is required (or set site.author.email)")
    domain = (sender_email or "").rpartition("@")[2] or "localhost"
    template = newsletter.template
    if not template_path(templates_dir, f"{template}.html.j2").is_file():
        newsletter.error(
            "template",
            f"no template set {template!r}: expected {template}.html.j2 in {templates_dir} "
            "or among the built-in templates",
        )
    return NewsletterConfig(
        title=title,
        sender_name=title if sender.name is None else sender.name,
        sender_email=sender_email or "",
        reply_to=newsletter.reply_to,
        subject=newsletter.subject,
        max_posts=newsletter.max_posts,
        template=template,
        content=newsletter.content,
        schedule=newsletter.schedule,
        unsubscribe_url=urljoin(site.url, newsletter.unsubscribe_url),
        manage_url=urljoin(site.url, newsletter.manage_url),
        unsubscribe_email=newsletter.unsubscribe_email or sender_email or "",
        postal_address=newsletter.postal_address,
        default_name=newsletter.default_name,
        list_id=f"newsletter.{domain}" if newsletter.list_id is None else newsletter.list_id,
        bounce_address=newsletter.bounce_address,
    )


def _dkim(dkim: DkimOptions, base: Path) -> DkimConfig:
    key_file = base / dkim.key_file
    if dkim.key_file and not key_file.is_file():
        dkim.error("key_file", f"no such file: {key_file}")
    return DkimConfig(dkim.selector, dkim.domain, key_file, dkim.algorithm)


def _smtp(smtp: SmtpOptions, base: Path) -> SmtpConfig:
    username = smtp.username or None
    if smtp.security == "none" and username and not _is_loopback(smtp.host):
        smtp.error(
            "security",
            f"none would send the password for smtp.username to {smtp.host} in clear text; "
            "use starttls or tls (none with a login is only for a server on this machine: "
            "localhost, 127.0.0.1 or ::1)",
        )
    default_port = 465 if smtp.security == "tls" else 587
    return SmtpConfig(
        host=smtp.host,
        port=default_port if smtp.port is None else smtp.port,
        security=smtp.security,
        username=username,
        password_env=smtp.password_env,
        timeout=smtp.timeout,
        rate_limit=smtp.rate_limit,
        max_attempts=smtp.max_attempts,
        retry_delay=smtp.retry_delay,
        ca_file=base / smtp.ca_file if smtp.ca_file else None,
        dkim=None if smtp.dkim is None else _dkim(smtp.dkim, base),
        connections=smtp.connections,
        domains=smtp.domains,
    )


def _is_loopback(host: str) -> bool:
    """Whether ``host`` names this machine: localhost, 127.0.0.0/8 or ::1."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _bounces(bounces: BouncesOptions, base: Path) -> BouncesConfig:
    if bounces.source == "imap":
        for key in ("host", "username"):
            if not getattr(bounces, key):
                bounces.error(key, "is required with source: imap")
        if bounces.security == "none" and not _is_loopback(bounces.host or "localhost"):
            bounces.error(
                "security",
                f"none would send the password for bounces.username to {bounces.host} in "
                "clear text; use tls or starttls (none is only for a server on this machine)",
            )
    elif not bounces.path:
        bounces.error("path", f"is required with source: {bounces.source}")
    default_port = 993 if bounces.security == "tls" else 143
    return BouncesConfig(
        source=bounces.source,
        path=base / bounces.path if bounces.path else None,
        host=bounces.host,
        port=default_port if bounces.port is None else bounces.port,
        security=bounces.security,
        username=bounces.username,
        password_env=bounces.password_env,
        folder=bounces.folder,
        processed_folder=bounces.processed_folder or None,
        max_bytes=bounces.max_bytes,
        timeout=bounces.timeout,
        ca_file=base / bounces.ca_file if bounces.ca_file else None,
    )


def _webhooks(webhooks: WebhooksOptions) -> WebhooksConfig:
    ses = webhooks.ses
    if ses is not None and not ses.topics:
        ses.error("topics", "needs at least one topic ARN: anyone can sign through SNS")
    postmark = webhooks.postmark
    return WebhooksConfig(
        ses_topics=None if ses is None else frozenset(ses.topics),
        postmark=None if postmark is None else (postmark.username, postmark.password_env),
        mailgun_key_env=None if webhooks.mailgun is None else webhooks.mailgun.signing_key_env,
        sendgrid_key=None if webhooks.sendgrid is None else webhooks.sendgrid.public_key,
    )


def _web(web: WebOptions, site_url: str) -> WebConfig:
    return WebConfig(
        host=web.host,
        port=web.port,
        public_url=site_url if web.public_url is None else web.public_url,
        secret_env=web.secret_env,
        confirm_hours=web.confirm_hours,
        trusted_proxies=web.trusted_proxies,
        status_token_env=web.status_token_env,
    )


def _shown(path: Path, base: Path) -> str:
    """``path`` as written in the config: relative to its folder when it is inside it."""
    try:
        return str(path.relative_to(base))
    except ValueError:
        return str(path)


def _check_output_dir(
    feeds: FeedsOptions, output_dir: Path, base: Path, kept_out: Sequence[tuple[str, Path]]
) -> None:
    """Everything under feeds.output_dir is served to the public, so it must not be,
    or hold, any of ``kept_out`` (what, where)."""
    output = output_dir.resolve()
    for what, path in kept_out:
        resolved = path.resolve()
        if resolved == output or output in resolved.parents:
            relation = "is" if resolved == output else "contains"
            feeds.error(
                "output_dir",
                "must be a folder of its own, since everything in it is served to the public; "
                f"{_shown(output_dir, base)!r} {relation} {what}",
            )
            return


def _read(path: Path) -> object:
    """The YAML document in ``path``; ``ConfigError`` when there is none to read."""
    label = str(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise ConfigError([Problem(label, "file not found (pass --config PATH)")]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError([Problem(label, f"cannot be read: {exc}")]) from None
    try:
        return read_yaml(text)
    except YamlError as exc:
        line = None if exc.line is None else exc.line + 1
        raise ConfigError([Problem(label, f"invalid YAML: {exc.problem}", line)]) from None


def load_config(path: Path) -> Config:
    """Read and validate ``path``; raise ``ConfigError`` naming every problem."""
    report = Report(str(path))
    options = ConfigOptions(_read(path), report)
    base = path.parent
    site = _site(options.site)
    content = ContentConfig(
        dir=base / options.content.dir,
        static_dir=base / options.content.static_dir,
        include=options.content.include,
        exclude=options.content.exclude,
        permalink=options.content.permalink.lstrip("/"),
        cover_fields=options.content.cover_fields,
    )
    feeds = _feeds(options.feeds, base, site.url)
    templates_dir = base / options.templates_dir
    newsletter = None
    if options.newsletter is not None:
        newsletter = _newsletter(options.newsletter, site, templates_dir)
    state = StateLocation(base / options.state.path, options.state.url, options.state.password_env)
    outbox_dir = base / options.outbox_dir
    smtp = None if options.smtp is None else _smtp(options.smtp, base)
    bounces = None if options.bounces is None else _bounces(options.bounces, base)
    webhooks = _webhooks(options.webhooks)
    _check_output_dir(
        options.feeds,
        feeds.output_dir,
        base,
        [
            (f"the site folder, with {path.name}", base),
            (f"the content folder {_shown(content.dir, base)}, drafts included", content.dir),
            (f"the state file {_shown(state.path, base)}, with subscribers' addresses", state.path),
            (f"the outbox folder {_shown(outbox_dir, base)}, with every message sent", outbox_dir),
            (f"the templates folder {_shown(templates_dir, base)}", templates_dir),
            (f"the static folder {_shown(content.static_dir, base)}", content.static_dir),
        ],
    )
    problems = report.problems()
    errors = [p for p in problems if p.severity is Severity.ERROR]
    if errors:
        raise ConfigError(errors)
    return Config(
        path=path,
        site=site,
        content=content,
        feeds=feeds,
        templates_dir=templates_dir,
        newsletter=newsletter,
        state=state,
        outbox_dir=outbox_dir,
        smtp=smtp,
        build_schedule=options.schedule.build,
        web=_web(options.web, site.url),
        warnings=tuple(problems),
        delivery=SoftBouncePolicy(
            options.delivery.soft_bounce_limit, options.delivery.soft_bounce_days
        ),
        lease=timedelta(seconds=options.delivery.lease_seconds),
        claim_batch=options.delivery.batch,
        bounces=bounces,
        bounce_schedule=None if bounces is None else options.schedule.bounces,
        webhooks=webhooks,
    )
