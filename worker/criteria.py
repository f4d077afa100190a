"""Which epoch is a run's best: the per-epoch counterpart of its sweep's metric, in the
sweep's mode (a lone run leaves it to mlpcore: val loss with a val split, else train loss)."""

from __future__ import annotations

from typing import Any

from mlpcore.outcome import Criterion
from mlpcore.stopping import EPOCH_METRIC
from runstore import Store


def best_by(store: Store, run_ids: list[str]) -> list[Criterion | None]:
    """Each run's criterion, in the order given (None: mlpcore's default)."""
    runs = {r["id"]: r for r in store.get_runs(run_ids, epochs=False)}
    ids = {r["sweep_id"] for r in runs.values() if r.get("sweep_id")}
    sweeps = {sweep_id: store.get_sweep(sweep_id) for sweep_id in ids}
    return [_criterion(sweeps.get((runs.get(i) or {}).get("sweep_id") or "")) for i in run_ids]


def _criterion(sweep: dict[str, Any] | None) -> Criterion | None:
    if sweep is None or sweep.get("metric") not in EPOCH_METRIC:
        return None
    return EPOCH_METRIC[sweep["metric"]], sweep["mode"]
