"""One-line summaries of what a build and a send did, for the command line
and the daemon's log alike."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # no stage is imported to word its report
    from feedpub.build import BuildReport
    from feedpub.collector import ContentCounts
    from feedpub.pipeline import SendReport


def plural(n: int, one: str, many: str | None = None) -> str:
    return f"{n} {one if n == 1 else many or one + 's'}"


def content_summary(counts: ContentCounts) -> str:
    return (
        f"{plural(counts.files, 'content file')}: {plural(counts.posts, 'post')} "
        f"({counts.published} published, {plural(counts.drafts, 'draft')}, "
        f"{counts.scheduled} scheduled, "
        f"{plural(counts.duplicates, 'duplicate story', 'duplicate stories')}"
        f"{f', {counts.hidden} expired or unlisted' if counts.hidden else ''}), "
        f"{counts.skipped} skipped"
    )


def build_summary(report: BuildReport) -> str:
    """What a build read and wrote, on one line."""
    media = report.media_links
    embeds = plural(media, "video, sound or frame", "videos, sounds or frames")
    shown = f"; {embeds} shown as links" if media else ""
    return f"{content_summary(report.counts)}; feeds: {report.feeds}{shown}"


def send_summary(report: SendReport) -> str:
    if not report.issues:
        return "nothing to send"
    issues = ", ".join(f"#{n}" for n in report.issues)
    suppressed = f", {report.suppressed} suppressed" if report.suppressed else ""
    return (
        f"issue {issues}: {report.sent} sent, {report.failed} failed, {report.skipped} skipped"
        f"{suppressed}, {report.deferred} deferred" + (" (stopped early)" if report.stopped else "")
    )
