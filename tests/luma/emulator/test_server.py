"""The loopback server: real sockets, HTTP/1.1 keep-alive, ranges, chunked bodies, hangs, quiet logs."""

from __future__ import annotations

import http.client
import io
import json
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from luma._constants import PATH_CREDITS, PATH_UPLOAD_STREAM
from luma.emulator import Emulator
from luma.emulator.server import EmulatorServer


@pytest.fixture
def serve(make_emulator: Callable[..., Emulator]) -> Iterator[Callable[..., EmulatorServer]]:
    servers: list[EmulatorServer] = []

    def start(**config: Any) -> EmulatorServer:
        log_to = config.pop("log_to", None)
        verbose = config.pop("verbose", False)
        server = EmulatorServer(make_emulator(**config), verbose=verbose, log_to=log_to).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.close()


def test_public_base_follows_the_server_unless_given(serve: Callable[..., EmulatorServer]) -> None:
    server = serve()
    assert server.url.startswith("http://127.0.0.1:") and server.port > 0
    assert server.emulator.config.public_base == server.url
    assert server.emulator.samples()[0].url.startswith(server.url + "/files/samples/")
    pinned = serve(public_base="http://demo.example:9000")
    assert pinned.emulator.config.public_base == "http://demo.example:9000"


def test_ranges_and_head_over_the_socket(serve: Callable[..., EmulatorServer], sample_mp4: Path) -> None:
    server = serve()
    data = sample_mp4.read_bytes()
    url = server.emulator.samples()[0].url
    with httpx.Client() as http:
        part = http.get(url, headers={"Range": "bytes=0-99"})
        assert part.status_code == 206 and part.content == data[:100]
        assert part.headers["content-range"] == f"bytes 0-99/{len(data)}"
        assert part.headers["content-type"] == "video/mp4" and part.headers["accept-ranges"] == "bytes"
        whole = http.get(url, headers={"Range": "bytes=0-"})
        assert whole.status_code == 206 and whole.content == data
        assert http.get(url, headers={"Range": f"bytes={len(data) + 5}-"}).status_code == 416
        head = http.head(url)
        assert head.status_code == 200 and head.headers["content-length"] == str(len(data)) and head.content == b""


def test_keep_alive_serves_many_requests_on_one_connection(serve: Callable[..., EmulatorServer]) -> None:
    server = serve()
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    try:
        for _ in range(3):
            connection.request("GET", PATH_CREDITS, headers={"Authorization": "Bearer demo"})
            response = connection.getresponse()
            assert response.status == 200 and json.loads(response.read())["data"] == 1000
            connection.request("HEAD", "/files/samples/rolling-hills.mp4")
            head = connection.getresponse()
            assert head.status == 200 and head.read() == b""
        first_socket = connection.sock
        connection.request("GET", PATH_CREDITS, headers={"Authorization": "Bearer demo"})
        connection.getresponse().read()
        assert connection.sock is first_socket
    finally:
        connection.close()


def test_chunked_multipart_upload(serve: Callable[..., EmulatorServer], sample_mp4: Path) -> None:
    server = serve()
    data = sample_mp4.read_bytes()
    boundary = "chunkyboundary"
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="uploadPath"\r\n\r\nchunked\r\n'.encode(),
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="c.mp4"\r\n'
        f"Content-Type: video/mp4\r\n\r\n".encode(),
        data[:1000], data[1000:], f"\r\n--{boundary}--\r\n".encode(),
    ]

    def body() -> Iterator[bytes]:
        yield from parts  # a generator: httpx sends it with Transfer-Encoding: chunked

    with httpx.Client() as http:
        answer = http.post(server.url + PATH_UPLOAD_STREAM, content=body(), headers={
            "Authorization": "Bearer demo", "Content-Type": f"multipart/form-data; boundary={boundary}"})
        assert answer.request.headers.get("transfer-encoding") == "chunked"
        result = answer.json()
        assert result["success"] is True and result["data"]["fileSize"] == len(data)
        assert http.get(result["data"]["downloadUrl"]).content == data


def test_injected_timeout_holds_then_drops_the_connection(serve: Callable[..., EmulatorServer]) -> None:
    server = serve(rate_timeout=1.0, timeout_seconds=0.4)
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as raw:
        started = time.monotonic()
        raw.sendall(f"GET {PATH_CREDITS} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer demo\r\n\r\n".encode())
        assert raw.recv(1024) == b""  # closed without a single byte of answer
        assert 0.35 <= time.monotonic() - started < 3


def test_oversized_body_is_refused_before_reading(serve: Callable[..., EmulatorServer]) -> None:
    server = serve()
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as raw:
        raw.sendall(f"POST {PATH_UPLOAD_STREAM} HTTP/1.1\r\nHost: x\r\nContent-Length: {700 * 1024 * 1024}\r\n"
                    "Content-Type: multipart/form-data; boundary=b\r\n\r\n".encode())
        assert raw.recv(64).startswith(b"HTTP/1.1 413")


def test_request_log_is_quiet_by_default_and_never_shows_the_key(serve: Callable[..., EmulatorServer]) -> None:
    secret = "sk-live-VERY-SECRET-KEY"
    quiet_log, loud_log = io.StringIO(), io.StringIO()
    quiet = serve(log_to=quiet_log)
    loud = serve(log_to=loud_log, verbose=True)
    for server in (quiet, loud):
        httpx.get(server.url + PATH_CREDITS, headers={"Authorization": f"Bearer {secret}"})
        httpx.get(server.url + "/api/v1/modify/record-info?taskId=abc", headers={"Authorization": f"Bearer {secret}"})
    assert quiet_log.getvalue() == ""
    text = loud_log.getvalue()
    assert f"GET {PATH_CREDITS} -> 200" in text and "record-info?taskId=abc" in text
    assert secret not in text and "Bearer" not in text and "uthorization" not in text


def test_close_releases_a_held_request(serve: Callable[..., EmulatorServer]) -> None:
    server = serve(rate_timeout=1.0, timeout_seconds=60)
    raw = socket.create_connection(("127.0.0.1", server.port), timeout=5)
    try:
        raw.sendall(f"GET {PATH_CREDITS} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer demo\r\n\r\n".encode())
        time.sleep(0.2)
        started = time.monotonic()
        server.close()
        assert raw.recv(1024) == b""
        assert time.monotonic() - started < 3
    finally:
        raw.close()
