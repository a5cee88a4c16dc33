"""Tests for fetching images by URL, against a real HTTP server on loopback."""

from __future__ import annotations

import http.server
import ipaddress
import threading
import time
from collections.abc import Iterator

import pytest

from imagegen import jpeg
from pigeonhole.errors import ValidationError
from pigeonhole.images import decode
from pigeonhole.inference.fetch import (
    MAX_REDIRECTS,
    fetch_image_bytes,
    refusal_reason,
)

PHOTO = jpeg("fetched", size=(640, 480))
BIG = b"\xff" * 50_000


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        route = {
            "/cat.jpg": lambda: self._send(PHOTO),
            "/big": lambda: self._send(BIG),
            "/big-unsized": lambda: self._send(BIG, sized=False),
            "/slow": self._slow,
            "/moved": lambda: self._redirect("/cat.jpg"),
            "/loop": lambda: self._redirect("/loop"),
            "/to-ftp": lambda: self._redirect("ftp://127.0.0.1/cat.jpg"),
        }.get(self.path)
        if route is None:
            self.send_error(404)
            return
        route()

    def _send(self, body: bytes, *, sized: bool = True) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "image/jpeg")
        self.send_header("Connection", "close")
        if sized:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        self.close_connection = True

    def _slow(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", str(len(PHOTO)))
        self.end_headers()
        for start in range(0, len(PHOTO), 100):
            self.wfile.write(PHOTO[start : start + 100])
            self.wfile.flush()
            time.sleep(0.05)

    def _redirect(self, location: str) -> None:
        self.send_response(302)
        self.send_header("Location", location)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass  # keep the test output clean


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    """The base URL of a server on 127.0.0.1."""
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def fetch(url: str, **changes: object) -> bytes:
    options: dict = {"max_bytes": 1 << 20, "timeout_s": 5.0, "allow_private": True}
    options.update(changes)
    return fetch_image_bytes(url, **options)


def test_fetches_an_image_from_an_allowed_private_host(server: str) -> None:
    data = fetch(f"{server}/cat.jpg")

    assert data == PHOTO
    assert decode(data).size == (640, 480)


def test_follows_redirects_and_names_host_by_name(server: str) -> None:
    port = server.rsplit(":", 1)[1]

    assert fetch(f"{server}/moved") == PHOTO
    assert fetch(f"http://localhost:{port}/cat.jpg") == PHOTO


@pytest.mark.parametrize(
    "host",
    ["127.0.0.1", "localhost", "[::ffff:127.0.0.1]"],
    ids=["ipv4", "name", "ipv4-mapped-ipv6"],
)
def test_loopback_is_refused_unless_allowed(server: str, host: str) -> None:
    port = server.rsplit(":", 1)[1]

    with pytest.raises(ValidationError, match=r"a loopback address; images are"):
        fetch(f"http://{host}:{port}/cat.jpg", allow_private=False)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("ftp://127.0.0.1/cat.jpg", "scheme 'ftp' is not accepted"),
        ("file:///etc/passwd", "scheme 'file' is not accepted"),
        ("cat.jpg", "scheme 'none' is not accepted"),
        ("http://no-such-host.invalid/cat.jpg", "cannot be resolved"),
    ],
    ids=["ftp", "file", "relative", "unknown-host"],
)
def test_bad_urls_are_refused(url: str, message: str) -> None:
    with pytest.raises(ValidationError, match=message) as caught:
        fetch(url)

    assert str(caught.value).startswith(url)


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("/big", r"larger than the limit of 10000 bytes \(the server declares"),
        ("/big-unsized", r"larger than the limit of 10000 bytes \(the server sent"),
        ("/missing.jpg", "answered 404"),
        ("/to-ftp", r"redirected to ftp://127\.0\.0\.1/cat\.jpg\): scheme 'ftp'"),
        ("/loop", f"more than {MAX_REDIRECTS} redirects"),
    ],
    ids=["declared-size", "streamed-size", "not-found", "redirect-ftp", "loop"],
)
def test_bad_answers_are_refused(server: str, path: str, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        fetch(f"{server}{path}", max_bytes=10_000)


def test_slow_server_hits_the_time_limit(server: str) -> None:
    with pytest.raises(ValidationError, match=r"took longer than the limit of 0\.3 s"):
        fetch(f"{server}/slow", timeout_s=0.3)


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("127.0.0.1", "loopback"),
        ("10.1.2.3", "private"),
        ("192.168.0.10", "private"),
        ("169.254.169.254", "link-local"),  # where clouds serve instance secrets
        ("fe80::1", "link-local"),
        ("224.0.0.1", "multicast"),
        ("0.0.0.0", "unspecified"),
        ("240.0.0.1", "reserved"),
        ("100.64.0.1", "not globally routable"),
        ("::1", "loopback"),
        ("::ffff:10.0.0.1", "private"),
        ("8.8.8.8", None),
        ("2606:4700:4700::1111", None),
    ],
)
def test_refusal_reasons(address: str, reason: str | None) -> None:
    assert refusal_reason(ipaddress.ip_address(address)) == reason


@pytest.mark.parametrize(
    ("arguments", "message"),
    [({"max_bytes": 0}, "max_bytes=0"), ({"timeout_s": 0}, "timeout_s=0")],
    ids=["max-bytes", "timeout"],
)
def test_bad_limits_are_refused(server: str, arguments: dict, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        fetch(f"{server}/cat.jpg", **arguments)
