"""Staged sweeps, the study's method, in one place: start the stage record at submission,
show it, stop it, and, once a stage's last run has ended, plan the next stage from its
winners, record it exactly once (runstore.stages) and queue it like any sweep.

Whoever ends a stage's last run moves the sweep on: the worker after each task, the API
after a cancel (a cancelled queued run is seen by no worker), the repair pass after failing
strays. A process killed in between (the stage ended, or the next one was recorded but not
queued) leaves it to the repair pass, which finishes the move for every running staged sweep
(`resume`). Torch-free.
"""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Iterable, Iterator
from typing import Any

from lab import fusion, learned
from lab.configs import Configuration, configuration, configurations, group_runs
from lab.queue import TaskQueue
from lab.verdict import verdict
from mlpcore.spec import RunSpec
from mlpcore.staged import Candidate, next_configs, select_winners, stage_field
from mlpcore.status import RANKED, TERMINAL, RunStatus
from mlpcore.sweep import SweepSpec, repeat_specs, stage_bounds
from runstore import Store, stages, strays
from runstore.stages import Planner, StagePlan

log = logging.getLogger(__name__)

CANCELLED = "the sweep was cancelled; later stages were not created"


def start(
    *, sweep: SweepSpec, record: dict[str, Any], runs: list[dict[str, Any]], store: Store
) -> None:
    """Record the stages of a staged sweep whose first stage's runs were just created (the
    batches of a learned one: lab/learned.py)."""
    if learned.is_learned(sweep.strategy):
        learned.start(sweep=sweep, record=record, runs=runs, store=store)
    if sweep.strategy != "staged":
        return
    stages.start(
        store,
        sweep_id=record["id"],
        owner=record["owner"],
        run_ids=[run["id"] for run in runs],
        stages=[stage_field(stage) for stage in sweep.stages],
        bounds=stage_bounds(sweep),
    )


def stage_specs(sweep: SweepSpec) -> Iterator[tuple[str, RunSpec]]:
    """("stage N (field) value V: ", base + that value) for every value of every stage (a
    learned sweep: both ends of every axis of its space)."""
    if learned.is_learned(sweep.strategy):
        yield from learned.space_specs(sweep)
    if sweep.strategy != "staged":
        return
    for number, stage in enumerate(sweep.stages, start=1):
        field, values = stage_field(stage)
        for value in values:
            where = f"stage {number} ({field}) value {value!r}: "
            yield where, RunSpec(**{**sweep.base, field: value})


def view(*, sweep: dict[str, Any], store: Store, runs: list[dict[str, Any]]) -> dict[str, Any]:
    """stages, end_reason and epochs_saved for the sweep view; `staging` while stages remain."""
    record = stages.get(store, sweep["id"])
    fields: dict[str, Any] = {
        "stages": None,
        "end_reason": None,
        "staging": False,
        "search": None,
        "epochs_saved": epochs_saved(runs),
    }
    if record is not None and learned.is_learned((sweep.get("spec") or {}).get("strategy")):
        fields.update(
            search=learned.view(sweep=sweep, record=record, runs=runs),
            end_reason=record["reason"],
            staging=record["status"] == "running",
        )
    elif record is not None:
        fields.update(
            stages=_with_verdicts(stages.public_stages(record), sweep, runs),
            end_reason=record["reason"],
            staging=record["status"] == "running",
        )
    return fields


def _with_verdicts(
    public: list[dict[str, Any]], sweep: dict[str, Any], runs: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Each stage with the verdict on its own best configuration against its runner-up."""
    by_id = {run["id"]: run for run in runs}
    for stage in public:
        mine = [by_id[r] for r in stage["run_ids"] if r in by_id]
        configs = configurations(mine, metric=sweep["metric"], mode=sweep["mode"])
        stage["verdict"] = verdict(configs, metric=sweep["metric"])
    return public


def epochs_saved(runs: list[dict[str, Any]]) -> int:
    """Epochs the early-stopped runs did not train: their spec's epochs minus those done."""
    return sum(
        run["spec"]["epochs"] - run.get("last_epoch", 0)
        for run in runs
        if run["status"] == RunStatus.stopped_early
    )


def cancel(*, sweep: dict[str, Any], store: Store) -> bool:
    """Create no further stage of the sweep; True if stages were still to come."""
    return stages.stop(store, sweep["id"], status="cancelled", reason=CANCELLED)


def plan_stage(
    sweep: dict[str, Any], record: dict[str, Any], runs: list[dict[str, Any]], *, max_models: int
) -> StagePlan:
    """The winners of the ended stage and, unless it was the last, the next stage's runs.

    The stage's runs are cut into configurations (their repeats); a configuration competes
    with the mean of its succeeded runs and is carried as its best run."""
    spec = SweepSpec(**sweep["spec"])
    index = record["current"]
    stage = record["stages"][index]
    parents = dict(zip(stage["run_ids"], stage["parents"], strict=True))
    previous = set(record["stages"][index - 1]["winners"]) if index else set()
    configs = [
        configuration(g, metric=sweep["metric"], mode=sweep["mode"]) for g in group_runs(runs)
    ]
    candidates = [_candidate(c, parents, previous) for c in configs]
    winners = select_winners(
        candidates, keep_top=spec.keep_top or 1, carry=spec.carry, mode=sweep["mode"]
    )
    if index + 1 == len(spec.stages):
        return StagePlan(winners)
    if not winners:
        reason = (
            f"stage {index + 1} ({stage['field']}) ended with no finished run; "
            "later stages were not created"
        )
        return StagePlan([], reason=reason)
    carried = {c.best_run["id"]: c for c in configs}
    return _next_stage(spec, index + 1, winners, carried, max_models)


def _candidate(config: Configuration, parents: dict[str, Any], previous: set[str]) -> Candidate:
    """The configuration as a candidate: its best run, the mean of its succeeded runs (an
    early-stopped run never wins), and its parent: the previous stage's winner it was built
    from (a kept configuration's runs are their own parents: the winner among them)."""
    mine = [parents.get(run["id"]) for run in config.runs]
    parent = next((p for p in mine if p in previous), mine[0])
    value = config.mean if config.tier == RANKED.index(RunStatus.succeeded) else None
    return Candidate(config.best_run["id"], value, parent)


def _config_spec(run: dict[str, Any]) -> RunSpec:
    """The configuration's spec, from one of its runs: the seed its repeat 0 has."""
    spec = RunSpec(**run["spec"])
    return spec.model_copy(update={"seed": spec.seed - int(run.get("repeat") or 0)})


def _next_stage(
    spec: SweepSpec,
    index: int,
    winners: list[str],
    carried: dict[str, Configuration],
    max_models: int,
) -> StagePlan:
    """Every winner combined with every value of stage `index`, each `repeats` times, cut
    into fused groups; a combination that is the winner itself (the value it already has)
    keeps the winner's runs."""
    field, values = stage_field(spec.stages[index])
    # each winner's values of the stages so far, from its spec: a winner kept from an earlier
    # stage has only that stage's fields in its own `varied`
    earlier = list(dict.fromkeys(stage_field(stage)[0] for stage in spec.stages[:index]))
    specs = [_config_spec(carried[w].best_run) for w in winners]
    dumped = [s.model_dump(mode="json") for s in specs]
    configs = next_configs([({f: d[f] for f in earlier}, d) for d in dumped], field=field,
                           values=values)  # fmt: skip
    kept: dict[str, None] = {}
    new = []
    for varied, run_spec, parent in configs:
        if run_spec == specs[parent]:
            kept.update(dict.fromkeys(carried[winners[parent]].run_ids))
            continue
        for repeat, seeded in enumerate(repeat_specs(run_spec, spec.repeats)):
            new.append((varied, seeded, parent, repeat))
    planned = fusion.plan([c[1] for c in new], fuse=spec.fuse, max_models=max_models)
    return StagePlan(
        winners,
        configs=[(varied, s.model_dump(mode="json")) for varied, s, _, _ in new],
        parents=[winners[parent] for _, _, parent, _ in new],
        groups=planned.groups,
        chunks=planned.chunks,
        kept=list(kept),
        repeats=[repeat for *_, repeat in new],
    )


def advance_sweep(
    sweep_id: str, *, store: Store, queue: TaskQueue, max_models: int, torch_ok: bool = False
) -> int:
    """Move the sweep on as far as its ended stages allow, queuing each new stage; the moves
    made (0: no stage had ended, or another process moved it first). `torch_ok`: this
    process may import torch (a worker), so a GP may ask here; else a worker is sent the
    move (lab/learned.py)."""
    try:
        return _advance(sweep_id, store=store, queue=queue, planner=_planner(
            sweep_id, store=store, max_models=max_models, torch_ok=torch_ok))  # fmt: skip
    except learned.NeedsWorker as exc:
        log.info("sweep %s: %s; sent to a worker", sweep_id, exc)
        queue.send_advance(sweep_id)
        return 0


def _planner(sweep_id: str, *, store: Store, max_models: int, torch_ok: bool) -> Planner:
    """The stage planner, or a learned sweep's batch planner."""
    if learned.is_learned(_strategy(store, sweep_id)):
        return functools.partial(
            learned.plan_batch, store=store, max_models=max_models, torch_ok=torch_ok
        )
    return functools.partial(plan_stage, max_models=max_models)


def _advance(sweep_id: str, *, store: Store, queue: TaskQueue, planner: Planner) -> int:
    """advance_sweep's moves with the planner chosen."""
    moves = 0
    while (moved := stages.advance(store, sweep_id, planner)) is not None:
        moves += 1
        ids = [run["id"] for run in moved.runs]
        log.info(
            "sweep %s: winners %s; %d new run(s), %d kept",
            sweep_id, moved.plan.winners, len(ids), len(moved.plan.kept),
        )  # fmt: skip
        if ids:  # else a stage of kept runs only has ended already: look again
            groups = [[ids[i] for i in chunk] for chunk in moved.plan.chunks]
            queue_groups(groups, sweep_id=sweep_id, store=store, queue=queue)
            return moves
    return moves


def queue_groups(groups: list[list[str]], *, sweep_id: str, store: Store, queue: TaskQueue) -> int:
    """Queue each group of a stage that nobody queued yet and send its token; the groups
    queued. Never raises, and never fails the runs (nobody was answered with an error for
    them): what could not be queued stays for the repair pass (`resume`), a lost token for
    its spare one."""
    sent = 0
    try:
        for group in groups:
            if strays.queue_unqueued(store, run_ids=group):  # one step: queued once
                queue.send_token()
                sent += 1
    except Exception:
        log.exception("sweep %s: a stage could not be queued; the repair pass will", sweep_id)
    return sent


def resume(sweep_id: str, *, store: Store, queue: TaskQueue, max_models: int) -> str | None:
    """Finish a stage change a vanished process cut off: move on a sweep whose stage ended
    unnoticed, queue a later stage's runs recorded but never queued. What it did, in words,
    or None; exactly once however many processes try (both steps are atomic)."""
    record = stages.get(store, sweep_id)
    if record is None or record["status"] != "running":
        return None
    number, stage = record["current"] + 1, record["stages"][record["current"]]
    runs = store.get_runs(stage["run_ids"], epochs=False)
    if all(run["status"] in TERMINAL for run in runs):
        if not advance_sweep(sweep_id, store=store, queue=queue, max_models=max_models):
            return None  # another process moved it first
        return f"stage {number} had ended and was not moved on (cut off, or just now): moved on"
    if number == 1:  # the submission's own runs: the strays settle those
        return None
    kept = set(stage.get("kept", []))
    groups: dict[str, list[str]] = {}  # as planned: the runs of a fused group together
    for run in runs:
        if run["id"] not in kept and run["status"] == RunStatus.queued:
            groups.setdefault(run["fused_group"] or run["id"], []).append(run["id"])
    sent = queue_groups(list(groups.values()), sweep_id=sweep_id, store=store, queue=queue)
    return f"queued {sent} group(s) of stage {number}, recorded but never queued" if sent else None


def advance_sweeps(
    runs: Iterable[dict[str, Any]],
    *,
    store: Store,
    queue: TaskQueue,
    max_models: int,
    torch_ok: bool = False,
) -> None:
    """Advance each staged sweep these runs belong to, once they ended (a no-op for runs still
    going and for other sweeps); never raises: the caller's own work is done already."""
    ended = (r for r in runs if r.get("sweep_id") and r["status"] in TERMINAL)
    for sweep_id in dict.fromkeys(r["sweep_id"] for r in ended):
        try:
            if _staged(store, sweep_id):
                advance_sweep(
                    sweep_id, store=store, queue=queue, max_models=max_models, torch_ok=torch_ok
                )
        except Exception:
            log.exception("sweep %s: could not advance its stages", sweep_id)


def _staged(store: Store, sweep_id: str) -> bool:
    """Whether the sweep is staged; so the runs of grid and random sweeps cost no stage
    record reads, only one read of their sweep's strategy per process."""
    try:
        strategy = _strategy(store, sweep_id)
        return strategy == "staged" or learned.is_learned(strategy)
    except LookupError:  # not remembered: a sweep is written before any of its runs
        return False


@functools.lru_cache(maxsize=4096)
def _strategy(store: Store, sweep_id: str) -> str:
    """The sweep's strategy, read once per process: it never changes."""
    spec = store.client.hget(store.keys.sweep(sweep_id), "spec")
    if spec is None:
        raise LookupError(f"sweep {sweep_id} not found")
    return str(json.loads(spec).get("strategy"))
