"""`mlplab watch`: follow a run or a sweep live, one progress bar per run (rich)."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from typing import Any

from mlpcore.status import TERMINAL, RunStatus
from mlplab.client import Client, Conflict, Event

EXIT_NOT_ALL_SUCCEEDED = 4
_STYLE: dict[str, str] = {
    RunStatus.succeeded: "green",
    RunStatus.failed: "red",
    RunStatus.diverged: "red",
    RunStatus.cancelled: "yellow",
    RunStatus.stopped_early: "yellow",
    RunStatus.running: "cyan",
    RunStatus.queued: "dim",
}


@dataclass
class RunState:
    """What the display knows of one run."""

    id: str
    label: str
    total: int
    status: str
    epoch: int = 0
    train_loss: float | None = None
    test_loss: float | None = None
    seconds: list[float] = field(default_factory=list)

    def apply_epoch(self, data: dict[str, Any]) -> None:
        """Take in one epoch event (replays of an old epoch change nothing)."""
        if data["epoch"] <= self.epoch:
            return
        self.epoch, self.train_loss, self.test_loss = (
            data["epoch"],
            data.get("train_loss"),
            data.get("test_loss"),
        )
        if data.get("seconds") is not None:
            self.seconds.append(float(data["seconds"]))

    def eta(self) -> str:
        """Time left from the mean epoch time so far, or the status once it is not running."""
        if self.status != RunStatus.running:
            return self.status
        if not self.seconds:
            return "…"
        left = (self.total - self.epoch) * sum(self.seconds) / len(self.seconds)
        return f"{int(left // 60)}:{int(left % 60):02d} left"


def label_of(run: dict[str, Any], fields: list[str] | None) -> str:
    """`activation=relu lr=0.001` from the varied values, else a short config."""
    spec, varied = run["spec"], run.get("varied") or {}
    if fields:
        return " ".join(f"{f}={varied.get(f, spec.get(f))}" for f in fields)
    return f"{spec['dataset']} {spec['activation']} lr={spec['lr']:g}"


def _loss(value: float | None) -> str:
    return "–" if value is None else f"{value:.4f}"


def _columns(width: int) -> list[Any]:
    """The progress table's columns for a terminal this wide: the configuration (wrapped, never
    cut), progress, losses and status always; the run id, the bar and the test loss only where
    they fit, dropped in that order as the terminal narrows."""
    from rich.progress import BarColumn, TextColumn
    from rich.table import Column

    def text(template: str, **kwargs: Any) -> Any:
        return TextColumn(template, table_column=Column(no_wrap=True, **kwargs))

    label = TextColumn("{task.description}", table_column=Column(ratio=1, overflow="fold"))
    losses = "train {task.fields[train]}" + ("  test {task.fields[test]}" if width >= 64 else "")
    progress, eta = text("{task.completed}/{task.total}"), text("{task.fields[eta]}")
    columns = [label, progress, text(losses), eta]
    if width >= 110:
        columns.insert(1, BarColumn(bar_width=20))
    if width >= 130:
        columns.insert(0, text("{task.fields[run]}", style="dim"))
    return columns


class Display:
    """The rich renderable: a progress table plus, for sweeps, a best-so-far line."""

    def __init__(
        self, runs: list[dict[str, Any]], *, sweep: dict[str, Any] | None, width: int = 160
    ) -> None:
        from rich.progress import Progress

        self.fields = list(sweep.get("varied") or []) if sweep else None
        self.sweep, self.best_line = sweep, ""
        self.states: dict[str, RunState] = {}
        self.tasks: dict[str, Any] = {}
        self.progress = Progress(*_columns(width), auto_refresh=False, expand=True)
        self.add(runs)

    def add(self, runs: list[dict[str, Any]]) -> None:
        """Show these runs (those not shown yet): a staged sweep's next stage joins later."""
        for run in runs:
            if run["id"] in self.states:
                continue
            state = RunState(
                run["id"], label_of(run, self.fields), run["spec"]["epochs"], run["status"]
            )
            self.states[run["id"]] = state
            self.tasks[run["id"]] = self.progress.add_task(
                state.label, total=state.total, run=run["id"], train="–", test="–", eta=state.status
            )
            for epoch in run.get("epochs") or []:
                state.apply_epoch(epoch)
            self._update(run["id"])

    def apply(self, event: Event) -> None:
        """Update the run an event is about (a `stage` event is about none)."""
        if event.event == "stage":
            return
        data = event.data if isinstance(event.data, dict) else {}
        run_id = data.get("run_id") or next(iter(self.states))
        state = self.states.get(run_id)
        if state is None:
            return
        if event.event == "epoch":
            state.apply_epoch(data)
        elif event.event == "status" and data.get("status"):
            state.status = data["status"]
        self._update(run_id)

    def _update(self, run_id: str) -> None:
        state = self.states[run_id]
        style = _STYLE.get(state.status, "")
        self.progress.update(
            self.tasks[run_id],
            completed=state.epoch,
            description=f"[{style}]{state.label}[/]" if style else state.label,
            train=_loss(state.train_loss),
            test=_loss(state.test_loss),
            eta=state.eta(),
        )

    def done(self) -> bool:
        """True when every run is terminal."""
        return all(s.status in TERMINAL for s in self.states.values())

    def summary(self) -> str:
        """`sweep ID: n/N finished · best so far ...` (empty for a single run)."""
        if self.sweep is None:
            return ""
        finished = sum(s.status in TERMINAL for s in self.states.values())
        head = f"sweep {self.sweep['id']}: {finished}/{len(self.states)} finished"
        return head + (f" · {self.best_line}" if self.best_line else "")

    def line(self, event: Event) -> str | None:
        """One plain line for an epoch or status event (for output that is not a terminal)."""
        data = event.data if isinstance(event.data, dict) else {}
        state = self.states.get(data.get("run_id") or next(iter(self.states)))
        if state is None or event.event not in ("epoch", "status"):
            return None
        head = f"{state.id}  {state.label}"
        if event.event == "status":
            return f"{head}  {state.status}"
        losses = f"train {_loss(state.train_loss)}  test {_loss(state.test_loss)}"
        return f"{head}  epoch {state.epoch}/{state.total}  {losses}"

    def __rich__(self) -> Any:
        from rich.console import Group
        from rich.text import Text

        if self.sweep is None:
            return self.progress
        return Group(self.progress, Text(self.summary()))


def best_line(client: Client, sweep_id: str) -> str:
    """`best so far: RUN metric=VALUE (varied)` or empty while nothing has finished."""
    try:
        best = client.best(sweep_id)
    except Conflict:
        return ""
    varied = " ".join(f"{k}={v}" for k, v in best["config"]["varied"].items())
    return f"best so far: {best['run_id']} {best['metric']}={best['value']:.4f} ({varied})"


def watch(client: Client, kind: str, record: dict[str, Any], *, as_json: bool) -> int:
    """Follow a run or sweep to its end; 0 when every run succeeded, else 4."""
    sweep = record if kind == "sweep" else None
    runs = client.sweep_runs(record["id"]) if sweep else [record]
    events = client.stream(record["id"], sweep=sweep is not None)
    if as_json:
        return _watch_json(client, kind, record["id"], events)
    from rich.console import Console

    console = Console(stderr=True)
    display = Display(runs, sweep=sweep, width=console.width)
    if console.is_terminal:
        return _watch_live(client, display, events, console)
    return _watch_plain(client, display, events, console)


def _follow(client: Client, display: Display, event: Event) -> None:
    """Take one event in: a new stage's runs join, and a status may change the best."""
    if event.event == "stage" and display.sweep is not None:
        display.add(client.sweep_runs(display.sweep["id"]))
    display.apply(event)
    if display.sweep is not None and event.event == "status":
        display.best_line = best_line(client, display.sweep["id"])


def _watch_live(client: Client, display: Display, events: Any, console: Any) -> int:
    from rich.live import Live

    with Live(display, console=console, refresh_per_second=4):
        if display.sweep is not None:
            display.best_line = best_line(client, display.sweep["id"])
        for event in events:
            _follow(client, display, event)
    return _exit_code(display)


def _watch_plain(client: Client, display: Display, events: Any, console: Any) -> int:
    """Piped or logged: a plain line per epoch and status change, then the summary."""
    for event in events:
        _follow(client, display, event)
        line = display.line(event)
        if line is not None:
            console.print(line, markup=False, highlight=False, soft_wrap=True)
    if display.summary():
        console.print(display.summary(), markup=False, highlight=False, soft_wrap=True)
    return _exit_code(display)


def _exit_code(display: Display) -> int:
    statuses = [s.status for s in display.states.values()]
    return 0 if all(s == RunStatus.succeeded for s in statuses) else EXIT_NOT_ALL_SUCCEEDED


def _watch_json(client: Client, kind: str, record_id: str, events: Any) -> int:
    """JSON lines: one per event, then the final record."""
    for event in events:
        print(json.dumps({"event": event.event, "id": event.id, "data": event.data}), flush=True)
    if kind == "run":
        final = client.run(record_id)
        ok = final["status"] == RunStatus.succeeded
    else:
        final = client.sweep(record_id)
        ok = set(final["counts"]) <= {RunStatus.succeeded}
    sys.stdout.write(json.dumps({"event": "end", "record": final}) + "\n")
    return 0 if ok else EXIT_NOT_ALL_SUCCEEDED
