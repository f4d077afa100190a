"""A token sent in the query string is refused and never reaches uvicorn's access log, whether
the API runs under `mlplab api` or plain `uvicorn api.main:create_app --factory`."""

import secrets
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from api.logfilter import redact_query
from tests.support.paths import ROOT
from tests.support.redis_db import AUTH_SERVER_REDIS_URL
from tests.support.servers import ServerProcesses, free_port
from tests.support.waiting import wait_for

pytestmark = pytest.mark.integration
PARAMS = ("token", "access_token", "api_key", "apikey", "Token")


def send_secrets(base_url: str, log: Path) -> list[str]:
    """Ask /v1/runs with a secret in each parameter (each refused); wait for the access log
    to show the last request, and return the secrets sent."""
    sent, marker = [], f"marker-{secrets.token_hex(4)}"
    with httpx.Client(base_url=base_url, timeout=30) as http:
        for name in PARAMS:
            secret = f"SECRET{secrets.token_hex(8)}"
            sent.append(secret)
            reply = http.get("/v1/runs", params={name: secret, "limit": "5"})
            assert reply.status_code == 401 and "detail" in reply.json(), reply.text
        assert http.get("/v1/runs", params={"marker": marker}).status_code == 401
    wait_for(lambda: marker in log.read_text(), what="the access log line of the last request")
    return sent


def assert_redacted(log: Path, sent: list[str]) -> None:
    """No secret in the log, and each request line is there with REDACTED in its place."""
    text = log.read_text()
    assert not [s for s in sent if s in text], text
    for name in PARAMS:
        assert f"GET /v1/runs?{name}=REDACTED&limit=5 HTTP/1.1" in text, text


def test_only_secret_values_are_redacted_and_the_rest_is_kept_verbatim():
    assert redact_query("/v1/runs") == "/v1/runs"
    assert redact_query("/v1/runs?status=queued&limit=5") == "/v1/runs?status=queued&limit=5"
    assert redact_query("/x?%74oken=a%20b&API_KEY=c&token&sweep=s") == (
        "/x?%74oken=REDACTED&API_KEY=REDACTED&token&sweep=s"
    )
    assert (
        redact_query("/x?access_token=a=b&&apikey=") == "/x?access_token=REDACTED&&apikey=REDACTED"
    )


def test_mlplab_api_never_logs_a_query_string_token(tmp_path):
    procs = ServerProcesses(
        redis_url=AUTH_SERVER_REDIS_URL, prefix="accesslog", log_dir=tmp_path, auth=True
    )
    procs.start("api")
    try:
        procs.wait_ready(worker=False)
        sent = send_secrets(procs.base_url, tmp_path / "api.log")
    finally:
        procs.close()
    assert_redacted(tmp_path / "api.log", sent)


def test_plain_uvicorn_never_logs_a_query_string_token(tmp_path):
    port = free_port()
    procs = ServerProcesses(
        redis_url=AUTH_SERVER_REDIS_URL, prefix="accesslog", log_dir=tmp_path, auth=True
    )
    argv = [sys.executable, "-m", "uvicorn", "api.main:create_app", "--factory"]
    argv += ["--port", str(port)]
    log = tmp_path / "uvicorn.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            argv,
            cwd=ROOT,
            env={**procs.env, "MLPLAB_AUTH": "true"},
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        base = f"http://127.0.0.1:{port}"
        wait_for(lambda: _answers(base), what="uvicorn to answer", timeout=120)
        sent = send_secrets(base, log)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    assert_redacted(log, sent)


def _answers(base: str) -> bool:
    try:
        return httpx.get(f"{base}/healthz", timeout=2).status_code in (200, 503)
    except httpx.HTTPError:
        return False
