"""Slow and greedy clients cannot hold `payhook serve`'s connections: raw sockets against the
real process, with its read deadlines and connection limit set small."""

import json
import socket
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.processes import Web, admin_headers, service_env, wait_for, web

HEADER_SECONDS = 1
BODY_SECONDS = 2
STILL_OPEN = 20.0  # far past every configured deadline: a connection open this long is held
SLOW_BODY = (b"POST /webhooks/stripe HTTP/1.1\r\nHost: payhook.test\r\n"
             b"Content-Type: application/json\r\nContent-Length: 1000000\r\n\r\n{")


@pytest.fixture
def serve(sqlite_url: str, tmp_path: Path) -> Iterator:
    started: list[Web] = []

    def start(header: float = HEADER_SECONDS, body: float = BODY_SECONDS,
              connections: int = 1000) -> Web:
        env = service_env(sqlite_url, PAYHOOK_HTTP_HEADER_TIMEOUT_SECONDS=str(header),
                          PAYHOOK_HTTP_BODY_TIMEOUT_SECONDS=str(body),
                          PAYHOOK_HTTP_MAX_CONNECTIONS=str(connections))
        started.append(web(env, tmp_path / "web.log").start())
        return started[-1]

    yield start
    for server in started:
        server.stop()
        assert "unhandled error" not in server.output()
        assert "Exception in ASGI application" not in server.output()


def connect(server: Web) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=STILL_OPEN)
    sock.settimeout(STILL_OPEN)
    return sock


def until_closed(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection."""
    received = b""
    try:
        while chunk := sock.recv(65536):
            received += chunk
    except TimeoutError:
        raise AssertionError(f"the connection is still open after {STILL_OPEN} s") from None
    except ConnectionResetError:
        pass  # closed while our unread bytes were pending: closed all the same
    finally:
        sock.close()
    return received


def parsed(raw: bytes) -> tuple[int, dict[str, str], dict]:
    head, _, body = raw.partition(b"\r\n\r\n")
    status_line, *lines = head.decode().split("\r\n")
    headers = {name.lower(): value.strip() for name, value in
               (line.split(":", 1) for line in lines)}
    return int(status_line.split()[1]), headers, json.loads(body)


def one_answer(sock: socket.socket) -> bytes:
    """One response read off a connection that stays open (its body has a Content-Length)."""
    received = b""
    while b"\r\n\r\n" not in received:
        received += sock.recv(65536)
    head, _, body = received.partition(b"\r\n\r\n")
    length = int(next(line.split(b":", 1)[1] for line in head.split(b"\r\n")
                      if line.lower().startswith(b"content-length:")))
    while len(body) < length:
        body += sock.recv(65536)
    return head + b"\r\n\r\n" + body


def still_serves(server: Web) -> None:
    answer = httpx.post(f"{server.url}/admin/merchants", json={"name": "after"},
                        headers=admin_headers(), timeout=10)
    assert answer.status_code == 201, answer.text


def test_slow_bodies_get_a_408_and_are_closed(serve):
    server = serve()
    slow = [connect(server) for _ in range(50)]
    for sock in slow:
        sock.sendall(SLOW_BODY)
    answers = [until_closed(sock) for sock in slow]

    for raw in answers:
        status, headers, body = parsed(raw)
        assert (status, headers["connection"]) == (408, "close")
        assert body["error"]["type"] == "invalid_request_error"
        assert body["error"]["code"] == "request_timeout"
        assert set(body["error"]) == {"type", "code", "message", "param"}
    still_serves(server)


def test_a_body_nobody_reads_cannot_hold_the_connection(serve):
    """A route that answers without the body (here a 405) leaves the body to arrive, a byte
    now and then: it has the same deadline."""
    server = serve()
    sock = connect(server)
    sock.sendall(SLOW_BODY.replace(b"/webhooks/stripe", b"/healthz"))
    assert one_answer(sock).startswith(b"HTTP/1.1 405 ")
    sock.sendall(b" ")
    assert until_closed(sock) == b""
    still_serves(server)


def test_unfinished_headers_are_closed(serve):
    server = serve()
    silent = connect(server)
    partial = [connect(server) for _ in range(10)]
    for sock in partial:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: payhook.test\r\nX-Slow: ")
    # Keep-alive: the next request's headers get the same deadline as the first's.
    kept = connect(server)
    kept.sendall(b"GET /healthz HTTP/1.1\r\nHost: payhook.test\r\n\r\n")
    assert one_answer(kept).startswith(b"HTTP/1.1 200 ")
    kept.sendall(b"GET /healthz HTT")

    assert until_closed(silent) == b""
    assert all(until_closed(sock) == b"" for sock in partial)
    assert until_closed(kept) == b""
    still_serves(server)


def test_connections_past_the_limit_get_a_503(serve):
    limit = 5
    server = serve(header=60, body=60, connections=limit)
    held = [connect(server) for _ in range(limit)]  # open, quiet: within their deadlines
    for sock in held:
        sock.sendall(b"GET /healthz HTTP/1.1\r\n")
    excess = [connect(server) for _ in range(3)]
    for sock in excess:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: payhook.test\r\n\r\n")

    for sock in excess:
        status, headers, body = parsed(until_closed(sock))
        assert (status, headers["connection"], headers["retry-after"]) == (503, "close", "1")
        assert body["error"]["code"] == "too_many_connections"
    for sock in held:
        sock.close()
    wait_for(lambda: httpx.get(f"{server.url}/healthz", timeout=10).status_code == 200, 10,
             "the held connections to be released")
    still_serves(server)
