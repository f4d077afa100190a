"""A run's trained model and where it fails: GET /v1/runs/{id}/model (safetensors),
/model.json (how to rebuild it), DELETE /model, and /confusion.png.

Owner-only like every run route (OwnedRun: another user's run is a 404). The files come from
the artifact store the workers write to (artifacts/); the API streams bytes and never
imports torch. Weights are served as application/octet-stream: safetensors has no
registered media type, and that one makes every browser and curl -OJ save the file.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Annotated, Any, BinaryIO, Literal

from fastapi import APIRouter, Depends, Query, Response
from fastapi.responses import StreamingResponse

from api import confusion
from api.deps import OwnedRun, SettingsDep, StoreDep
from api.schemas import ModelInfoPublic
from artifacts import CONFIG_FILE, WEIGHT_FILES, ArtifactMissing, ArtifactStore, DirectoryStore
from mlpcore.status import RunStatus
from runstore import NotFound
from runstore.artifacts import STORED

router = APIRouter(prefix="/v1/runs", tags=["models"])
MEDIA_TYPE = "application/octet-stream"
CHUNK = 1 << 20
Which = Annotated[
    Literal["final", "best"],
    Query(description="final: the last epoch's weights; best: the best epoch's (val split)"),
]
_BINARY: dict[int | str, dict[str, Any]] = {
    200: {"content": {MEDIA_TYPE: {}}, "description": "the weights, a safetensors file"}
}
_PNG: dict[int | str, dict[str, Any]] = {200: {"content": {"image/png": {}}}}


async def _files(settings: SettingsDep) -> ArtifactStore:
    return DirectoryStore(settings.artifact_dir)


FilesDep = Annotated[ArtifactStore, Depends(_files)]


def stored_model(run: dict[str, Any]) -> dict[str, Any]:
    """The run's stored model (its record's `model`); else NotFound saying why it has none."""
    model, status = run.get("model") or {}, run["status"]
    if model.get("state") == STORED:
        return model
    if model.get("reason"):
        raise NotFound(f"run {run['id']} has no model: {model['reason']}")
    if status in (RunStatus.queued, RunStatus.running):
        raise NotFound(f"run {run['id']} has no model yet: it is {status} (stored when it ends)")
    if status in (RunStatus.succeeded, RunStatus.stopped_early):
        raise NotFound(f"run {run['id']} has no stored model")
    raise NotFound(
        f"run {run['id']} has no model: it {status} (models are kept for runs that succeed "
        "or stop early)"
    )


def _weights(run: dict[str, Any], which: str) -> dict[str, Any]:
    """The stored model if it has `which` weights; NotFound (which=best without a val split)."""
    model = stored_model(run)
    if which not in (model.get("files") or {}):
        raise NotFound(
            f"run {run['id']} has no {which} model: best weights are kept only for runs "
            "trained with a val split (val_fraction > 0); ask for which=final"
        )
    return model


def _open(files: ArtifactStore, run: dict[str, Any], save: str, name: str) -> BinaryIO:
    try:
        return files.open(run["id"], save, name)
    except ArtifactMissing:
        raise NotFound(f"run {run['id']}'s model files are gone from the artifact store") from None


def _chunks(handle: BinaryIO) -> Iterator[bytes]:
    with handle:
        while chunk := handle.read(CHUNK):
            yield chunk


@router.get("/{run_id}/model", status_code=200, response_class=Response, responses=_BINARY)
def download_model(run: OwnedRun, files: FilesDep, which: Which = "final") -> Response:
    """The run's trained weights as a safetensors file (a download: Content-Disposition);
    404 with the reason when it has none (not finished, failed, evicted, deleted...)."""
    model = _weights(run, which)
    handle = _open(files, run, model["save"], WEIGHT_FILES[which])
    size = handle.seek(0, 2)
    handle.seek(0)
    headers = {
        "Content-Disposition": f'attachment; filename="{run["id"]}-{which}.safetensors"',
        "Content-Length": str(size),
    }
    return StreamingResponse(_chunks(handle), media_type=MEDIA_TYPE, headers=headers)


@router.get("/{run_id}/model.json", response_model=ModelInfoPublic, status_code=200)
def model_info(run: OwnedRun, files: FilesDep) -> dict[str, Any]:
    """How to rebuild the run's model (mlpcore.export's config) and its files' bytes and
    SHA-256; 404 with the reason when it has none."""
    model = stored_model(run)
    with _open(files, run, model["save"], CONFIG_FILE) as handle:
        return json.loads(handle.read())


@router.delete("/{run_id}/model", status_code=204, response_class=Response)
def delete_model(run: OwnedRun, store: StoreDep, files: FilesDep) -> Response:
    """Delete the run's stored model (its record says deleted); 204 again when it has none."""
    if store.models.drop(owner=run["owner"], run_id=run["id"]):
        files.remove(run["id"])
    return Response(status_code=204)


@router.get("/{run_id}/confusion.png", status_code=200, response_class=Response, responses=_PNG)
def confusion_png(run: OwnedRun, which: Which = "final") -> Response:
    """The test-set confusion matrix of the run's final (or best) epoch, with class names and
    each class's accuracy; 404 with the reason when the run has none."""
    result = run.get("result") or {}
    matrix, per_class = confusion.confusion_parts(result, which)
    if not matrix:
        when = "yet" if run["status"] in (RunStatus.queued, RunStatus.running) else "(none kept)"
        raise NotFound(f"run {run['id']} has no {which} confusion matrix {when}")
    names = [str(name) for name in result.get("class_names") or []]
    key = f"{run['id']}:{which}:{run['status']}"
    png = confusion.cached_confusion(
        key, matrix, names, per_class=per_class, title=_title(run, which)
    )
    return Response(png, media_type="image/png", headers={"Cache-Control": "no-cache"})


def _title(run: dict[str, Any], which: str) -> str:
    """`run ID · dataset · final epoch 10 · test accuracy 0.912`."""
    result, spec = run.get("result") or {}, run.get("spec") or {}
    epoch = result.get("best_epoch") if which == "best" else len(run.get("epochs") or [])
    title = f"run {run['id']} · {spec.get('dataset', '')} · {which} epoch {epoch}"
    accuracy = result.get("final_test_accuracy") if which == "final" else None
    return title + (f" · test accuracy {accuracy:.4f}" if accuracy is not None else "")
