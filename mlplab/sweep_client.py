"""The client's sweep list, labels, retry, extend and compare calls (a mixin of Client)."""

from __future__ import annotations

from typing import Any


class SweepCalls:
    """Calls on sweeps as objects; Client supplies `_json` and `_request`."""

    def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        raise NotImplementedError  # Client's

    def _request(self, method: str, path: str, **kwargs: Any) -> Any:
        raise NotImplementedError  # Client's

    def sweeps(self, **filters: Any) -> dict[str, Any]:
        """The caller's sweeps, newest first: filters status (active, done), name (a part of
        it), tag, owner (admins), limit, offset; {data, count}."""
        params = {k: v for k, v in filters.items() if v is not None}
        return self._json("GET", "/v1/sweeps", params=params)

    def sweeps_dataframe(self, **filters: Any) -> Any:
        """The caller's sweeps as a pandas DataFrame, one row each: id, name, tags, strategy,
        metric, runs, done, best value and run, status counts."""
        import pandas as pd

        return pd.DataFrame([sweep_row(s) for s in self.sweeps(**filters)["data"]])

    def label_sweep(self, sweep_id: str, **labels: Any) -> dict[str, Any]:
        """Set a sweep's name, tags (a list) or notes; None clears one."""
        return self._json("PATCH", f"/v1/sweeps/{sweep_id}", json=labels)

    def label_run(self, run_id: str, **labels: Any) -> dict[str, Any]:
        """Set a run's name, tags (a list) or notes; None clears one."""
        return self._json("PATCH", f"/v1/runs/{run_id}", json=labels)

    def retry(self, sweep_id: str) -> dict[str, Any]:
        """Queue the sweep's failed, cancelled and diverged runs again (new attempts)."""
        return self._json("POST", f"/v1/sweeps/{sweep_id}/retry")

    def extend(self, sweep_id: str, *, n: int | None = None, epochs: int | None = None) -> Any:
        """Add n more samples to a random sweep (or, where the server can, more epochs)."""
        body = {k: v for k, v in {"n": n, "epochs": epochs}.items() if v is not None}
        return self._json("POST", f"/v1/sweeps/{sweep_id}/extend", json=body)

    def compare(
        self, *, sweeps: list[str] | None = None, runs: list[str] | None = None, **params: Any
    ) -> dict[str, Any]:
        """One leaderboard across sweeps (their common metric) or runs (metric=...)."""
        return self._json("GET", "/v1/compare", params=_compare_params(sweeps, runs, params))

    def compare_plot(
        self, *, sweeps: list[str] | None = None, runs: list[str] | None = None, **params: Any
    ) -> bytes:
        """compare.png: the best run of each sweep (or each run) overlaid."""
        query = _compare_params(sweeps, runs, params)
        return bytes(self._request("GET", "/v1/compare.png", params=query).content)


def _compare_params(
    sweeps: list[str] | None, runs: list[str] | None, params: dict[str, Any]
) -> dict[str, Any]:
    """The compare query: comma-joined ids and the other parameters that are set."""
    query = {k: v for k, v in params.items() if v is not None}
    if sweeps is not None:
        query["sweeps"] = ",".join(sweeps)
    if runs is not None:
        query["runs"] = ",".join(runs)
    return query


def sweep_row(sweep: dict[str, Any]) -> dict[str, Any]:
    """One flat row of a sweep summary (for a DataFrame or CSV)."""
    best = sweep.get("best") or {}
    return {
        "id": sweep["id"],
        "name": sweep.get("name"),
        "tags": ",".join(sweep.get("tags") or []),
        "strategy": sweep["strategy"],
        "metric": sweep["metric"],
        "runs": sweep["n_runs"],
        "done": sweep["done"],
        "best_value": best.get("value"),
        "best_run": best.get("run_id"),
        **{f"n_{status}": n for status, n in sweep["counts"].items()},
        "created_at": sweep["created_at"],
    }
