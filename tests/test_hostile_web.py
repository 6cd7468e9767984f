"""'feedpub serve' as an outsider meets it: a real server process on loopback,
driven over real HTTP and raw sockets with the requests an attacker sends."""

from __future__ import annotations

import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx2 as httpx

from tests.conftest import REPO
from tests.smtpd import free_port, silent_server

SECRET = "hostile-test-secret-0123456789abcdef"
FEEDPUB = str(Path(sys.executable).with_name("feedpub"))


@dataclass
class Served:
    base: str
    folder: Path
    process: subprocess.Popen[str]

    def log(self) -> str:
        """What the server wrote to stderr so far (it is stopped to read it all)."""
        self.process.terminate()
        return self.process.communicate(timeout=10)[1]

    def rss_kib(self) -> int:
        status = Path(f"/proc/{self.process.pid}/status").read_text()
        found = re.search(r"VmRSS:\s+(\d+) kB", status)
        assert found
        return int(found.group(1))


def _cli(folder: Path, *args: str) -> None:
    subprocess.run(
        [FEEDPUB, *args, "--config", str(folder / "config.yaml")],
        check=True,
        capture_output=True,
        text=True,
    )


@contextmanager
def serving(tmp_path: Path, extra: str = "") -> Iterator[Served]:
    """The sample site, built, served by 'feedpub serve' on a free port."""
    port = free_port()
    shutil.copytree(REPO / "content", tmp_path / "content")
    text = (REPO / "config.yaml").read_text()
    text += f"\nweb:\n  port: {port}\n  public_url: http://news.example.org/\n{extra}"
    (tmp_path / "config.yaml").write_text(text)
    _cli(tmp_path, "build", "-q")
    process = subprocess.Popen(
        [FEEDPUB, "serve", "--config", str(tmp_path / "config.yaml")],
        env={**os.environ, "FEEDPUB_SECRET_KEY": SECRET},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                httpx.get(base + "/feeds/rss.xml", timeout=1)
                break
            except httpx.TransportError:
                assert process.poll() is None and time.monotonic() < deadline, "serve did not start"
                time.sleep(0.05)
        yield Served(base, tmp_path, process)
    finally:
        process.terminate()
        process.wait(10)


def _form(client: httpx.Client) -> str:
    page = client.get("/newsletter/subscribe")
    found = re.search(r'name="csrf" value="([0-9a-f]+)"', page.text)
    assert found, page.text
    return found.group(1)


def _subscribe(client: httpx.Client, address: str, **headers: str) -> httpx.Response:
    return client.post(
        "/newsletter/subscribe",
        data={"csrf": _form(client), "email": address},
        headers=headers,
    )


def test_a_hung_mail_server_never_holds_up_the_web_app(tmp_path: Path) -> None:
    with silent_server() as smtp_port:
        extra = f"\nsmtp:\n  host: 127.0.0.1\n  port: {smtp_port}\n  security: none\n"
        with serving(tmp_path, extra) as served, httpx.Client(base_url=served.base) as client:
            started = time.perf_counter()
            answer = _subscribe(client, "someone@example.net")
            assert answer.status_code == 200 and "someone@example.net" in answer.text
            assert time.perf_counter() - started < 2
            # The worker is now stuck waiting for the server's greeting; feeds still flow.
            times = []
            for _ in range(10):
                before = time.perf_counter()
                assert httpx.get(served.base + "/feeds/rss.xml").status_code == 200
                times.append(time.perf_counter() - before)
            assert max(times) < 0.5, times


def test_who_subscribes_does_not_leak(tmp_path: Path) -> None:
    """Status, body and time are the same for a known and an unknown address."""
    shutil.copy(REPO / "config.yaml", tmp_path / "config.yaml")
    _cli(tmp_path, "subscribers", "add", "known@example.net")
    (tmp_path / "config.yaml").unlink()
    # The clients come through a trusted proxy, so the per-client limit does not
    # stop 40 requests from one test.
    extra = "  trusted_proxies: [127.0.0.1]\n"
    with serving(tmp_path, extra) as served, httpx.Client(base_url=served.base) as client:
        timings: dict[str, list[float]] = {"known": [], "unknown": []}
        answers: dict[str, set[tuple[int, str]]] = {"known": set(), "unknown": set()}
        for n in range(20):
            for kind in ("known", "unknown"):
                address = "known@example.net" if kind == "known" else f"new{n}@example.net"
                csrf = _form(client)
                started = time.perf_counter()
                response = client.post(
                    "/newsletter/subscribe",
                    data={"csrf": csrf, "email": address},
                    headers={"X-Forwarded-For": f"198.51.100.{n}"},
                )
                timings[kind].append(time.perf_counter() - started)
                body = response.text.replace(address, "ADDRESS")
                answers[kind].add((response.status_code, re.sub(r'value="[0-9a-f]+"', "", body)))
    assert answers["known"] == answers["unknown"] and len(answers["known"]) == 1
    known, unknown = (statistics.median(timings[k]) for k in ("known", "unknown"))
    assert max(known, unknown) < 2 * min(known, unknown), (known, unknown)


def _raw(base: str, request: bytes, then: bytes = b"", pause: float = 0) -> tuple[bytes, int]:
    """Send ``request``, then ``then`` in 64 KiB pieces (``pause`` seconds apart)
    while the server reads; return its answer and how many bytes of ``then`` went out."""
    host, port = base.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as connection:
        connection.sendall(request)
        sent = 0
        try:
            while sent < len(then):
                connection.sendall(then[sent : sent + 65536])
                sent += 65536
                time.sleep(pause)
        except OSError:
            pass  # the server answered and closed: what it read is bounded
        answer = b""
        try:
            while chunk := connection.recv(65536):
                answer += chunk
        except OSError:
            pass
    return answer, sent


def test_oversized_bodies_are_refused_unread(tmp_path: Path) -> None:
    with serving(tmp_path) as served:
        before = served.rss_kib()
        declared, _ = _raw(
            served.base,
            b"POST /newsletter/subscribe HTTP/1.1\r\nHost: x\r\n"
            b"Content-Type: application/x-www-form-urlencoded\r\n"
            b"Content-Length: 419000000\r\n\r\n",
        )
        assert declared.startswith(b"HTTP/1.1 413 ")
        assert b"x-content-type-options: nosniff" in declared.lower()
        chunk = b"10000\r\n" + b"a" * 0x10000 + b"\r\n"
        streamed, sent = _raw(
            served.base,
            b"POST /newsletter/subscribe HTTP/1.1\r\nHost: x\r\n"
            b"Content-Type: application/x-www-form-urlencoded\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n",
            chunk * 2000,  # 128 MiB if the server kept reading
        )
        assert streamed.startswith(b"HTTP/1.1 413 ")
        assert sent < 64 * 1024 * 1024
        assert served.rss_kib() - before < 30 * 1024  # nothing like the body was held


def test_hostile_paths_get_404_and_one_quiet_log(tmp_path: Path) -> None:
    with serving(tmp_path) as served:
        (served.folder / "feeds" / "notes.txt").write_text("not a feed")
        for path in (
            "/feeds/rss.xml%00.txt",
            "/feeds/%00",
            "/feeds/../config.yaml",
            "/feeds/%2e%2e/state/feedpub.db",
            "/feeds/.feedpub-manifest.json",
            "/feeds/notes.txt",
            "/feeds/tags/",
        ):
            response = httpx.get(served.base + path)
            assert response.status_code == 404, path
            assert response.headers["x-content-type-options"] == "nosniff", path
        log = served.log()
    assert "Traceback" not in log and len(log.splitlines()) <= 1, log


def test_redirects_ignore_the_host_header(tmp_path: Path) -> None:
    with serving(tmp_path) as served:
        home = httpx.get(served.base + "/", headers={"Host": "evil.example"})
        assert home.status_code == 303
        assert home.headers["location"] == "http://news.example.org/newsletter/subscribe"
        bare = httpx.get(served.base + "/issues", headers={"Host": "evil.example"})
        assert bare.status_code == 404 and "location" not in bare.headers


def test_a_spoofed_forwarded_for_does_not_escape_the_rate_limit(tmp_path: Path) -> None:
    with serving(tmp_path) as served, httpx.Client(base_url=served.base) as client:
        codes = [
            _subscribe(client, f"r{n}@example.net", **{"X-Forwarded-For": f"203.0.113.{n}"})
            for n in range(11)
        ]
    assert [c.status_code for c in codes] == [200] * 10 + [429]


def test_a_trusted_proxy_names_the_client(tmp_path: Path) -> None:
    with (
        serving(tmp_path, "  trusted_proxies: [127.0.0.0/8]\n") as served,
        httpx.Client(base_url=served.base) as client,
    ):
        spread = [
            _subscribe(client, "a@example.net", **{"X-Forwarded-For": f"203.0.113.{n}"})
            for n in range(11)
        ]
        # A client cannot hide behind an entry it adds itself: the proxy appends
        # the address it saw, and that is the one counted.
        same = [
            _subscribe(
                client,
                "b@example.net",
                **{"X-Forwarded-For": f"10.{n}.0.1, 198.51.100.7"},
            )
            for n in range(11)
        ]
    assert {c.status_code for c in spread} == {200}
    assert [c.status_code for c in same] == [200] * 10 + [429]


def test_confirmation_links_cannot_be_guessed_or_replayed(tmp_path: Path) -> None:
    with serving(tmp_path) as served, httpx.Client(base_url=served.base) as client:
        _subscribe(client, "victim@example.net")
        deadline = time.monotonic() + 10
        outbox = served.folder / "outbox"
        while not (outbox.exists() and any(outbox.iterdir())) and time.monotonic() < deadline:
            time.sleep(0.05)
        (mail,) = outbox.iterdir()
        assert oct(mail.stat().st_mode & 0o777) == "0o600"
        guessed = client.get("/newsletter/confirm/" + "A" * 43)
        assert guessed.status_code == 400
        # A POST without the visitor's form token confirms nothing.
        forged = httpx.post(served.base + "/newsletter/confirm/" + "A" * 43, data={"csrf": "x"})
        assert forged.status_code == 403
