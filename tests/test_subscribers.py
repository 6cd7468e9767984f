from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from feedpub.subscribers import check_email, parse_tags, read_csv
from tests.conftest import REPO
from tests.test_cli import _run


@pytest.mark.parametrize(
    "address", ["ada@example.net", "a.b+tag@sub.example.co.uk", "  x_y@example.org  "]
)
def test_good_addresses(address: str) -> None:
    assert check_email(address) == address.strip()


@pytest.mark.parametrize(
    "address",
    [
        "",
        "plain",
        "@example.org",
        "a@",
        "a@b",
        "a b@example.org",
        "a@@example.org",
        "a..b@example.org",
        "<a@example.org>",
        "a@example.org, b@example.org",
        "陈@example.cn",
    ],
)
def test_bad_addresses(address: str) -> None:
    with pytest.raises(ValueError):
        check_email(address)


@given(st.text(max_size=60))
def test_check_email_accepts_nothing_with_spaces_or_controls(text: str) -> None:
    try:
        address = check_email(text)
    except ValueError:
        return
    assert address.count("@") == 1 and not any(c.isspace() or ord(c) < 32 for c in address)


def test_parse_tags() -> None:
    assert parse_tags(" AI; LLM |Agents, AI ") == ("AI", "LLM", "Agents")
    assert parse_tags("") == ()


def test_read_csv_reports_bad_rows_with_lines() -> None:
    text = '\ufeffEmail,Name,Tags,Status\nada@example.net,Ada,AI;LLM,\nnot-an-address,X,,\nbob@example.net,,,asleep\nADA@example.net,Again,,\n"carol@example.org","Carol, C.",,pending\n'
    rows, problems = read_csv(text, "people.csv")
    assert [(r.line, r.email, r.name, r.tags, r.status) for r in rows] == [
        (2, "ada@example.net", "Ada", ("AI", "LLM"), "active"),
        (6, "carol@example.org", "Carol, C.", (), "pending"),
    ]
    assert [str(p) for p in problems] == [
        "people.csv:3: 'not-an-address' is not an email address",
        "people.csv:4: status 'asleep' is not one of pending, active, unsubscribed, bounced",
        "people.csv:5: ADA@example.net appears twice; this row is skipped",
    ]


def test_read_csv_needs_a_header() -> None:
    rows, problems = read_csv("ada@example.net,Ada\n", "x.csv")
    assert rows == [] and [str(p) for p in problems] == [
        "x.csv:1: the first line must name the columns, including email"
    ]


def test_subscriber_commands(tmp_path: Path) -> None:
    shutil.copy(REPO / "config.yaml", tmp_path / "config.yaml")
    config = str(tmp_path / "config.yaml")
    added = _run(
        "subscribers",
        "add",
        "ada@example.net",
        "--name",
        "Ada",
        "--tags",
        "AI; LLM",
        "--config",
        config,
    )
    assert (added.returncode, added.stdout) == (0, "added ada@example.net (active)\n")
    again = _run("subscribers", "add", "ADA@example.net", "--config", config)
    assert (again.returncode, again.stderr) == (
        1,
        "error: ADA@example.net is already on the list (active)\n",
    )
    bad = _run("subscribers", "add", "nobody", "--config", config)
    assert (bad.returncode, bad.stderr) == (1, "error: 'nobody' is not an email address\n")
    (tmp_path / "people.csv").write_text(
        "email,name\nbob@example.net,Bob\nbroken,\nada@example.net,Ada\n"
    )
    imported = _run("subscribers", "import", str(tmp_path / "people.csv"), "--config", config)
    assert imported.returncode == 1
    assert imported.stdout == "imported 1, 1 already on the list, 0 suppressed, 1 bad row\n"
    assert imported.stderr == f"{tmp_path / 'people.csv'}:3: 'broken' is not an email address\n"
    removed = _run("subscribers", "remove", "bob@example.net", "--config", config)
    assert removed.stdout == "unsubscribed bob@example.net\n"
    assert _run("subscribers", "remove", "zed@example.net", "--config", config).returncode == 1
    listed = _run("subscribers", "list", "--config", config)
    assert (
        listed.stdout
        == "ada@example.net  active  Ada  [AI; LLM]\nbob@example.net  unsubscribed  Bob\n"
    )
    assert listed.stderr == "2 subscribers\n"
    active = _run("subscribers", "list", "--status", "active", "--config", config)
    assert active.stdout.splitlines() == ["ada@example.net  active  Ada  [AI; LLM]"]
    exported = _run("subscribers", "export", "--config", config).stdout.splitlines()
    assert exported[0] == "email,name,status,tags,subscribed"
    assert exported[1].startswith("ada@example.net,Ada,active,AI; LLM,20")
    assert len(exported) == 3 and "token" not in "".join(exported)
    assert (tmp_path / "state" / "feedpub.db").is_file()


def test_send_command_to_the_outbox(tmp_path: Path) -> None:
    shutil.copy(REPO / "config.yaml", tmp_path / "config.yaml")
    shutil.copytree(REPO / "content", tmp_path / "content")
    config = str(tmp_path / "config.yaml")
    _run("subscribers", "add", "ada@example.net", "--config", config)
    _run("subscribers", "add", "bob@example.net", "--tags", "Robotics", "--config", config)
    dry = _run("digest", "send", "--dry-run", "--config", config)
    assert dry.stdout.splitlines() == [
        "issue #1 to ada@example.net: 6 post(s)",
        "issue #1 to bob@example.net: nothing: no post has their tags",
    ]
    sent = _run("digest", "send", "--config", config)
    assert sent.returncode == 0, sent.stderr
    assert sent.stdout == (
        f"issue #1: 1 sent to {tmp_path / 'outbox'}, 0 failed, 1 skipped (no matching posts, or left the list), 0 deferred\n"
    )
    assert len(list((tmp_path / "outbox").glob("*.eml"))) == 1
    nothing = _run("digest", "send", "--config", config)
    assert nothing.stdout == "no new posts and nothing left unsent: nothing to send\n"
    preview = _run("digest", "preview", "--out", str(tmp_path / "p"), "--config", config)
    assert preview.stdout == "no new posts: there is no next issue to preview\n"


def test_smtp_password_comes_only_from_the_environment(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(
        (REPO / "config.yaml").read_text()
        + "\nsmtp:\n  host: 127.0.0.1\n  username: digest\n  password_env: FEEDPUB_NOT_SET\n"
    )
    result = _run("digest", "send", "--config", str(config))
    assert result.returncode == 1
    assert result.stderr == (
        "error: the SMTP password is read from the environment variable FEEDPUB_NOT_SET "
        "(smtp.password_env), which is not set\n"
    )
    config.write_text(config.read_text() + "  password: hunter2\n")
    refused = _run("check", "--config", str(config))
    assert refused.stderr == (
        f"{config}: smtp.password: secrets never go in this file; name an environment variable "
        "in smtp.password_env instead\n"
    )
