"""The client's pieces that need no mlplab server: SSE decoding, config lookup, import weight,
idempotency keys and retries (against a small real HTTP server that drops connections)."""

import http.server
import json
import socket
import subprocess
import sys
import threading
import uuid

import pytest

from mlplab.client import Client, ConnectionFailed, Event, parse_sse


def test_parse_sse_events_ids_comments_and_multiline_data():
    body = [
        ": keep-alive",
        "",
        "event: epoch",
        "id: 1",
        'data: {"epoch": 1, "train_loss": 0.5}',
        "",
        "event: status",
        'data: {"status":',
        'data:  "succeeded"}',
        "",
    ]
    events = list(parse_sse(iter(body)))
    assert events == [
        Event(event="epoch", id="1", data={"epoch": 1, "train_loss": 0.5}),
        Event(event="status", id="1", data={"status": "succeeded"}),
    ]


def test_url_and_token_come_from_arguments_env_then_config(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    monkeypatch.delenv("MLPLAB_URL", raising=False)
    monkeypatch.delenv("MLPLAB_TOKEN", raising=False)
    (tmp_path / "mlplab").mkdir()
    (tmp_path / "mlplab" / "config.toml").write_text('url = "http://cfg:1"\ntoken = "t-cfg"\n')
    assert (Client().url, Client().token) == ("http://cfg:1", "t-cfg")
    monkeypatch.setenv("MLPLAB_URL", "http://env:2")
    monkeypatch.setenv("MLPLAB_TOKEN", "t-env")
    assert (Client().url, Client().token) == ("http://env:2", "t-env")
    explicit = Client("http://arg:3", "t-arg")
    assert (explicit.url, explicit.token) == ("http://arg:3", "t-arg")
    assert explicit._http.headers["Authorization"] == "Bearer t-arg"


def test_importing_the_client_pulls_in_no_heavy_modules():
    code = (
        "import sys, mlplab.client; heavy = {'torch', 'fastapi', 'celery'} & set(sys.modules);"
        "print(sorted(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


class _Flaky(http.server.BaseHTTPRequestHandler):
    """Answers POSTs with 202 and a record, after dropping the first `drops` connections
    without a word (as an API killed mid-request does); remembers each request's key."""

    drops = 0
    busy = 0  # then answer this many with the API's 409 for a key still being written
    seen: list[tuple[str, str | None]] = []

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        type(self).seen.append((self.path, self.headers.get("Idempotency-Key")))
        if type(self).drops > 0:
            type(self).drops -= 1
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        status, record = 202, {"id": f"r{len(self.seen)}", "run_ids": []}
        if type(self).busy > 0:
            type(self).busy -= 1
            detail = "the submission with Idempotency-Key 'k' is still in progress; retry"
            status, record = 409, {"detail": detail, "code": "conflict"}
        body = json.dumps(record).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def flaky():
    """A real HTTP server on a free port (its handler class holds drops and seen)."""
    _Flaky.drops, _Flaky.busy, _Flaky.seen = 0, 0, []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Flaky)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield _Flaky, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_each_submission_sends_a_fresh_idempotency_key(flaky):
    handler, url = flaky
    with Client(url, retry_backoff_s=0) as client:
        client.submit_run({"epochs": 1})
        client.submit_sweep({"base": {}, "grid": {"lr": [0.1]}})
        client.submit_run({"epochs": 1})
    keys = [k for _, k in handler.seen]
    assert [p for p, _ in handler.seen] == ["/v1/runs", "/v1/sweeps", "/v1/runs"]
    assert all(keys) and len(set(keys)) == 3
    assert all(uuid.UUID(k).version == 4 for k in keys)


def test_a_dropped_submission_is_retried_with_the_same_key(flaky):
    handler, url = flaky
    handler.drops = 2
    with Client(url, retry_backoff_s=0) as client:
        record = client.submit_sweep({"base": {}, "grid": {"lr": [0.1]}})
    assert record["id"] == "r3"
    assert len(handler.seen) == 3 and len({k for _, k in handler.seen}) == 1


def test_a_submission_dropped_every_time_gives_up_as_unreachable(flaky):
    handler, url = flaky
    handler.drops = 100
    with Client(url, retry_backoff_s=0, submit_tries=3) as client:
        with pytest.raises(ConnectionFailed):
            client.submit_run({"epochs": 1})
    assert len(handler.seen) == 3 and len({k for _, k in handler.seen}) == 1


def test_a_submission_still_in_progress_on_the_server_is_asked_again(flaky):
    """A retry that finds the first attempt still being written (409 in progress) waits and
    asks again with the same key; any other 409 is the caller's."""
    handler, url = flaky
    handler.drops, handler.busy = 1, 1
    with Client(url, retry_backoff_s=0) as client:
        assert client.submit_run({"epochs": 1})["id"] == "r3"
    assert len({k for _, k in handler.seen}) == 1


def test_cannot_reach_suggests_mlplab_up_only_for_a_local_url():
    from mlplab.errors import ConnectionFailed

    local = ConnectionFailed.reaching("http://127.0.0.1:8000", OSError("refused"))
    remote = ConnectionFailed.reaching("https://lab.example.org", OSError("refused"))
    assert str(local).startswith("cannot reach mlplab at http://127.0.0.1:8000: refused")
    assert "mlplab up" in str(local) and "mlplab up" not in str(remote)
