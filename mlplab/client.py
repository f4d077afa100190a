"""A thin Python client for the mlplab server (httpx); imports neither torch nor fastapi."""

from __future__ import annotations

import os
import time
import tomllib
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx

from mlplab.errors import (
    BadRequest,
    Conflict,
    ConnectionFailed,
    MlplabError,
    NotFound,
    QuotaExceeded,
    ServerError,
    Unauthorized,
    error_for,
)
from mlplab.sse import Event, parse_sse
from mlplab.sweep_client import SweepCalls

__all__ = [
    "BadRequest",
    "Client",
    "Conflict",
    "ConnectionFailed",
    "Event",
    "MlplabError",
    "NotFound",
    "QuotaExceeded",
    "ServerError",
    "Unauthorized",
    "parse_sse",
]

DEFAULT_URL = "http://127.0.0.1:8000"
# What the API's 409 says while the first request with a key is still writing its submission
# (lab/idempotency.py): the retry asks again a little later.
_IN_PROGRESS = "is still in progress"


def config_path() -> Path:
    """Where the client's config file lives (XDG config dir)."""
    base = os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config"
    return Path(base) / "mlplab" / "config.toml"


def _from_config(key: str) -> str | None:
    path = config_path()
    if not path.exists():
        return None
    value = tomllib.loads(path.read_text()).get(key)
    return str(value) if value is not None else None


class Client(SweepCalls):
    """Talks to one mlplab server as one user."""

    def __init__(
        self,
        url: str | None = None,
        token: str | None = None,
        *,
        timeout: float = 30.0,
        submit_tries: int = 4,
        retry_backoff_s: float = 0.5,
    ) -> None:
        self.url = url or os.environ.get("MLPLAB_URL") or _from_config("url") or DEFAULT_URL
        # a submission cut off (a dropped connection, a timeout) is sent again with the same
        # Idempotency-Key up to submit_tries times in all, waiting backoff, 2x, 4x... between
        self.submit_tries, self.retry_backoff_s = max(1, submit_tries), retry_backoff_s
        self.token = token or os.environ.get("MLPLAB_TOKEN") or _from_config("token")
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        self._http = httpx.Client(base_url=self.url.rstrip("/"), headers=headers, timeout=timeout)

    def close(self) -> None:
        """Close the underlying connection pool."""
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- plumbing ---------------------------------------------------------------------------

    def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise ConnectionFailed.reaching(self.url, exc) from exc
        if response.status_code >= 400:
            raise error_for(response)
        return response

    def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        return self._request(method, path, **kwargs).json()

    def _submit(self, path: str, body: dict[str, Any], key: str | None) -> dict[str, Any]:
        """POST a submission with an Idempotency-Key (a fresh uuid4 unless given), sent again
        with the same key while the connection drops or times out: the server answers a
        repeat with the first submission, so a retry never makes a second one."""
        headers = {"Idempotency-Key": key or str(uuid.uuid4())}
        for attempt in range(1, self.submit_tries + 1):
            try:
                return self._json("POST", path, json=body, headers=headers)
            except (ConnectionFailed, Conflict) as exc:
                # a Conflict other than "still in progress" (a key reused for another body)
                # is the caller's; so is the last failure
                if attempt == self.submit_tries or (
                    isinstance(exc, Conflict) and _IN_PROGRESS not in exc.detail
                ):
                    raise
                time.sleep(self.retry_backoff_s * 2 ** (attempt - 1))
        raise AssertionError("unreachable")  # the loop returns or raises

    # -- runs and sweeps --------------------------------------------------------------------

    def submit_run(
        self,
        spec: dict[str, Any] | None = None,
        *,
        idempotency_key: str | None = None,
        **fields: Any,
    ) -> dict[str, Any]:
        """Queue one run; `spec` and keyword fields merge into the RunSpec body. A dropped
        connection is retried safely (idempotency_key: your own, e.g. to rerun a script)."""
        return self._submit("/v1/runs", {**(spec or {}), **fields}, idempotency_key)

    def submit_sweep(
        self, sweep: dict[str, Any], *, idempotency_key: str | None = None
    ) -> dict[str, Any]:
        """Queue a sweep; answers the sweep record with its run ids. A dropped connection is
        retried safely (idempotency_key: your own, e.g. to rerun a script)."""
        return self._submit("/v1/sweeps", sweep, idempotency_key)

    def dry_run(self, sweep: dict[str, Any]) -> dict[str, Any]:
        """How a sweep would train (its fused groups, cost, time estimate); nothing queued."""
        return self._json("POST", "/v1/sweeps", params={"dry_run": "true"}, json=sweep)

    def run(self, run_id: str) -> dict[str, Any]:
        """The run record with its epochs so far."""
        return self._json("GET", f"/v1/runs/{run_id}")

    def runs(self, **filters: Any) -> dict[str, Any]:
        """The caller's runs: filters sweep_id, status, limit, offset."""
        params = {k: v for k, v in filters.items() if v is not None}
        return self._json("GET", "/v1/runs", params=params)

    def sweep(self, sweep_id: str) -> dict[str, Any]:
        """The sweep record: status counts, runs, best so far."""
        return self._json("GET", f"/v1/sweeps/{sweep_id}")

    def best(self, sweep_id: str) -> dict[str, Any]:
        """The sweep's best finished run; Conflict while none has finished."""
        return self._json("GET", f"/v1/sweeps/{sweep_id}/best")

    def leaderboard(self, sweep_id: str) -> list[dict[str, Any]]:
        """The sweep's runs ranked by its metric, best first."""
        body = self._json("GET", f"/v1/sweeps/{sweep_id}/leaderboard")
        return body["data"] if isinstance(body, dict) else body

    def importance(self, sweep_id: str) -> dict[str, float]:
        """Each varied field's importance for the sweep's metric (Optuna's PED-ANOVA over its
        finished runs, summing to 1, most important first); Conflict while too few finished."""
        return dict(self._json("GET", f"/v1/sweeps/{sweep_id}/importance")["importance"])

    def importance_frame(self, sweep_id: str) -> Any:
        """The importances as a pandas DataFrame: columns field, importance; most first."""
        import pandas as pd

        rows = list(self.importance(sweep_id).items())
        return pd.DataFrame(rows, columns=["field", "importance"])

    def cancel(self, run_id: str) -> dict[str, Any]:
        """Cancel a run (queued: never starts; running: stops within a few batches)."""
        return self._json("DELETE", f"/v1/runs/{run_id}")

    def cancel_sweep(self, sweep_id: str) -> dict[str, Any]:
        """Cancel every unfinished run of a sweep."""
        return self._json("DELETE", f"/v1/sweeps/{sweep_id}")

    # -- trained models (mlplab/models.py) ----------------------------------------------------

    def model_info(self, run_id: str) -> dict[str, Any]:
        """The run's model.json: how to rebuild its model, its files' bytes and SHA-256."""
        return self._json("GET", f"/v1/runs/{run_id}/model.json")

    def download_model(
        self, run_id: str, path: str | Path | None = None, *, which: str = "final"
    ) -> Path:
        """Save the run's weights (safetensors; which: final or best) to path, default
        `<run id>-<which>.safetensors`, checked against its model.json's SHA-256."""
        from mlplab.models import download_model

        return download_model(self, run_id, path, which=which)

    def load_model(self, run_id: str, *, which: str = "final") -> Any:
        """The run's model as a torch nn.Sequential taking raw inputs (mlplab[models])."""
        from mlplab.models import load_model

        return load_model(self, run_id, which=which)

    def delete_model(self, run_id: str) -> None:
        """Delete the run's stored model (nothing to delete is fine)."""
        self._request("DELETE", f"/v1/runs/{run_id}/model")

    def plot(self, run_or_sweep_id: str, *, sweep: bool = False) -> bytes:
        """The loss-curve PNG of a run or a sweep."""
        kind = "sweeps" if sweep else "runs"
        return self._request("GET", f"/v1/{kind}/{run_or_sweep_id}/plot.png").content

    # -- live progress ----------------------------------------------------------------------

    def stream(
        self,
        run_id: str,
        *,
        sweep: bool = False,
        last_event_id: str | None = None,
        retries: int = 5,
    ) -> Iterator[Event]:
        """Yield the run's (or sweep's) events to the end, reconnecting with Last-Event-ID."""
        path = f"/v1/{'sweeps' if sweep else 'runs'}/{run_id}/events"
        failures = 0
        while True:
            connected: list[bool] = []
            try:
                for event in self._events_once(path, last_event_id, connected):
                    last_event_id = event.id or last_event_id
                    yield event
                return
            except (httpx.TransportError, ConnectionFailed):
                # a stream that was up and broke is retried afresh; only failures to
                # connect, one after another, run out of retries
                failures = 0 if connected else failures + 1
                if failures > retries:
                    raise
                time.sleep(min(0.2 * 2**failures, 5.0))

    def _events_once(
        self, path: str, last_event_id: str | None, connected: list[bool]
    ) -> Iterator[Event]:
        headers = {"Last-Event-ID": last_event_id} if last_event_id else {}
        timeout = httpx.Timeout(self._http.timeout.connect, read=60.0)
        with self._http.stream("GET", path, headers=headers, timeout=timeout) as response:
            if response.status_code >= 400:
                response.read()
                raise error_for(response)
            connected.append(True)
            yield from parse_sse(response.iter_lines())

    def wait(
        self,
        run_id: str,
        *,
        on_epoch: Callable[[dict[str, Any]], None] | None = None,
        sweep: bool = False,
    ) -> dict[str, Any]:
        """Follow a run (or sweep) to its end, calling on_epoch per epoch; return its record.

        For a sweep each epoch carries its run_id, and the sweep record is returned.
        """
        for event in self.stream(run_id, sweep=sweep):
            if event.event == "epoch" and on_epoch is not None:
                on_epoch(event.data)
        return self.sweep(run_id) if sweep else self.run(run_id)

    def resolve(self, run_or_sweep_id: str) -> tuple[str, dict[str, Any]]:
        """("run", record) or ("sweep", record) for an id of either kind; else NotFound."""
        try:
            return "run", self.run(run_or_sweep_id)
        except NotFound:
            pass
        try:
            return "sweep", self.sweep(run_or_sweep_id)
        except NotFound:
            raise NotFound(f"no run or sweep with id {run_or_sweep_id!r}", 404) from None

    def sweep_runs(self, sweep_id: str, *, page: int = 500) -> list[dict[str, Any]]:
        """Every run record of the sweep (with epochs), in sweep order."""
        runs: list[dict[str, Any]] = []
        while True:
            body = self.runs(sweep_id=sweep_id, limit=page, offset=len(runs))
            runs += body["data"]
            if not body["data"] or len(runs) >= body["count"]:
                return runs

    def sweep_rows(self, sweep_id: str) -> list[dict[str, Any]]:
        """One flat row per run, best first: rank, id, status, metric, varied, spec, result."""
        board = self._json("GET", f"/v1/sweeps/{sweep_id}/leaderboard", params={"by": "run"})
        runs = {run["id"]: run for run in self.sweep_runs(sweep_id)}
        rows = []
        for row in board["data"]:
            run = runs[row["run_id"]]
            rows.append(
                {
                    "rank": row["rank"],
                    "run_id": row["run_id"],
                    "status": row["status"],
                    board["metric"]: row["value"],
                    **row["varied"],
                    **run["spec"],
                    **(run.get("result") or {}),
                    "epochs_done": len(run["epochs"]),
                    "error": run.get("error"),
                }
            )
        return rows

    def to_dataframe(self, sweep_id: str) -> Any:
        """One row per run of the sweep, best first: varied fields, status, metrics (pandas)."""
        import pandas as pd

        return pd.DataFrame(self.sweep_rows(sweep_id))
