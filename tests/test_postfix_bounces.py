"""Bounces end to end through a real Postfix on loopback: feedpub sends an issue
to real mailboxes and unknown users with a VERP envelope sender per delivery,
Postfix bounces the unknown ones with real DSNs into the bounce Maildir,
'feedpub bounces fetch' reads them, and the next issue skips those addresses
while the good ones still get theirs."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

from feedpub.store import Store
from tests.conftest import REPO
from tests.postfix import maildir_messages, running_postfix
from tests.test_cli import _run

TEMPLATE = "bounces+{token}@bounce.test"
GOOD = ["alice", "bob"]
UNKNOWN = ["nobody1", "nobody2"]


def _site(folder: Path, port: int) -> None:
    shutil.copytree(REPO / "content", folder / "content")
    shutil.copytree(REPO / "templates", folder / "templates")
    (folder / "config.yaml").write_text(
        f"""
site: {{title: "Bounce test", url: "https://example.org/", language: en}}
newsletter:
  from: {{email: digest@example.org}}
  bounce_address: "{TEMPLATE}"
smtp: {{host: 127.0.0.1, port: {port}, security: none, max_attempts: 1}}
bounces: {{source: maildir, path: bounces}}
""",
        encoding="utf-8",
    )


def _status(folder: Path) -> dict[str, str]:
    with Store(folder / "state" / "feedpub.db") as store:
        return {s.email: s.status for s in store.subscribers()}


def test_postfix_bounces_mark_the_unknown_users_and_the_next_issue_skips_them(
    tmp_path: Path,
) -> None:
    with running_postfix(GOOD, TEMPLATE) as mta:
        _site(tmp_path, mta.port)
        (tmp_path / "bounces").symlink_to(mta.bounce_maildir)
        for user in GOOD + UNKNOWN:
            added = _run("subscribers", "add", f"{user}@list.test", cwd=tmp_path)
            assert added.returncode == 0, added.stderr

        first = _run("digest", "send", cwd=tmp_path)
        assert first.returncode == 0, first.stderr
        assert first.stdout.strip().startswith("issue #1: 4 sent, 0 failed"), first.stdout
        for user in GOOD:
            mta.wait_for_messages(mta.maildir(user), 1)
        dsns = mta.wait_for_messages(mta.bounce_maildir, len(UNKNOWN))
        assert all(b"multipart/report" in dsn for dsn in dsns)

        fetched = _run("bounces", "fetch", cwd=tmp_path)
        assert fetched.returncode == 0, fetched.stderr
        assert fetched.stdout.splitlines()[-1] == (
            "2 messages read: 2 changed the list, 0 changed nothing, 0 set aside unread"
        )
        for user in UNKNOWN:
            assert f"{user}@list.test: hard bounce: marked bounced" in fetched.stdout
        assert _status(tmp_path) == {
            "alice@list.test": "active",
            "bob@list.test": "active",
            "nobody1@list.test": "bounced",
            "nobody2@list.test": "bounced",
        }

        # A new post, and the next issue: the good ones get it, the bounced are skipped.
        when = (datetime.now(UTC) - timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M:%SZ")
        (tmp_path / "content" / "posts" / "fresh.md").write_text(
            f"---\ntitle: A fresh post\ndate: {when}\n---\nNews.\n", encoding="utf-8"
        )
        second = _run("digest", "send", cwd=tmp_path)
        assert second.returncode == 0, second.stderr
        assert second.stdout.strip() == (
            "issue #2: 2 sent, 0 failed, 0 skipped (no matching posts, or left the list), "
            "2 suppressed (bounced, complained or unsubscribed), 0 deferred"
        ), second.stdout
        for user in GOOD:
            assert len(mta.wait_for_messages(mta.maildir(user), 2)) == 2
        mta.flush()
        assert maildir_messages(mta.bounce_maildir) == []  # no new bounce came back
        processed = maildir_messages(mta.bounce_maildir / ".processed")
        assert len(processed) == len(UNKNOWN)


def test_a_recipient_refused_at_once_is_a_hard_bounce(tmp_path: Path) -> None:
    with running_postfix(GOOD, TEMPLATE, reject_unknown_at_rcpt=True) as mta:
        _site(tmp_path, mta.port)
        for user in ("alice", "nobody1"):
            assert _run("subscribers", "add", f"{user}@list.test", cwd=tmp_path).returncode == 0
        sent = _run("digest", "send", cwd=tmp_path)
        assert sent.returncode == 0, sent.stderr
        assert sent.stdout.strip().startswith("issue #1: 1 sent, 1 failed"), sent.stdout
        assert _status(tmp_path) == {
            "alice@list.test": "active",
            "nobody1@list.test": "bounced",
        }
        with Store(tmp_path / "state" / "feedpub.db") as store:
            assert store.suppressions(["nobody1@list.test"]) == {"nobody1@list.test": "bounced"}
        mta.wait_for_messages(mta.maildir("alice"), 1)
