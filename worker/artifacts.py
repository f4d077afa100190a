"""A finished run's trained model into the artifact store, before its end is recorded.

For a run that succeeded or stopped early with weights: its final weights (and, with a val
split, its best epoch's) as safetensors, for a succeeded run its final training state (to
continue it to more epochs: POST /v1/sweeps/{id}/extend), and a model.json that says how to
rebuild the module (mlpcore.export's config, the files' bytes and SHA-256), all under this
process's save id; then its bytes are counted for its owner (runstore/artifacts.py),
evicting their oldest models over max_artifact_bytes. The reporter records the run with what
this returns as its `model`, so the record only ever points at files that are all there. A
save that fails loses nothing but the model: the run is recorded as usual, its `model`
saying why.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from typing import Any

from artifacts import CONFIG_FILE, STATE_FILE, WEIGHT_FILES, ArtifactStore, StoredFile
from mlpcore import checkpoint
from mlpcore.status import RunStatus
from mlpcore.train import RunResult
from runstore import Store
from runstore.artifacts import FAILED, STORED
from runstore.replies import decoded
from worker import leases

log = logging.getLogger(__name__)
SAVED = frozenset({RunStatus.succeeded, RunStatus.stopped_early})


def save_id() -> str:
    """This process's save id: the same for a retry of its own save, another for any other
    worker (so a worker whose run was taken over removes only its own files)."""
    return hashlib.sha256(leases.holder().encode()).hexdigest()[:16]


def save_model(
    store: Store, run_id: str, result: RunResult, *, files: ArtifactStore
) -> dict[str, Any] | None:
    """Store the run's model and count it; the record's `model` (None: the run has none).
    Redis errors propagate (the reporter retries; a retry rewrites the same files)."""
    if result.status not in SAVED or result.weights is None:
        return None
    started, save = time.perf_counter(), save_id()
    try:
        written = write_model(files, run_id, save, result)
    except Exception as exc:  # a full disk, a bad mount: the run is recorded all the same
        log.exception("run %s: its model could not be saved", run_id)
        return {"state": FAILED, "reason": f"the model was not saved: {_why(exc)}"}
    size = sum(f.bytes for f in written.values())
    owner = decoded(store.client.hget(store.keys.run(run_id), "owner")) or ""
    accounted = store.models.add(owner=owner, run_id=run_id, size=size, save=save)
    for evicted, _ in accounted.evicted:
        files.remove(evicted)
    seconds = time.perf_counter() - started
    _log_saved(run_id, result, size=size, seconds=seconds, evicted=len(accounted.evicted))
    if accounted.marked is not None and any(r == run_id for r, _ in accounted.evicted):
        return accounted.marked  # over the limit on its own: evicted at once, and says so
    sizes = {which: written[which].bytes for which in WEIGHT_FILES if which in written}
    model = {
        "state": STORED,
        "save": save,
        "files": sizes,
        "bytes": size,
        "save_s": round(seconds, 6),
        "at": time.time(),
    }
    # the epoch its stored training state ended at: a sweep extend continues it from there
    return {**model, "resume_epoch": len(result.epochs)} if "state" in written else model


def write_model(
    files: ArtifactStore, run_id: str, save: str, result: RunResult
) -> dict[str, StoredFile]:
    """The weights as safetensors and the training state, then model.json (written last)."""
    from safetensors.torch import save as safetensors_bytes

    weights = {"final": result.weights, "best": result.best_weights}
    written: dict[str, StoredFile] = {}
    for which, state in weights.items():
        if state is not None:
            data = safetensors_bytes(state, metadata={"run_id": run_id, "which": which})
            written[which] = files.put(run_id, save, WEIGHT_FILES[which], data)
    if result.resume_state is not None:
        stored = checkpoint.to_bytes(result.resume_state())
        written["state"] = files.put(run_id, save, STATE_FILE, stored)
    config = model_json(run_id, result, written)
    written["config"] = files.put(run_id, save, CONFIG_FILE, json.dumps(config, indent=2).encode())
    return written


def model_json(run_id: str, result: RunResult, written: dict[str, StoredFile]) -> dict[str, Any]:
    """What GET /v1/runs/{id}/model.json serves: how to rebuild the model, and its files."""
    return {
        "run_id": run_id,
        "config": result.model_config,
        "best_epoch": (result.result or {}).get("best_epoch"),
        "files": {
            which: {"name": f.name, "bytes": f.bytes, "sha256": f.sha256}
            for which, f in written.items()
        },
        "load": "safetensors.torch.load_file(name), then "
        "mlpcore.export.build_sequential(config, state) (or mlplab's client.load_model)",
    }


def superseded(
    files: ArtifactStore, run_id: str, before: dict[str, Any] | None, now: dict[str, Any] | None
) -> None:
    """Remove the files of the model a continued run had before, once its end recorded a new
    one under another save id (the same id's files were replaced in place)."""
    if before and now and before.get("state") == now.get("state") == STORED:
        if before.get("save") != now.get("save"):
            files.remove(run_id, before["save"])


def discard(
    store: Store, run_id: str, model: dict[str, Any] | None, *, files: ArtifactStore
) -> None:
    """Undo a save whose run's end was refused (another worker holds the run): forget its
    bytes and remove this process's files, never another worker's."""
    if not model or model.get("state") != STORED:
        return
    owner = decoded(store.client.hget(store.keys.run(run_id), "owner")) or ""
    store.models.release(owner=owner, run_id=run_id, save=model["save"])
    files.remove(run_id, model["save"])


def _why(exc: Exception) -> str:
    """The failure in words, without the server's paths (an OSError's message names them)."""
    if isinstance(exc, OSError) and exc.strerror:
        return f"{type(exc).__name__}: {exc.strerror}"
    return f"{type(exc).__name__}: {exc}"


def _log_saved(run_id: str, result: RunResult, *, size: int, seconds: float, evicted: int) -> None:
    """The save's bytes and time, and its share of the run's training time."""
    runtime = float((result.result or {}).get("runtime_s") or 0.0)
    share = f" ({100 * seconds / runtime:.2f} % of its {runtime:.1f} s)" if runtime > 0 else ""
    gone = f"; evicted {evicted} model(s) over max_artifact_bytes" if evicted else ""
    log.info("run %s: model saved, %d bytes in %.4f s%s%s", run_id, size, seconds, share, gone)
