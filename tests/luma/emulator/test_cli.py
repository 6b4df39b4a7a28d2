"""``python -m luma.emulator`` as a real process, driven with plain HTTP (urllib), not the luma client."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[3]
KEY = "cli-test-key"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    env.update(extra)
    return env


class Running:
    def __init__(self, process: subprocess.Popen[str], base: str) -> None:
        self.process = process
        self.base = base

    def request(self, method: str, path: str, *, body: Any = None, key: str | None = KEY,
                headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.base + path if path.startswith("/") else path, data=data,
                                         method=method, headers=dict(headers or {}))
        if key is not None:
            request.add_header("Authorization", f"Bearer {key}")
        if data is not None:
            request.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, dict(response.headers.items()), response.read()
        except urllib.error.HTTPError as error:
            return error.code, dict(error.headers.items()), error.read()


def _start(args: list[str], env: dict[str, str]) -> Iterator[Running]:
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "luma.emulator", "--host", "127.0.0.1", "--port", str(port), *args],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            if process.poll() is not None:
                pytest.fail(f"the emulator exited early: {process.stderr.read() if process.stderr else ''}")
            try:
                with urllib.request.urlopen(base + "/_emulator/stats", timeout=1) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail("the emulator did not start listening within 30 s")
            time.sleep(0.1)
        yield Running(process, base)
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)


@pytest.fixture
def emulator_process(tmp_path: Path) -> Iterator[Running]:
    yield from _start(
        ["--processing-delay", "0.5", "--sample-size", "160x90", "--sample-seconds", "1",
         "--data-dir", str(tmp_path / "data"), "--require-key", "--verbose"],
        _env(LUMA_EMULATOR_API_KEY=KEY),
    )


def test_serves_a_whole_task_over_plain_http(emulator_process: Running, tmp_path: Path) -> None:
    run = emulator_process
    status, _, body = run.request("GET", "/api/v1/chat/credit", key=None)
    assert status == 200 and json.loads(body)["code"] == 401
    status, _, body = run.request("GET", "/api/v1/chat/credit")
    assert json.loads(body) == {"code": 200, "msg": "success", "data": 1000}

    sample = f"{run.base}/files/samples/city-lights.mp4"
    status, _, body = run.request("POST", "/api/v1/modify/generate",
                                  body={"prompt": "make it a rainy night", "videoUrl": sample})
    created = json.loads(body)
    assert created["code"] == 200, created
    task_id = created["data"]["taskId"]

    deadline = time.monotonic() + 90
    while True:
        _, _, body = run.request("GET", f"/api/v1/modify/record-info?taskId={task_id}")
        data = json.loads(body)["data"]
        if data["successFlag"] != 0:
            break
        assert time.monotonic() < deadline, "the task did not finish within 90 s"
        time.sleep(0.25)
    assert data["successFlag"] == 1 and data["completeTime"] >= data["createTime"]
    result = data["response"]["resultUrls"][0]
    assert result.startswith(run.base + "/files/results/")

    status, headers, chunk = run.request("GET", result, key=None, headers={"Range": "bytes=0-99"})
    assert status == 206 and len(chunk) == 100 and chunk[4:8] == b"ftyp"
    assert headers["Content-Type"] == "video/mp4" and headers["Content-Range"].startswith("bytes 0-99/")

    stats = json.loads(run.request("GET", "/_emulator/stats", key=None)[2])
    assert stats["creates"] == 1 and stats["tasks"]["SUCCESS"] == 1
    assert stats["requests"]["creates"] == 1 and stats["requests"]["reads"] >= 1
    assert stats["requests"]["credits"] == 2 and stats["requests"]["files"] == 1
    lines = (tmp_path / "data" / "creates.jsonl").read_text().splitlines()
    assert [json.loads(line)["taskId"] for line in lines] == [task_id]

    run.process.send_signal(signal.SIGTERM)
    assert run.process.wait(10) == 0
    output = (run.process.stdout.read() if run.process.stdout else "") + \
        (run.process.stderr.read() if run.process.stderr else "")
    assert "serving http://127.0.0.1:" in output
    assert "/api/v1/modify/generate -> 200" in output  # --verbose logs requests...
    assert KEY not in output and "Bearer" not in output  # ...but never the key


def test_help_lists_every_option() -> None:
    result = subprocess.run([sys.executable, "-m", "luma.emulator", "--help"], cwd=REPO, env=_env(),
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0
    for option in (
        "--host", "--port", "--public-base", "--data-dir", "--verbose", "--require-key", "--credits",
        "--credits-per-task", "--create-limit", "--create-window", "--processing-delay", "--failure-rate",
        "--create-failure-rate", "--workers", "--seed", "--max-video-seconds", "--max-video-bytes",
        "--sample-size", "--sample-seconds", "--error-style", "--response-while-generating",
        "--error-code-type", "--upload-shape", "--callback-failure-code", "--retry-after", "--latency",
        "--rate-429", "--rate-500", "--rate-timeout", "--rate-malformed", "--fault-creates", "--answer-delay",
        "--timeout-seconds", "--maintenance", "--feature-disabled", "--reject-bare-user-agent",
        "--sign-callbacks", "--callback-retries", "--callback-backoff", "--callback-timeout", "--allow-host",
        "LUMA_EMULATOR_API_KEY", "LUMA_EMULATOR_SIGNING_KEY",
    ):
        assert option in result.stdout, option


def test_require_key_without_the_variable_is_a_clear_error() -> None:
    env = _env()
    env.pop("LUMA_EMULATOR_API_KEY", None)
    result = subprocess.run([sys.executable, "-m", "luma.emulator", "--require-key", "--port", "0"], cwd=REPO,
                            env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "LUMA_EMULATOR_API_KEY" in result.stderr


def test_bad_option_values_are_refused() -> None:
    for args in (["--failure-rate", "1.5"], ["--error-style", "xml"], ["--sample-size", "big"]):
        result = subprocess.run([sys.executable, "-m", "luma.emulator", "--port", "0", *args], cwd=REPO,
                                env=_env(), capture_output=True, text=True, timeout=60)
        assert result.returncode == 2, args


def _record(run: Running, task_id: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(run.request("GET", f"/api/v1/modify/record-info?taskId={task_id}")[2])["data"]
    return data


def test_a_killed_server_is_answered_for_by_the_next_one(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    args = ["--processing-delay", "2", "--sample-size", "160x90", "--sample-seconds", "1", "--answer-delay", "0.2",
            "--data-dir", str(data_dir), "--require-key"]
    env = _env(LUMA_EMULATOR_API_KEY=KEY)
    first = _start(args, env)
    run = next(first)
    try:
        sample = f"{run.base}/files/samples/city-lights.mp4"
        created = json.loads(run.request("POST", "/api/v1/modify/generate",
                                         body={"prompt": "outlive the server", "videoUrl": sample})[2])
        task_id = created["data"]["taskId"]
        before = _record(run, task_id)
        assert before["successFlag"] == 0
        # A second server on the same data dir is refused while the first lives.
        refused = subprocess.run([sys.executable, "-m", "luma.emulator", "--port", "0", "--data-dir", str(data_dir)],
                                 cwd=REPO, env=env, capture_output=True, text=True, timeout=60)
        assert refused.returncode == 2 and "is using the data dir" in refused.stderr
        run.process.send_signal(signal.SIGKILL)  # mid-task: no close, no clean-up
        assert run.process.wait(10) == -signal.SIGKILL
    finally:
        first.close()

    second = _start(args, env)
    run = next(second)
    try:
        deadline = time.monotonic() + 90
        while (data := _record(run, task_id))["successFlag"] == 0:
            assert time.monotonic() < deadline, "the task did not finish within 90 s"
            time.sleep(0.25)
        assert data["successFlag"] == 1
        assert (data["taskId"], data["createTime"], data["paramJson"]) == \
            (before["taskId"], before["createTime"], before["paramJson"])
        result = data["response"]["resultUrls"][0]
        assert result.startswith(run.base + "/files/results/")  # the new server's own address
        status, _, chunk = run.request("GET", result, key=None, headers={"Range": "bytes=0-99"})
        assert status == 206 and chunk[4:8] == b"ftyp"
        assert json.loads(run.request("GET", "/api/v1/chat/credit")[2])["data"] == 990
        assert json.loads(run.request("GET", "/_emulator/stats", key=None)[2])["creates"] == 1
    finally:
        second.close()
