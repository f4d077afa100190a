"""Server paths in error messages reach only admins (auth on, the app in-process, real Redis).

A worker's error (a dataset or checkpoint it could not read) names files on the server; the
run's owner sees what went wrong with the paths cut out, in the record and on the stream.
"""

import pytest

from api.redact import redact_paths
from tests.support.http import bearer, parse_sse

SPEC = {"dataset": "mnist", "hidden": [8], "epochs": 2}
ERROR = (
    "DatasetError: dataset 'mnist' not found in /srv/mlplab/data/MNIST/raw (download failed: "
    "[Errno -3] Temporary failure in name resolution): expected the files "
    "train-images-idx3-ubyte. Put them there, point MLPLAB_DATA_DIR (or data_dir) at the "
    "folder that holds MNIST/raw, or use download=True where the network allows; the offline "
    "dataset 'mnist-5k' needs no files. [Errno 2] No such file or directory: "
    "'/srv/mlplab/data/MNIST/raw/train-images-idx3-ubyte'"
)


@pytest.fixture
def failed(auth_client, users, store):
    """ann's run that failed with ERROR, and tokens for ann and the admin root."""
    tokens = {name: users.add(name=name, admin=name == "root")[1] for name in ("ann", "root")}
    run = auth_client.post("/v1/runs", json=SPEC, headers=bearer(tokens["ann"])).json()
    store.mark_running(run_id=run["id"], worker="w", device="cpu")
    store.finish_run(run_id=run["id"], status="failed", error=ERROR)
    return run["id"], tokens


def errors_seen(client, run_id, token) -> list[str]:
    """The run's error as its record, the run list and its event stream show it."""
    headers = bearer(token)
    record = client.get(f"/v1/runs/{run_id}", headers=headers).json()
    listed = client.get("/v1/runs", headers=headers).json()["data"]
    with client.stream("GET", f"/v1/runs/{run_id}/events", headers=headers) as response:
        events = parse_sse(response.iter_lines())
    streamed = [m["data"]["error"] for m in events if m["data"].get("error")]
    return [record["error"], *(r["error"] for r in listed if r["id"] == run_id), *streamed]


def test_the_owner_sees_the_error_without_server_paths(auth_client, failed):
    run_id, tokens = failed
    seen = errors_seen(auth_client, run_id, tokens["ann"])
    assert len(seen) == 3
    for error in seen:
        assert "/srv" not in error and "idx3-ubyte'" not in error
        assert error.startswith("DatasetError: dataset 'mnist' not found in <server path>")
        assert "MNIST/raw, or use download=True" in error  # relative names stay: they help


def test_an_admin_sees_the_whole_error(auth_client, failed):
    run_id, tokens = failed
    assert errors_seen(auth_client, run_id, tokens["root"]) == [ERROR] * 3


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "cannot read checkpoint /var/lib/mlplab/ck/g-1.pt: denied",
            "cannot read checkpoint <server path>: denied",
        ),
        ("from '/tmp/x y'", "from '<server path> y'"),
        (
            "see https://example.org/a/b and ~/data/x",
            "see https://example.org/a/b and <server path>",
        ),
        ("lr 1/2 and hidden 512/256, a / b", "lr 1/2 and hidden 512/256, a / b"),
        ("C:/not/posix", "C:/not/posix"),
    ],
)
def test_what_counts_as_a_server_path(text, expected):
    assert redact_paths(text) == expected
