"""platform_core.http_calls: one-off calls answer as httpx's do, with one TLS context a process."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import certifi
import httpx
import pytest

from platform_core import http_calls


class _Echo(BaseHTTPRequestHandler):
    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = json.dumps(
            {
                "method": self.command,
                "path": self.path,
                "body": self.rfile.read(length).decode(),
                "connection": self.headers.get("Connection"),
            }
        ).encode()
        self.send_response(201 if self.command == "POST" else 200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_DELETE = _answer

    def log_message(self, *_args) -> None:
        pass


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Echo)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_calls_answer_as_httpx_does(server: str) -> None:
    got = http_calls.get(f"{server}/health", params={"a": "1"}, timeout=5)
    assert got.status_code == 200
    assert got.json()["path"] == "/health?a=1"
    posted = http_calls.post(f"{server}/check", json={"x": 1}, timeout=5)
    assert posted.status_code == 201 and json.loads(posted.json()["body"]) == {"x": 1}
    deleted = http_calls.request("DELETE", f"{server}/silence/1", timeout=5)
    assert deleted.json()["method"] == "DELETE"
    with pytest.raises(httpx.ConnectError):
        http_calls.get("http://127.0.0.1:9/", timeout=2)  # the discard port: nothing listens


def test_many_calls_build_one_tls_context(server: str) -> None:
    http_calls.tls_context.cache_clear()
    for _ in range(5):
        http_calls.get(f"{server}/health", timeout=5)
    assert http_calls.tls_context.cache_info().misses == 1
    assert http_calls.tls_context.cache_info().hits == 4


def test_the_context_trusts_what_ssl_cert_file_names(tmp_path: Path) -> None:
    # One certificate of certifi's bundle in a file of its own: httpx trusts SSL_CERT_FILE's
    # authorities instead of certifi's, and so must the shared context.
    pem = Path(certifi.where()).read_text()
    first = pem[pem.index("-----BEGIN CERTIFICATE-----") :]
    first = first[: first.index("-----END CERTIFICATE-----") + len("-----END CERTIFICATE-----")]
    bundle = tmp_path / "one.pem"
    bundle.write_text(first + "\n")
    code = (
        "from platform_core import http_calls; "
        "print(http_calls.tls_context().cert_store_stats()['x509_ca'])"
    )
    env = {"SSL_CERT_FILE": str(bundle), "PATH": "/usr/bin:/bin"}
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "1"
