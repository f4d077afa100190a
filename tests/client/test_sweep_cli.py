"""`mlplab sweeps`, `label`, `retry`, `extend` and `compare` as subprocesses against a real
uvicorn and a real Celery worker."""

import json

import pytest

from tests.support.cli import error_line

pytestmark = pytest.mark.integration

PNG = b"\x89PNG\r\n\x1a\n"
RANDOM_YAML = (
    "name: cli random\nstrategy: random\nn: 2\nseed: 3\n"
    "base:\n  dataset: synthetic\n  hidden: [16]\n  epochs: 2\n"
    "grid:\n  lr:\n    loguniform: [0.001, 0.1]\n"
)


def submitted(mlplab, *args):
    """Submit and watch a sweep to its end; its record."""
    sweep = json.loads(mlplab("submit", *args, "--json").stdout)
    mlplab("watch", sweep["id"], "--json")
    return sweep


def test_list_label_extend_and_compare_sweeps(mlplab, tmp_path):
    (tmp_path / "random.yaml").write_text(RANDOM_YAML)
    grid = submitted(mlplab, "sweep.yaml")
    random = submitted(mlplab, "random.yaml")
    listed = json.loads(mlplab("sweeps", "--json").stdout)
    ids = [s["id"] for s in listed["data"]]
    assert ids.index(random["id"]) < ids.index(grid["id"])  # newest first
    mlplab("label", random["id"], "--tag", "lr-search", "--notes", "first look")
    tagged = json.loads(mlplab("sweeps", "--tag", "lr-search", "--json").stdout)
    assert [s["id"] for s in tagged["data"]] == [random["id"]]
    table = mlplab("sweeps", "--name", "cli random").stdout
    assert random["id"] in table and "lr-search" in table and grid["id"] not in table
    shown = mlplab("show", random["id"]).stdout
    assert "tags: lr-search" in shown and "notes: first look" in shown
    extended = json.loads(mlplab("extend", random["id"], "--n", "1", "--json").stdout)
    assert extended["count"] == 1
    mlplab("watch", random["id"], "--json")
    compared = mlplab("compare", grid["id"], random["id"], "-o", "compare.png").stdout
    assert "cli random" in compared and "final_train_loss" in compared
    assert (tmp_path / "compare.png").read_bytes().startswith(PNG)
    refused = mlplab("extend", grid["id"], "--n", "1", code=1)
    assert "random" in error_line(refused, "extend")
    epochs = json.loads(mlplab("show", grid["run_ids"][0], "--json").stdout)["spec"]["epochs"]
    longer = mlplab("extend", grid["id"], "--epochs", str(epochs + 1)).stdout
    assert longer.strip() == f"sweep {grid['id']}: 2 run(s) continue to {epochs + 1} epochs"
    mlplab("watch", grid["id"], "--json")
    run = json.loads(mlplab("show", grid["run_ids"][0], "--json").stdout)
    assert [e["epoch"] for e in run["epochs"]] == list(range(1, epochs + 2))
    assert run["extensions"][0]["from_epoch"] == epochs


def test_retry_requeues_cancelled_runs_as_new_attempts(mlplab):
    sweep = json.loads(mlplab("submit", "sweep.yaml", "--set", "epochs=400", "--json").stdout)
    mlplab("cancel", sweep["id"])
    mlplab("watch", sweep["id"], "--json", code=4)  # 4: its runs ended, not succeeded
    assert (
        mlplab("retry", sweep["id"]).stdout.strip() == f"sweep {sweep['id']}: 2 run(s) queued again"
    )
    run = json.loads(mlplab("show", sweep["run_ids"][0], "--json").stdout)
    assert [a["status"] for a in run["attempts"]] == ["cancelled"]
    assert run["status"] in ("queued", "running")
    mlplab("cancel", sweep["id"])
    mlplab("watch", sweep["id"], "--json", code=4)
    again = json.loads(mlplab("retry", sweep["id"], "--json").stdout)
    assert again["count"] == 2
    run = json.loads(mlplab("show", sweep["run_ids"][0], "--json").stdout)
    assert [a["attempt"] for a in run["attempts"]] == [1, 2]
    mlplab("cancel", sweep["id"])
    finished = submitted(mlplab, "sweep.yaml")
    refused = mlplab("retry", finished["id"], code=1)
    assert "no failed" in error_line(refused, "retry")


def test_a_retried_run_trains_again_from_its_first_epoch(mlplab):
    """A diverging sweep (sgd, lr 1e9) retried: the worker trains each run again from epoch 1 and
    it diverges again, with both attempts in its record."""
    sweep = json.loads(
        mlplab("submit", "sweep.yaml", "--set", "lr=1e9", "--set", "optimizer=sgd", "--json").stdout
    )
    mlplab("watch", sweep["id"], "--json", code=4)
    first = json.loads(mlplab("show", sweep["run_ids"][0], "--json").stdout)
    assert first["status"] == "diverged"
    mlplab("retry", sweep["id"])
    mlplab("watch", sweep["id"], "--json", code=4)
    run = json.loads(mlplab("show", sweep["run_ids"][0], "--json").stdout)
    assert run["status"] == "diverged" and [a["status"] for a in run["attempts"]] == ["diverged"]
    assert [e["epoch"] for e in run["epochs"]] == [e["epoch"] for e in first["epochs"]]
    assert run["error"] == first["error"] and run["started_at"] > first["finished_at"]


def test_the_python_client_lists_labels_and_frames_sweeps(server):
    from mlplab import Client

    base = {"dataset": "synthetic", "hidden": [16], "epochs": 2}
    with Client(server.base_url) as client:
        sweep = client.submit_sweep({"name": "framed", "base": base, "grid": {"lr": [0.1, 0.01]}})
        client.wait(sweep["id"], sweep=True)
        client.label_sweep(sweep["id"], tags=["framed-tag"], notes="from python")
        listed = client.sweeps(tag="framed-tag")
        assert [s["id"] for s in listed["data"]] == [sweep["id"]]
        frame = client.sweeps_dataframe(tag="framed-tag")
        assert list(frame["id"]) == [sweep["id"]] and frame["n_succeeded"].tolist() == [2]
        assert frame["tags"].tolist() == ["framed-tag"] and frame["done"].tolist() == [True]
        board = client.compare(runs=sweep["run_ids"])
        assert board["count"] == 2 and board["data"][0]["sweep_id"] == sweep["id"]
        assert client.compare_plot(runs=sweep["run_ids"]).startswith(PNG)
        run = client.label_run(sweep["run_ids"][0], name="first")
        assert run["name"] == "first"
