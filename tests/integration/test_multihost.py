"""Beyond one box (issue 19): workers on other hosts, a host lost or cut off mid-training, on
test hosts made of Linux network namespaces (tests/support/netns.py, tests/support/multihost.py).

A runs Redis (AOF, a password) and the API; B and C run one `mlplab worker` each and reach
Redis only over their own veth link to A. Checkpoints live in one directory all hosts share
(as an NFS mount would), except in the private-directory variant. Leases last 3 heartbeats of
0.5 s. Which of B and C takes a group is Celery's choice, so the faults hit "the holder" (the
host the run record names) and "the other" takes over; scenario 4 then proves the holder takes
new work with the other stopped. Every wait is on an event (an epoch in the stream, a record
field, a log line); the bounds only stop a hang. Each scenario prints the time from its fault
to the runs moving on (pytest -s shows it).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch

from mlpcore.fused import train_group
from mlpcore.spec import RunSpec
from mlplab.client import Client
from tests.support.multihost import Lab
from tests.support.netns import available

pytestmark = [
    pytest.mark.integration,
    pytest.mark.timeout(600),  # a hang bound on a busy box
    pytest.mark.skipif(available() is not None, reason=f"netns fabric: {available()}"),
]

# slow enough to be caught mid-group (a fraction of a second an epoch), small data
GROUP = {"dataset": "synthetic", "hidden": [512, 512], "batch_size": 8, "epochs": 16}
# 16 configurations in 4 fused groups (one per architecture), a few epochs each
SWEEP_BASE = {"dataset": "synthetic", "batch_size": 16, "epochs": 8}
SWEEP_GRID = {
    "hidden": [[256, 256], [320, 320], [384, 384], [448, 448]],
    "lr": [1e-3, 3e-4, 1e-4, 3e-3],
}


def make_lab(tmp_path: Path, **kwargs: Any) -> Iterator[Lab]:
    lab = Lab(tmp_path, **kwargs)
    try:
        lab.start_redis()
        lab.start_api()
        lab.start_workers("b", "c")
        yield lab
    finally:
        lab.close()


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
    """A, B and C up, the checkpoint directory shared by all."""
    yield from make_lab(tmp_path)


@pytest.fixture
def private_lab(tmp_path: Path) -> Iterator[Lab]:
    """The same, but B keeps its checkpoints in a directory of its own (C in the shared one):
    whichever host is lost, the other cannot read its file."""
    yield from make_lab(tmp_path, private_checkpoints=("b",))


def reference(specs: list[dict]) -> list[list[tuple[float, float]]]:
    """Per-epoch (train, test) losses of the same group trained uninterrupted, as workers do."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    torch.set_flush_denormal(True)
    try:
        results = train_group([RunSpec(**s) for s in specs])
    finally:
        torch.set_num_threads(threads)
    return [[(e.train_loss, e.test_loss) for e in r.epochs] for r in results]


def assert_exact(lab: Lab, run_ids: list[str]) -> None:
    """Every run succeeded with each epoch once, in record and stream, and losses bit-identical
    to an uninterrupted run of the same group."""
    runs = lab.runs(run_ids)
    groups: dict[str, list[dict]] = {}
    for run in runs:  # the reference trains each fused group (one architecture) as one
        groups.setdefault(json.dumps(run["spec"]["hidden"]), []).append(run)
    expect = {
        r["id"]: losses
        for group in groups.values()
        for r, losses in zip(group, reference([r["spec"] for r in group]), strict=True)
    }
    for run in runs:
        expected = expect[run["id"]]
        assert run["status"] == "succeeded", run
        epochs = [e["epoch"] for e in run["epochs"]]
        assert epochs == list(range(1, run["spec"]["epochs"] + 1)), epochs
        stream = lab.stream(run["id"])
        assert [int(i.split("-")[0]) for i, f in stream if f["type"] == "epoch"] == epochs
        assert [(e["train_loss"], e["test_loss"]) for e in run["epochs"]] == expected


def statuses(lab: Lab, run_id: str) -> list[dict]:
    """The run's status events, oldest first."""
    return [json.loads(f["data"]) for _, f in lab.stream(run_id) if f["type"] == "status"]


def assert_moved_once(lab: Lab, run_ids: list[str], holder: str, other: str) -> None:
    """Each run's statuses: started by the holder, requeued once, ended by the other."""
    for run_id in run_ids:
        moves = [(s["status"], s.get("worker")) for s in statuses(lab, run_id)]
        assert moves == [
            ("queued", None),
            ("running", lab.worker_name(holder)),
            ("queued", None),
            ("running", lab.worker_name(other)),
            ("succeeded", None),
        ], moves
        assert lab.run(run_id)["worker"] == lab.worker_name(other)


def holder_of(lab: Lab, run_ids: list[str]) -> tuple[str, str]:
    """(the host training the group, the other one), once a run is running."""
    lab.until(lambda: lab.run(run_ids[0])["status"] == "running", "the group to start")
    holder = lab.host_of(lab.run(run_ids[0])["worker"])
    return holder, "c" if holder == "b" else "b"


def taken_over(lab: Lab, run_ids: list[str], host: str) -> bool:
    """True once host holds every run of the group, running."""
    runs = lab.runs(run_ids)
    return all(r["status"] == "running" and r["worker"] == lab.worker_name(host) for r in runs)


def report(scenario: str, **seconds: float) -> None:
    print(f"\n[multihost] {scenario}: " + ", ".join(f"{k} {v:.2f} s" for k, v in seconds.items()))


def submit_group(lab: Lab, lrs: list[float]) -> list[str]:
    return lab.submit_sweep(GROUP, {"lr": lrs})["run_ids"]


def test_1_a_sweep_spreads_over_both_hosts_and_every_run_succeeds_once(lab) -> None:
    sweep = lab.submit_sweep(SWEEP_BASE, SWEEP_GRID)
    run_ids = sweep["run_ids"]
    assert len(run_ids) == 16
    submitted = time.monotonic()
    done = lab.until(
        lambda: all(r["status"] == "succeeded" for r in lab.runs(run_ids)), "all 16 to succeed"
    )
    runs = lab.runs(run_ids)
    assert {r["worker"] for r in runs} == {lab.worker_name("b"), lab.worker_name("c")}
    for run in runs:
        assert run["requeues"] == 0 and run["error"] is None, run
        assert [e["epoch"] for e in run["epochs"]] == list(range(1, 9))
        assert [s["status"] for s in statuses(lab, run["id"])] == [
            "queued",
            "running",
            "succeeded",
        ]
    report("1 sweep over B and C", all_16_done=done - submitted)


def test_2_a_lost_host_s_group_resumes_on_the_other_from_the_shared_checkpoint(lab) -> None:
    run_ids = submit_group(lab, [1e-3, 3e-4])
    holder, other = holder_of(lab, run_ids)
    lab.block_until_epoch(run_ids[0], 3)
    lab.hosts[holder].kill_all()  # the whole box at once: its worker and supervisor
    killed = time.monotonic()
    assert len(lab.run(run_ids[0])["epochs"]) < GROUP["epochs"], "finished too soon"
    moved = lab.until(lambda: taken_over(lab, run_ids, other), "the other host to take the group")
    lab.block_until_epoch(run_ids[0], len(lab.run(run_ids[0])["epochs"]) + 1)
    trains = time.monotonic()
    lab.until(
        lambda: all(r["status"] == "succeeded" for r in lab.runs(run_ids)), "the group to end"
    )
    assert "resuming from epoch" in lab.log_text(f"worker-{other}")
    assert_exact(lab, run_ids)
    assert_moved_once(lab, run_ids, holder, other)
    assert all(r["requeues"] == 1 for r in lab.runs(run_ids))
    assert list(lab.shared.glob("*.pt")) == []
    report("2 host killed, shared dir", taken_over=moved - killed, next_epoch=trains - killed)


def test_3_with_a_private_directory_the_other_host_starts_over_and_says_why(private_lab) -> None:
    lab = private_lab
    run_ids = submit_group(lab, [1e-3, 3e-4])
    holder, other = holder_of(lab, run_ids)
    lab.block_until_epoch(run_ids[0], 3)
    lab.hosts[holder].kill_all()
    killed = time.monotonic()
    recorded = len(lab.run(run_ids[0])["epochs"])
    assert recorded < GROUP["epochs"], "finished too soon"
    moved = lab.until(lambda: taken_over(lab, run_ids, other), "the other host to take the group")
    lab.block_until_epoch(run_ids[0], recorded + 1)
    trains = time.monotonic()
    lab.until(
        lambda: all(r["status"] == "succeeded" for r in lab.runs(run_ids)), "the group to end"
    )
    for run_id in run_ids:
        reasons = [s.get("reason") or "" for s in statuses(lab, run_id)]
        restart = [r for r in reasons if "checkpoint not reachable from this host" in r]
        assert len(restart) == 1, reasons
    assert_exact(lab, run_ids)  # the epochs trained again were not recorded twice
    report("3 host killed, private dir", taken_over=moved - killed, next_new_epoch=trains - killed)


def test_4_a_host_cut_off_is_fenced_and_takes_new_work_once_back(lab) -> None:
    run_ids = submit_group(lab, [1e-3, 3e-4])
    holder, other = holder_of(lab, run_ids)
    lab.block_until_epoch(run_ids[0], 2)
    lab.fabric.link_down(holder)
    cut = time.monotonic()
    moved = lab.until(lambda: taken_over(lab, run_ids, other), "the other host to take the group")
    lab.block_until_epoch(run_ids[0], len(lab.run(run_ids[0])["epochs"]) + 1)
    trains = time.monotonic()
    lab.fabric.link_up(holder)
    back = time.monotonic()
    log = f"worker-{holder}"
    dropped = lab.until(lambda: lab.log_text(log).count("lease lost") >= 1, "the holder to notice")
    lab.until(
        lambda: all(r["status"] == "succeeded" for r in lab.runs(run_ids)), "the group to end"
    )
    assert_exact(lab, run_ids)  # nothing of the cut-off holder's after the takeover
    assert_moved_once(lab, run_ids, holder, other)  # nor a status
    assert list(lab.shared.glob("*.pt")) == []  # nor a file written after the group ended

    # the holder is back in service: with the other stopped, it trains the next run alone
    lab.workers[other].terminate()
    lab.workers[other].wait(timeout=60)
    lab.until(lambda: lab.worker_name(other) not in lab.live_workers(), "the other to be gone")
    fresh = submit_group(lab, [1e-2])
    lab.until(lambda: lab.run(fresh[0])["status"] == "succeeded", "the holder to take new work")
    assert lab.run(fresh[0])["worker"] == lab.worker_name(holder)
    report(
        "4 link cut",
        taken_over=moved - cut,
        next_epoch=trains - cut,
        holder_dropped_after_link_up=dropped - back,
    )


def test_5_redis_restarted_while_both_hosts_train_loses_nothing(lab) -> None:
    grid = {"hidden": [[512, 512], [480, 480]], "lr": [1e-3, 3e-4]}
    run_ids = lab.submit_sweep(GROUP, grid)["run_ids"]
    firsts = [run_ids[0], run_ids[-1]]  # one run of each fused group
    lab.until(
        lambda: (
            {r["worker"] for r in lab.runs(firsts) if r["status"] == "running"}
            == {lab.worker_name("b"), lab.worker_name("c")}
        ),
        "B and C to train one group each",
    )
    for run_id in firsts:
        lab.block_until_epoch(run_id, 2)
    lab.stop_redis()
    stopped = time.monotonic()
    lab.start_redis()  # the AOF (fsync always) brings every record back
    restarted = time.monotonic()
    counts = [len(r["epochs"]) for r in lab.runs(firsts)]
    for run_id, n in zip(firsts, counts, strict=True):
        if n < GROUP["epochs"]:
            lab.block_until_epoch(run_id, n + 1)
    going = time.monotonic()
    lab.until(lambda: all(r["status"] == "succeeded" for r in lab.runs(run_ids)), "all to end")
    assert_exact(lab, run_ids)
    report("5 Redis restart", redis_down=restarted - stopped, both_on_again=going - stopped)


def test_6_the_api_restarted_mid_sweep_loses_nothing_and_sse_reconnects(lab) -> None:
    sweep = lab.submit_sweep(SWEEP_BASE, SWEEP_GRID)
    run_ids, events, ended = sweep["run_ids"], [], threading.Event()

    def follow() -> None:
        with Client(lab.api_url) as client:
            events.extend(client.stream(sweep["id"], sweep=True, retries=100))
        ended.set()

    reader = threading.Thread(target=follow, daemon=True)
    reader.start()
    lab.until(lambda: any(e.event == "epoch" for e in events), "the first epoch on the stream")
    lab.stop_api()
    stopped = time.monotonic()
    seen = len(events)
    lab.start_api()
    up = time.monotonic()
    lab.until(lambda: len(events) > seen or ended.is_set(), "the stream to go on")
    resumed = time.monotonic()
    lab.until(ended.is_set, "the sweep's stream to end")
    runs = lab.runs(run_ids)
    assert all(r["status"] == "succeeded" and r["requeues"] == 0 for r in runs)
    epochs = [(e.data["run_id"], e.data["epoch"]) for e in events if e.event == "epoch"]
    assert sorted(epochs) == sorted((r, n) for r in run_ids for n in range(1, 9))  # each once
    ends = {e.data["run_id"] for e in events if e.event == "status" and _ended(e.data)}
    assert ends == set(run_ids)
    report("6 API restart", api_down=up - stopped, stream_on_again=resumed - stopped)


def _ended(data: dict[str, Any]) -> bool:
    status = data.get("status")
    if isinstance(status, dict):
        status = status.get("status")
    return status == "succeeded"
