"""Time the digest: render and inline one issue of 20 posts, then make one
personalised message per recipient, as the sender makes them (and, to compare,
through the email package).

    python bench/digest_render.py [RUNS]

Prints medians of RUNS runs (default 15). Run by hand; not part of the tests.
"""

from __future__ import annotations

import base64
import statistics
import sys
import tempfile
import time
from pathlib import Path

from corpus import NOW, write_corpus

from feedpub.collector import collect, select
from feedpub.config import DkimConfig, load_config
from feedpub.digest import IssueTemplates, plan_issue, render_issue
from feedpub.mail import MessageMaker, build_message, dkim_sign
from feedpub.model import Recipient


def main(runs: int) -> None:
    with tempfile.TemporaryDirectory() as folder:
        config = load_config(write_corpus(Path(folder), 200))
        newsletter = config.require_newsletter()
        published = select(collect(config.content, config.site).posts, NOW)
        plan = plan_issue(published, frozenset(), newsletter.max_posts)
        assert plan is not None and len(plan.posts) == 20
        render_times, compile_times = [], []
        for _ in range(runs):
            started = time.perf_counter()
            templates = IssueTemplates(config.templates_dir, newsletter.template)
            issue = render_issue(plan, 1, NOW, config.site, newsletter, templates, 70)
            compile_times.append(time.perf_counter() - started)
            started = time.perf_counter()  # the next variant, as the sender renders it
            issue = render_issue(plan, 1, NOW, config.site, newsletter, templates, 70)
            render_times.append(time.perf_counter() - started)
        recipients = [
            Recipient(f"reader{i}@example.net", f"Reader {i}", f"token{i:040d}")
            for i in range(1000)
        ]
        signing = {algorithm: [] for algorithm in ("rsa-sha256", "ed25519-sha256")}
        keys = {algorithm: _key(Path(folder), algorithm) for algorithm in signing}
        per_recipient, full = [], []
        for _ in range(runs):
            started = time.perf_counter()
            maker = MessageMaker(issue, newsletter)  # as the sender: one per variant
            for recipient in recipients:
                maker.make(recipient)
            per_recipient.append((time.perf_counter() - started) / len(recipients))
            started = time.perf_counter()
            for recipient in recipients:
                build_message(issue, recipient, newsletter).as_bytes()
            full.append((time.perf_counter() - started) / len(recipients))
            for algorithm, times in signing.items():
                settings, key = keys[algorithm]
                started = time.perf_counter()
                for recipient in recipients[:200]:
                    dkim_sign(maker.make(recipient)[0], settings, key)
                times.append((time.perf_counter() - started) / 200)
    print(
        f"render (Markdown, jinja2) and inline (premailer) one issue of 20 posts: "
        f"median {statistics.median(render_times) * 1000:.1f} ms over {runs} runs "
        f"({statistics.median(compile_times) * 1000:.1f} ms with the templates compiled first)"
    )
    print(
        f"per recipient, as sent (MessageMaker: personalise and serialise): "
        f"median {statistics.median(per_recipient) * 1e6:.0f} µs over {runs} runs of 1,000"
    )
    print(
        f"per recipient, through the email package (build_message, as_bytes): "
        f"median {statistics.median(full) * 1e6:.0f} µs over {runs} runs of 1,000"
    )
    for algorithm, times in signing.items():
        print(
            f"per recipient, as sent and DKIM-signed with {algorithm}: "
            f"median {statistics.median(times) * 1e6:.0f} µs over {runs} runs of 200"
        )


def _key(folder: Path, algorithm: str) -> tuple[DkimConfig, bytes]:
    """A fresh signing key: RSA 2048 in PEM, or Ed25519 as dknewkey writes it."""
    if algorithm == "ed25519-sha256":
        import nacl.signing

        key = base64.b64encode(bytes(nacl.signing.SigningKey.generate()))
    else:
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import rsa

        key = rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    return DkimConfig("bench", "example.org", folder / "unused", algorithm), key


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 15)
