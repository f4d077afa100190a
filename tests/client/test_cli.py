"""The client CLI as a subprocess against a real uvicorn and a real Celery worker."""

import csv
import io
import json

import pytest

from tests.support.cli import RUN_YAML, error_line

pytestmark = pytest.mark.integration

PNG = b"\x89PNG\r\n\x1a\n"


def test_submit_watch_then_show_and_plot_a_run(mlplab, tmp_path):
    done = mlplab("submit", "run.yaml", "--set", "lr=0.01", "--watch")
    run_id = done.stdout.split()[2]
    assert done.stdout.startswith(f"submitted run {run_id}") and "succeeded" in done.stderr
    record = json.loads(mlplab("show", run_id, "--json").stdout)
    assert record["status"] == "succeeded" and record["spec"]["lr"] == 0.01
    assert [e["epoch"] for e in record["epochs"]] == [1, 2, 3]
    assert "train loss" in mlplab("show", run_id).stdout
    mlplab("plot", run_id, "-o", "run.png")
    assert (tmp_path / "run.png").read_bytes().startswith(PNG)


def test_sweep_end_to_end_watch_json_ls_best_export(mlplab, tmp_path):
    sweep = json.loads(mlplab("submit", "sweep.yaml", "--set", "lr=0.01", "--json").stdout)
    assert len(sweep["run_ids"]) == 2 and sweep["spec"]["base"]["lr"] == 0.01
    lines = [
        json.loads(line)
        for line in mlplab("watch", sweep["id"], "--json").stdout.split("\n")
        if line
    ]
    epochs = [line["data"] for line in lines if line["event"] == "epoch"]
    assert len(epochs) == 6 and {e["run_id"] for e in epochs} == set(sweep["run_ids"])
    assert lines[-1]["event"] == "end" and lines[-1]["record"]["counts"] == {"succeeded": 2}
    listed = json.loads(mlplab("ls", "--sweep", sweep["id"], "--json").stdout)
    assert listed["count"] == 2 and "succeeded" in mlplab("ls", "--status", "succeeded").stdout
    best = json.loads(mlplab("best", sweep["id"], "--json").stdout)
    assert best["run_id"] in sweep["run_ids"] and best["metric"] == "final_train_loss"
    rows = list(csv.DictReader(io.StringIO(mlplab("export", sweep["id"]).stdout)))
    assert [r["rank"] for r in rows] == ["1", "2"] and rows[0]["run_id"] == best["run_id"]
    assert {r["activation"] for r in rows} == {"relu", "tanh"} and rows[0]["hidden"] == "[16]"
    mlplab("export", sweep["id"], "--format", "json", "-o", "rows.json")
    assert json.loads((tmp_path / "rows.json").read_text())[0]["run_id"] == best["run_id"]
    shown = mlplab("show", sweep["id"]).stdout
    assert best["run_id"] in shown and "activation" in shown
    mlplab("plot", sweep["id"], "-o", "sweep.png")
    assert (tmp_path / "sweep.png").read_bytes().startswith(PNG)


def test_cancel_a_long_run_and_watch_reports_it(mlplab):
    run_id = mlplab("submit", "run.yaml", "--set", "epochs=400").stdout.split()[2]
    assert run_id in mlplab("cancel", run_id).stdout
    lines = mlplab("watch", run_id, "--json", code=4).stdout.strip().split("\n")
    assert json.loads(lines[-1])["record"]["status"] == "cancelled"
    refused = mlplab("cancel", run_id, code=1)
    assert "nothing to cancel" in error_line(refused, "cancel")


def test_errors_are_one_line_with_distinct_exit_codes(mlplab, tmp_path):
    assert "no run or sweep" in error_line(mlplab("show", "nope", code=1), "show")
    bad = mlplab("submit", "run.yaml", "--set", "lr=-1", code=2)
    assert "lr" in error_line(bad, "submit")
    over = mlplab("submit", "run.yaml", "--set", "epochs=100000", code=1)
    assert "max_epochs" in error_line(over, "submit")
    assert "cannot read" in error_line(mlplab("submit", "missing.yaml", code=2), "submit")
    (tmp_path / "flat.yaml").write_text(RUN_YAML)
    no_grid = mlplab("submit", "flat.yaml", "--sweep", code=2)
    assert "grid" in error_line(no_grid, "submit")
    down = mlplab("ls", "--url", "http://127.0.0.1:9", code=3)
    assert "cannot reach" in error_line(down, "ls") and "mlplab up" in error_line(down, "ls")
    mlplab("ls", "--status", "bogus", code=2)


def test_submit_with_an_idempotency_key_twice_is_one_submission(mlplab):
    """A script that reruns the same `mlplab submit --idempotency-key K` after a crash gets
    the first run back instead of a second one; another key makes a new one."""
    args = ("submit", "run.yaml", "--json", "--idempotency-key")
    first = json.loads(mlplab(*args, "cli-key-1").stdout)
    again = json.loads(mlplab(*args, "cli-key-1").stdout)
    assert again["id"] == first["id"]
    other = json.loads(mlplab(*args, "cli-key-2").stdout)
    assert other["id"] != first["id"]
    changed = mlplab(
        "submit", "run.yaml", "--set", "lr=0.5", "--idempotency-key", "cli-key-1", code=1
    )
    assert "Idempotency-Key" in error_line(changed, "submit")
    sweep = json.loads(
        mlplab("submit", "sweep.yaml", "--json", "--idempotency-key", "cli-s").stdout
    )
    assert (
        json.loads(mlplab("submit", "sweep.yaml", "--json", "--idempotency-key", "cli-s").stdout)[
            "id"
        ]
        == sweep["id"]
    )


def test_submit_dry_run_shows_groups_and_a_measured_estimate(mlplab, server):
    """After the worker trained something, its heartbeat carries its speed and a dry run
    turns the sweep's cost into seconds; nothing is queued."""
    from runstore import Store
    from tests.support.redis_db import connect
    from tests.support.waiting import wait_for

    mlplab("submit", "run.yaml", "--watch")  # the worker measures itself on this group
    store = Store(connect(server.redis_url), prefix=server.prefix)
    wait_for(
        lambda: any((w.get("speed") or {}).get("cpu") for w in store.live_workers()),
        what="a heartbeat with the worker's measured speed",
    )
    before = json.loads(mlplab("ls", "--json").stdout)["count"]
    plan = json.loads(mlplab("submit", "sweep.yaml", "--dry-run", "--json").stdout)
    assert plan["dry_run"] and plan["runs"] == 2 and plan["estimate_s"] > 0
    text = mlplab("submit", "sweep.yaml", "--dry-run").stdout
    assert "2 runs" in text and "fused" in text and "on the fastest worker" in text
    assert json.loads(mlplab("ls", "--json").stdout)["count"] == before
