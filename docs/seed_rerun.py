"""The rerun section of docs/seed-study.md: examples/seed_study_val.yaml's staged sweep (a val
split, repeats, ranked by best_val_loss), one row per configuration, next to the study's own
criterion (the final training loss) on the same runs, with each stage's verdict.

Written by `python docs/run_seed_study.py --rerun` (see that script)."""

from __future__ import annotations

import statistics
from typing import Any

START, END = "<!-- rerun:start -->", "<!-- rerun:end -->"
SPEC_NAME = "seed_study_val.yaml"


def _mean_std(values: list[float], digits: int = 4) -> str:
    if not values:
        return "–"
    mean = statistics.fmean(values)
    std = f" ± {statistics.stdev(values):.{digits}f}" if len(values) > 1 else ""
    return f"{mean:.{digits}f}{std}"


def _values(runs: list[dict[str, Any]], key: str) -> list[float]:
    return [
        float(r["result"][key])
        for r in runs
        if r["status"] == "succeeded" and (r.get("result") or {}).get(key) is not None
    ]


def _configs(
    stage: dict[str, Any], by_id: dict[str, dict[str, Any]], fields: list[str]
) -> dict[str, list]:
    """The stage's runs by configuration (the values of `fields`), in stage order."""
    out: dict[str, list[dict[str, Any]]] = {}
    for run_id in stage["run_ids"]:
        run = by_id[run_id]
        label = " ".join(f"{f}={run['spec'][f]}" for f in fields)
        out.setdefault(label, []).append(run)
    return out


def stage_rows(
    stage: dict[str, Any], by_id: dict[str, dict[str, Any]], fields: list[str]
) -> list[str]:
    """A markdown table: ★ the stage's winners (best_val_loss), ◆ the study's pick (lowest
    mean final train loss) among the same configurations."""
    configs = _configs(stage, by_id, fields)
    winners = set(stage.get("winners") or [])
    kept = set(stage.get("kept") or [])
    train = {
        k: statistics.fmean(v)
        for k, runs in configs.items()
        if (v := _values(runs, "final_train_loss"))
    }
    keep = max(1, len([k for k, runs in configs.items() if any(r["id"] in winners for r in runs)]))
    study_pick = set(sorted(train, key=train.__getitem__)[:keep])
    lines = [
        "| | configuration | runs | best val loss | final train loss | best epoch | "
        "test accuracy |",
        "|---|---|---|---|---|---|---|",
    ]
    for label, runs in configs.items():
        mark = ("★" if any(r["id"] in winners for r in runs) else "") + (
            "◆" if label in study_pick else ""
        )
        epochs = _values(runs, "best_epoch")
        note = " (kept)" if all(r["id"] in kept for r in runs) else ""
        lines.append(
            f"| {mark} | {label}{note} | {len(runs)} | {_mean_std(_values(runs, 'best_val_loss'))} "
            f"| {_mean_std(_values(runs, 'final_train_loss'))} "
            f"| {statistics.fmean(epochs):.1f} | "
            f"{_mean_std(_values(runs, 'final_test_accuracy'), 3)} |"
            if epochs
            else f"| {mark} | {label}{note} | {len(runs)} | – | – | – | – |"
        )
    return lines


def render(sweep: dict[str, Any], runs: list[dict[str, Any]], wall_s: float) -> str:
    """The whole rerun section, markers included."""
    by_id = {r["id"]: r for r in runs}
    spec = runs[0]["spec"]
    best = sweep.get("best") or {}
    lines = [
        START,
        "",
        f"Dataset **{spec['dataset']}**, hidden {spec['hidden']}, {spec['epochs']} epochs, "
        f"batch size {spec['batch_size']}, val_fraction {spec['val_fraction']}, repeats "
        f"{sweep['repeats']}, metric `{sweep['metric']}`; {len(runs)} runs trained in "
        f"{wall_s:.0f} s wall-clock (sweep `{sweep['id']}`). ★: the stage's winners by "
        "best val loss; ◆: what the study's criterion (lowest final train loss) would keep. "
        "Values are mean ± std over the seeds; test accuracy is reported, never used to choose.",
    ]
    for number, stage in enumerate(sweep["stages"], start=1):
        lines += ["", f"#### Stage {number}: {stage['field']} in {stage['values']}", ""]
        if not stage["run_ids"]:
            lines.append("Not run.")
            continue
        lines += stage_rows(stage, by_id, [s["field"] for s in sweep["stages"][:number]])
        if stage.get("verdict"):
            lines += ["", f"Verdict: {stage['verdict']['summary']}."]
    if best:
        fields = [stage["field"] for stage in sweep["stages"]]
        config = " ".join(f"{f}={best['config']['spec'][f]}" for f in fields)
        lines += ["", f"**Winner: {config}**, mean best val loss {best['value']:.4f}."]
    if sweep.get("verdict"):
        lines += ["", f"Overall verdict: {sweep['verdict']['summary']}."]
    return "\n".join([*lines, "", END])
