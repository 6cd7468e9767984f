"""Subscriber input: address checks, tag lists, and CSV import and export."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable
from dataclasses import dataclass

from feedpub.model import SUBSCRIBER_STATUSES, Problem, Subscriber

_ADDRESS = re.compile(r"[^@\s<>()\[\],;:\"\\]+@[^@\s<>()\[\],;:\"\\]+\.[^@\s<>()\[\],;:\"\\.]{2,}")
_TAG_SEPARATORS = re.compile(r"\s*[;|,]\s*")
EXPORT_COLUMNS = ("email", "name", "status", "tags", "subscribed")


def check_email(address: str) -> str:
    """The address without surrounding space; ValueError when it is not one.
    This is the one address rule: config.yaml's addresses are checked by it too."""
    address = address.strip()
    if len(address) > 254 or not _ADDRESS.fullmatch(address) or ".." in address:
        raise ValueError(f"{address!r} is not an email address")
    if not address.isascii():
        raise ValueError(
            f"{address!r}: only ASCII addresses are supported (write the domain in punycode)"
        )
    return address


def parse_tags(text: str) -> tuple[str, ...]:
    """Tags written as ``AI; LLM`` (or separated by commas or bars)."""
    return tuple(dict.fromkeys(t for t in _TAG_SEPARATORS.split(text.strip()) if t))


@dataclass(frozen=True, slots=True)
class ImportRow:
    line: int
    email: str
    name: str
    tags: tuple[str, ...]
    status: str


def read_csv(text: str, label: str) -> tuple[list[ImportRow], list[Problem]]:
    """Rows of a CSV file with a header naming at least ``email`` (and maybe
    ``name``, ``tags``, ``status``); each bad row is a problem with its line."""
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    fields = [f.strip().lower() for f in reader.fieldnames or []]
    if "email" not in fields:
        return [], [Problem(label, "the first line must name the columns, including email", 1)]
    reader.fieldnames = fields
    rows: list[ImportRow] = []
    problems: list[Problem] = []
    seen: set[str] = set()
    for record in reader:
        line = reader.line_num
        try:
            email = check_email(record.get("email") or "")
        except ValueError as exc:
            problems.append(Problem(label, str(exc), line))
            continue
        status = (record.get("status") or "active").strip().lower()
        if status not in SUBSCRIBER_STATUSES:
            allowed = ", ".join(SUBSCRIBER_STATUSES)
            problems.append(Problem(label, f"status {status!r} is not one of {allowed}", line))
            continue
        if email.casefold() in seen:
            problems.append(Problem(label, f"{email} appears twice; this row is skipped", line))
            continue
        seen.add(email.casefold())
        name = " ".join((record.get("name") or "").split())
        rows.append(ImportRow(line, email, name, parse_tags(record.get("tags") or ""), status))
    return rows, problems


def write_csv(subscribers: Iterable[Subscriber]) -> str:
    """Subscribers as CSV; tokens stay out (they are secrets)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(EXPORT_COLUMNS)
    for s in subscribers:
        writer.writerow([s.email, s.name, s.status, "; ".join(s.tags), s.created_at.isoformat()])
    return out.getvalue()
