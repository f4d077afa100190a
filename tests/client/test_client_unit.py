"""The client's pieces that need no server: SSE decoding, config lookup, import weight."""

import subprocess
import sys

from mlplab.client import Client, Event, parse_sse


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
