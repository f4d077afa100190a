"""The load benchmark's clients (benchmarks/load.py): submitters, SSE streamers, GET pollers.

Each is a thread with its own httpx client; they report into one Tally. check_events is what
"no lost or duplicated events" means for one run's stream.
"""

from __future__ import annotations

import argparse
import json
import threading
import time
from dataclasses import dataclass, field

import httpx

TERMINAL = {"succeeded", "failed", "cancelled", "diverged", "stopped_early"}


def spec_for(index: int) -> dict:
    """A tiny run: 2 or 3 epochs on 256 synthetic samples."""
    return {
        "dataset": "synthetic",
        "hidden": [8],
        "epochs": 2 + index % 2,
        "batch_size": 64,
        "train_subset": 256,
        "seed": index,
    }


@dataclass
class Tally:
    """What every thread reports, under one lock."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    submit_ms: list[float] = field(default_factory=list)
    get_ms: list[float] = field(default_factory=list)
    run_ids: list[str | None] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # lost, duplicated or misordered events
    final: dict[str, str] = field(default_factory=dict)  # run id -> terminal status
    events: int = 0
    streams_done: int = 0
    streams_open: int = 0
    streams_peak: int = 0  # most streams open at once
    stream_span: list[float] = field(default_factory=list)  # first open, last close

    def add(self, name: str, value: object) -> None:
        with self.lock:
            getattr(self, name).append(value)


def followed_runs(runs: int, streams: int) -> list[int]:
    """Indices of the runs to stream, spread over the later half of the submissions: runs
    queue up faster than one worker trains them, so all of these streams are open at once
    when submitting ends, and events arrive on them throughout the rest of the load."""
    count = min(streams, runs)
    first = min(runs // 2, runs - count)
    return [first + i * (runs - first) // count for i in range(count)] if count > 0 else []


def check_events(run_id: str, epochs: int, events: list[tuple[str, str | None, dict]]) -> str:
    """'' when the stream is epochs 1..n once each in order and ends on a terminal status."""
    got = [data.get("epoch") for name, _, data in events if name == "epoch"]
    ids = [eid for name, eid, _ in events if name == "epoch"]
    statuses = [data.get("status") for name, _, data in events if name == "status"]
    if got != list(range(1, epochs + 1)) or ids != [str(e) for e in got]:
        return f"run {run_id}: epoch events {got} (ids {ids}), expected 1..{epochs}"
    if not events or events[-1][0] != "status" or statuses[-1] not in TERMINAL:
        return f"run {run_id}: stream did not end on a terminal status ({statuses})"
    if len(statuses) != len(set(statuses)):
        return f"run {run_id}: duplicated status events {statuses}"
    return ""


def read_sse(response: httpx.Response) -> list[tuple[str, str | None, dict]]:
    """(event, id, data) of every message; comments and keep-alives skipped."""
    out, name, eid, data = [], "message", None, []
    for line in response.iter_lines():
        if not line:
            if data:
                out.append((name, eid, json.loads("\n".join(data))))
            name, eid, data = "message", None, []
        elif not line.startswith(":"):
            key, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            name, eid = (value, eid) if key == "event" else (name, value if key == "id" else eid)
            if key == "data":
                data.append(value)
    return out


class Load:
    """The three kinds of client threads, sharing one Tally and the submitted ids."""

    def __init__(self, base: str, headers: dict[str, str], args: argparse.Namespace) -> None:
        self.base, self.headers, self.args = base, headers, args
        self.tally = Tally()
        self.submitted = [threading.Event() for _ in range(args.runs)]
        self.ids: list[str | None] = [None] * args.runs
        self.next_index = 0
        self.submitting_done = threading.Event()
        self.deadline = time.monotonic() + args.timeout

    def http(self, timeout: float = 30) -> httpx.Client:
        return httpx.Client(base_url=self.base, headers=self.headers, timeout=timeout)

    def _take(self) -> int | None:
        with self.tally.lock:
            index, self.next_index = self.next_index, self.next_index + 1
        return index if index < self.args.runs else None

    def submitter(self) -> None:
        """POST runs until all are taken."""
        with self.http() as http:
            while (index := self._take()) is not None:
                t0 = time.perf_counter()
                try:
                    response = http.post("/v1/runs", json=spec_for(index))
                    self.tally.add("submit_ms", (time.perf_counter() - t0) * 1000)
                    if response.status_code != 202:
                        self.tally.add("errors", f"POST {response.status_code}: {response.text}")
                    else:
                        self.ids[index] = response.json()["id"]
                except httpx.HTTPError as exc:
                    self.tally.add("errors", f"POST {type(exc).__name__}: {exc}")
                self.submitted[index].set()

    def streamer(self, index: int) -> None:
        """Follow run `index` over SSE to its end and check what arrived."""
        self.submitted[index].wait()
        run_id = self.ids[index]
        if run_id is None:
            return
        self.tally.add("stream_span", time.perf_counter())
        self._count_open(+1)
        try:
            events = self._read_stream(run_id)
        finally:
            self._count_open(-1)
        if events is None:
            return
        self.tally.add("stream_span", time.perf_counter())
        with self.tally.lock:
            self.tally.events += len(events)
            self.tally.streams_done += 1
        if problem := check_events(run_id, spec_for(index)["epochs"], events):
            self.tally.add("problems", problem)

    def _read_stream(self, run_id: str) -> list[tuple[str, str | None, dict]] | None:
        """Every message of the run's stream, or None after recording an error."""
        try:
            with (
                self.http(timeout=60) as http,
                http.stream("GET", f"/v1/runs/{run_id}/events") as response,
            ):
                if response.status_code != 200:
                    response.read()
                    self.tally.add("errors", f"SSE {response.status_code}: {response.text}")
                    return None
                return read_sse(response)
        except httpx.HTTPError as exc:
            self.tally.add("errors", f"SSE {run_id} {type(exc).__name__}: {exc}")
            return None

    def _count_open(self, change: int) -> None:
        with self.tally.lock:
            self.tally.streams_open += change
            self.tally.streams_peak = max(self.tally.streams_peak, self.tally.streams_open)

    def poller(self, offset: int) -> None:
        """GET unfinished runs round-robin until every run is terminal or time is up."""
        with self.http() as http:
            position = offset
            while time.monotonic() < self.deadline:
                pending = self._pending()
                if not pending and self.submitting_done.is_set():
                    return
                if not pending:
                    time.sleep(0.05)
                    continue
                index = pending[position % len(pending)]
                position += self.args.pollers
                self._get(http, index)
                time.sleep(self.args.poll_pause)

    def _pending(self) -> list[int]:
        with self.tally.lock:
            return [
                i
                for i, run_id in enumerate(self.ids)
                if run_id is not None and run_id not in self.tally.final
            ]

    def _get(self, http: httpx.Client, index: int) -> None:
        run_id = self.ids[index]
        t0 = time.perf_counter()
        try:
            response = http.get(f"/v1/runs/{run_id}")
        except httpx.HTTPError as exc:
            self.tally.add("errors", f"GET {type(exc).__name__}: {exc}")
            return
        self.tally.add("get_ms", (time.perf_counter() - t0) * 1000)
        if response.status_code != 200:
            self.tally.add("errors", f"GET {response.status_code}: {response.text}")
            return
        record = response.json()
        if record["status"] in TERMINAL:
            epochs = [e["epoch"] for e in record["epochs"]]
            wanted = spec_for(index)["epochs"]
            if record["status"] == "succeeded" and epochs != list(range(1, wanted + 1)):
                self.tally.add("problems", f"run {run_id}: record epochs {epochs}")
            with self.tally.lock:
                self.tally.final[run_id] = record["status"]

    def run(self) -> float:
        """Start every thread, wait for them; the wall time in seconds."""
        t0 = time.perf_counter()
        followed = followed_runs(self.args.runs, self.args.streams)
        submitters = [threading.Thread(target=self.submitter) for _ in range(self.args.clients)]
        others = [threading.Thread(target=self.streamer, args=(i,)) for i in followed]
        others += [
            threading.Thread(target=self.poller, args=(k,)) for k in range(self.args.pollers)
        ]
        for thread in submitters + others:
            thread.start()
        for thread in submitters:
            thread.join()
        self.submitting_done.set()
        for thread in others:
            thread.join(timeout=max(1.0, self.deadline - time.monotonic() + 70))
        return time.perf_counter() - t0
