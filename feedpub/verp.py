"""VERP (variable envelope return path): each message leaves with an envelope
sender of its own, ``bounces+TOKEN@example.org``, so that a bounce names whom it
is about even when the returned message is mangled. The ``From:`` header stays
the newsletter's.
"""

from __future__ import annotations

import hashlib
import re
from email.utils import parseaddr

_TOKEN = re.compile(r"[A-Za-z0-9_-]+")
_ATEXT = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`|~.-]*")
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
_DOMAIN = re.compile(rf"{_LABEL}(?:\.{_LABEL})*")
_DELIVERY_TOKEN = re.compile(r"([0-9]{1,9})-([0-9]{1,12})-[0-9a-f]{12}")


def template_problem(template: str) -> str | None:
    """Why ``template`` cannot be a VERP envelope sender, as a sentence; None if it
    can. It is an address with exactly one ``{token}`` in its local part."""
    example = "like bounces+{token}@example.org"
    local, at, domain = template.rpartition("@")
    if not at:
        return f"expected an address {example}, got {template!r}"
    if template.count("{token}") != 1 or "{token}" not in local:
        return f"expected exactly one {{token}} in the local part, {example}, got {template!r}"
    sample = local.replace("{token}", "x")
    if (
        not _ATEXT.fullmatch(sample)
        or sample.startswith(".")
        or sample.endswith(".")
        or ".." in sample
    ):
        return (
            f"the local part of {template!r} may hold, besides {{token}}, only letters, "
            "digits and !#$%&'*+-/=?^_`|~ with single dots between them"
        )
    if not _DOMAIN.fullmatch(domain):
        return f"{domain!r} in {template!r} is not a domain name"
    return None


def _template_parts(template: str) -> tuple[str, str, str]:
    """The local part before and after ``{token}``, and the domain."""
    problem = template_problem(template)
    if problem is not None:
        raise ValueError(f"bounce address: {problem}")
    local, _, domain = template.rpartition("@")
    prefix, _, suffix = local.partition("{token}")
    return prefix, suffix, domain


def bounce_address(template: str, token: str) -> str:
    """The envelope sender of the message for the subscriber with ``token``: the
    template with ``{token}`` replaced. A token is letters, digits, ``-`` and ``_``
    (URL-safe base64 or hex); lower-case ones survive MTAs that fold case."""
    prefix, suffix, domain = _template_parts(template)
    if not _TOKEN.fullmatch(token):
        raise ValueError(f"a VERP token is letters, digits, - and _; got {token!r}")
    return f"{prefix}{token}{suffix}@{domain}"


def token_of(template: str, address: str) -> str | None:
    """The token of ``address`` if it is the template's VERP address, else None.
    The domain is compared without case; the rest of the local part exactly."""
    prefix, suffix, domain = _template_parts(template)
    local, at, their_domain = (parseaddr(address)[1] or address.strip()).rpartition("@")
    if not at or their_domain.lower() != domain.lower():
        return None
    if len(local) <= len(prefix) + len(suffix):
        return None
    if not (local.startswith(prefix) and local.endswith(suffix)):
        return None
    token = local[len(prefix) : len(local) - len(suffix)]
    return token if _TOKEN.fullmatch(token) else None


def delivery_token(issue: int, subscriber: int, secret: str) -> str:
    """The VERP token of one delivery: its issue and subscriber, and a digest of
    them with the subscriber's token as the delivery recorded it, so that a
    bounce names the delivery and no one can make up one for another address.
    Lower-case letters and digits only: MTAs that fold case keep it."""
    digest = hashlib.sha256(f"{issue}:{subscriber}:{secret}".encode()).hexdigest()[:12]
    return f"{issue}-{subscriber}-{digest}"


def delivery_of(token: str) -> tuple[int, int] | None:
    """The issue and subscriber a ``delivery_token`` names (to look up and check),
    or None when ``token`` is not one."""
    found = _DELIVERY_TOKEN.fullmatch(token.lower())
    return None if found is None else (int(found[1]), int(found[2]))
