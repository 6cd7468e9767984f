"""One walk through the web pages in a real browser: Debian's Chromium driven
by Playwright, against 'feedpub serve' and a real SMTP server on loopback."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from playwright.sync_api import sync_playwright

from feedpub.config import load_config
from feedpub.store import Store
from tests.conftest import REPO
from tests.smtpd import free_port, smtp_server

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def _site(tmp_path: Path, web_port: int, smtp_port: int) -> Path:
    shutil.copytree(REPO / "content", tmp_path / "content")
    text = (REPO / "config.yaml").read_text()
    text = text.replace('url: "https://example.org/"', f'url: "http://127.0.0.1:{web_port}/"')
    text += f"\nweb:\n  port: {web_port}\n"
    text += f"\nsmtp:\n  host: 127.0.0.1\n  port: {smtp_port}\n  security: none\n"
    path = tmp_path / "config.yaml"
    path.write_text(text)
    return path


def test_subscribe_confirm_and_unsubscribe_in_a_browser(tmp_path: Path) -> None:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"no Chromium at {CHROMIUM}: .ci/run installs Debian's chromium package")
    web_port, smtp_port = free_port(), free_port()
    config = _site(tmp_path, web_port, smtp_port)
    exe = str(Path(sys.executable).with_name("feedpub"))
    with smtp_server(port=smtp_port) as mail:
        server = subprocess.Popen(
            [exe, "serve", "--config", str(config)],
            env={**os.environ, "FEEDPUB_SECRET_KEY": "browser-test-secret-0123456789abcdef"},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            base = f"http://127.0.0.1:{web_port}"
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
                page = browser.new_page(viewport={"width": 390, "height": 844})  # a phone
                for _ in range(100):
                    try:
                        page.goto(f"{base}/newsletter/subscribe")
                        break
                    except Exception:
                        time.sleep(0.1)
                page.fill("#email", "browser@example.net")
                page.fill("#name", "Browser Reader")
                page.click("button[type=submit]")
                page.wait_for_selector("text=请查收邮件")

                deadline = time.monotonic() + 10
                while not mail.handler.received and time.monotonic() < deadline:
                    time.sleep(0.05)
                (received,) = mail.handler.received
                text = received.message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
                link = re.search(rf"{re.escape(base)}/newsletter/confirm/\S+", text)
                assert link, text

                page.goto(link.group(0))
                page.click("button[type=submit]")  # 确认订阅
                page.wait_for_selector("text=订阅成功")
                with Store(load_config(config).state) as store:
                    assert store.subscriber("browser@example.net").status == "active"  # type: ignore[union-attr]

                page.click("text=退订")
                page.wait_for_selector("text=browser@example.net")
                page.click("button[type=submit]")
                page.wait_for_selector("text=已退订")
                page.screenshot(path=str(tmp_path / "unsubscribed.png"))
                browser.close()
            with Store(load_config(config).state) as store:
                assert store.subscriber("browser@example.net").status == "unsubscribed"  # type: ignore[union-attr]
        finally:
            server.terminate()
            server.wait(10)
