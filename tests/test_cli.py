from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from feedpub.cli import cli
from tests.conftest import REPO


def _run(
    *args: str, cwd: Path | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the installed console script, as a user would, with ``env`` added."""
    exe = shutil.which("feedpub") or str(Path(sys.executable).with_name("feedpub"))
    return subprocess.run(
        [exe, *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env={**os.environ, "NO_COLOR": "1", **(env or {})},
        timeout=60,
    )


def test_check_on_the_sample_site() -> None:
    result = _run("check", cwd=REPO)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert result.stdout.startswith("8 content files: 8 posts (")
    assert result.stdout.rstrip().endswith("0 skipped; 0 errors, 0 warnings")


def _commands(group: click.Group, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    found = []
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            found.extend(_commands(command, (*path, name)))
        else:
            found.append((*path, name))
    return found


def test_every_command_has_help() -> None:
    runner = CliRunner()
    assert runner.invoke(cli, ["--help"]).exit_code == 0
    commands = _commands(cli)
    assert ("digest", "preview") in commands
    for command in commands:
        result = runner.invoke(cli, [*command, "--help"])
        assert result.exit_code == 0
        assert "--config" in result.output
        assert len(result.output.splitlines()) > 5


def _site(tmp_path: Path, config: str, posts: dict[str, str]) -> Path:
    (tmp_path / "config.yaml").write_text(config, encoding="utf-8")
    for name, text in posts.items():
        path = tmp_path / "content" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return tmp_path / "config.yaml"


GOOD = "---\ntitle: Good\ndate: 2026-01-01\n---\nText\n"


def test_check_reports_bad_posts_and_fails(tmp_path: Path) -> None:
    config = _site(
        tmp_path,
        "site: {title: T, url: 'https://e.org/'}\n",
        {"good.md": GOOD, "bad.md": "---\ntitle: x\ndate: [\n---\n"},
    )
    result = _run("check", "--config", str(config))
    assert result.returncode == 1
    assert result.stderr == (
        f"{tmp_path}/content/bad.md:4: invalid YAML in front matter: "
        "did not find expected node content\n"
    )
    assert "2 content files: 1 post (1 published" in result.stdout
    assert "1 skipped; 1 error, 0 warnings" in result.stdout


def test_warnings_fail_only_with_strict(tmp_path: Path) -> None:
    config = _site(
        tmp_path, "site: {title: T, url: 'https://e.org/', colour: red}\n", {"good.md": GOOD}
    )
    assert _run("check", "--config", str(config)).returncode == 0
    strict = _run("check", "--strict", "--config", str(config))
    assert strict.returncode == 1
    assert strict.stderr == f"{config}: warning: site.colour: unknown key, ignored\n"


def test_bad_config_gives_clear_lines_and_no_traceback(tmp_path: Path) -> None:
    config = _site(tmp_path, "site: {url: 'ftp://e.org/'}\nfeeds: {limit: -1}\n", {})
    result = _run("check", "--config", str(config))
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        f"{config}: site.title: is required",
        f"{config}: site.url: expected an absolute http(s) URL such as https://example.org/, got 'ftp://e.org/'",
        f"{config}: feeds.limit: expected a whole number of at least 1, got the number -1",
    ]
    assert "Traceback" not in result.stderr


def test_missing_config_file(tmp_path: Path) -> None:
    result = _run("check", cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr == "config.yaml: file not found (pass --config PATH)\n"


def test_unknown_command_is_a_usage_error() -> None:
    assert _run("frobnicate").returncode == 2


def _sample_site(tmp_path: Path) -> Path:
    shutil.copy(REPO / "config.yaml", tmp_path / "config.yaml")
    shutil.copytree(REPO / "content", tmp_path / "content")
    return tmp_path / "config.yaml"


def test_build_writes_feeds_and_says_what_it_did(tmp_path: Path) -> None:
    config = _sample_site(tmp_path)
    first = _run("build", "--config", str(config))
    assert first.returncode == 0, first.stderr
    assert first.stderr == ""
    line = first.stdout.strip()
    assert line.startswith(
        "8 content files: 8 posts (6 published, 1 draft, 1 scheduled, 0 duplicate stories), 0 skipped; "
    )
    assert "feeds: 52 written, 0 unchanged, 0 removed, in " in line
    assert (tmp_path / "feeds" / "tags" / "llm" / "feed.json").is_file()
    second = _run("build", "--config", str(config))
    assert "feeds: 0 written, 52 unchanged, 0 removed" in second.stdout


def test_build_counts_hidden_posts_and_media_shown_as_links(tmp_path: Path) -> None:
    config = _sample_site(tmp_path)
    (tmp_path / "content" / "clip.md").write_text(
        "---\ntitle: Clip\ndate: 2026-11-29T08:00:00Z\n---\n"
        '<video src="/media/clip.mp4" poster="/media/clip.jpg"></video>\n\n'
        '<iframe src="https://www.youtube.com/embed/abc"></iframe>\n',
        encoding="utf-8",
    )
    (tmp_path / "content" / "gone.md").write_text(
        "---\ntitle: Gone\ndate: 2026-11-01T08:00:00Z\nexpiryDate: 2026-11-02T00:00:00Z\n---\nx\n",
        encoding="utf-8",
    )
    line = _run("build", "--config", str(config)).stdout
    assert "0 duplicate stories, 1 expired or unlisted), 0 skipped;" in line
    assert "; 2 videos, sounds or frames shown as links, in " in line
    again = _run("build", "--config", str(config)).stdout  # from the cache: the same count
    assert "; 2 videos, sounds or frames shown as links, in " in again


def test_build_quiet_and_strict(tmp_path: Path) -> None:
    config = _sample_site(tmp_path)
    (tmp_path / "content" / "broken.md").write_text("---\ntitle: [\n---\n", encoding="utf-8")
    quiet = _run("build", "-q", "--config", str(config))
    assert quiet.returncode == 0
    assert quiet.stdout == ""
    assert quiet.stderr.startswith(f"{tmp_path}/content/broken.md:3: invalid YAML in front matter")
    shutil.rmtree(tmp_path / "feeds")
    strict = _run("build", "--strict", "--config", str(config))
    assert strict.returncode == 1
    assert strict.stderr.splitlines() == [
        f"{tmp_path}/content/broken.md:3: invalid YAML in front matter: did not find expected node content",
        "error: nothing written: --strict stops on content problems",
    ]
    assert not (tmp_path / "feeds").exists()


def test_a_bug_shows_one_line_unless_verbose(monkeypatch: pytest.MonkeyPatch) -> None:
    # The only stand-in in this file: a bug cannot be produced on purpose otherwise.
    def broken(*args: object) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr("feedpub.collector.collect", broken)
    runner = CliRunner()
    quiet = runner.invoke(cli, ["check", "--config", str(REPO / "config.yaml")])
    assert quiet.exit_code == 1
    assert (
        quiet.output
        == "internal error: RuntimeError('boom') (run feedpub -v ... for the traceback)\n"
    )
    verbose = runner.invoke(cli, ["-v", "check", "--config", str(REPO / "config.yaml")])
    assert isinstance(verbose.exception, RuntimeError)
