"""A run's model and confusion matrix over HTTP (in-process app with auth on, real Redis):
downloads, reasons for a missing model, deletion, isolation and usage. The worker writes
real models in tests/integration/test_models_e2e.py; here the test writes the files."""

import pytest

from artifacts import DirectoryStore
from tests.support.http import bearer
from tests.support.models import SAVE, finish_with_model
from tests.support.redis_db import TEST_PREFIX, prefix_keys

SPEC = {"dataset": "synthetic", "hidden": [8], "epochs": 1}


@pytest.fixture
def files(api_settings):
    return DirectoryStore(api_settings.artifact_dir)


@pytest.fixture
def ann(users):
    return bearer(users.add(name="ann")[1])


@pytest.fixture
def bob(users):
    return bearer(users.add(name="bob")[1])


def new_run(auth_client, headers, **fields):
    response = auth_client.post("/v1/runs", json={**SPEC, **fields}, headers=headers)
    assert response.status_code == 202
    return response.json()["id"]


@pytest.fixture
def done(auth_client, ann, store, files):
    """ann's finished run with a stored model (final and best)."""
    run_id = new_run(auth_client, ann, val_fraction=0.2)
    finish_with_model(store, files, run_id, best=True)
    return run_id


def test_the_weights_download_as_an_attachment_named_after_the_run(auth_client, ann, done):
    for which, byte in (("final", b"f"), ("best", b"b")):
        response = auth_client.get(f"/v1/runs/{done}/model", params={"which": which}, headers=ann)
        assert response.status_code == 200 and response.content == byte * 64
        assert response.headers["content-type"] == "application/octet-stream"
        assert response.headers["content-length"] == "64"
        disposition = f'attachment; filename="{done}-{which}.safetensors"'
        assert response.headers["content-disposition"] == disposition
    default = auth_client.get(f"/v1/runs/{done}/model", headers=ann)
    assert default.content == b"f" * 64


def test_model_json_says_how_to_rebuild_it_and_the_record_where_it_is(auth_client, ann, done):
    info = auth_client.get(f"/v1/runs/{done}/model.json", headers=ann).json()
    assert info["run_id"] == done and info["config"]["widths"] == [32, 8, 4]
    assert set(info["files"]) == {"final", "best"} and info["files"]["final"]["bytes"] == 64
    record = auth_client.get(f"/v1/runs/{done}", headers=ann).json()
    assert record["model"]["state"] == "stored" and record["model"]["files"] == {
        "final": 64,
        "best": 64,
    }


def test_a_bad_which_is_a_422_naming_the_parameter(auth_client, ann, done):
    response = auth_client.get(f"/v1/runs/{done}/model", params={"which": "worst"}, headers=ann)
    assert response.status_code == 422 and "which" in response.json()["detail"]


def test_best_without_a_val_split_is_a_404_saying_so(auth_client, ann, store, files):
    run_id = new_run(auth_client, ann)
    finish_with_model(store, files, run_id, best=False)
    response = auth_client.get(f"/v1/runs/{run_id}/model", params={"which": "best"}, headers=ann)
    assert response.status_code == 404 and "val_fraction" in response.json()["detail"]


@pytest.mark.parametrize(
    ("status", "said"),
    [("failed", "it failed"), ("diverged", "it diverged"), ("cancelled", "it cancelled")],
)
def test_a_run_that_did_not_succeed_has_no_model_and_the_404_says_why(
    auth_client, ann, store, status, said
):
    run_id = new_run(auth_client, ann)
    store.mark_running(run_id=run_id, worker="w", device="cpu")
    store.finish_run(run_id=run_id, status=status, error="boom")
    for path in ("model", "model.json"):
        response = auth_client.get(f"/v1/runs/{run_id}/{path}", headers=ann)
        assert response.status_code == 404 and said in response.json()["detail"], path
    response = auth_client.get(f"/v1/runs/{run_id}/confusion.png", headers=ann)
    assert response.status_code == 404 and "confusion matrix" in response.json()["detail"]


def test_a_queued_run_has_no_model_yet(auth_client, ann):
    run_id = new_run(auth_client, ann)
    response = auth_client.get(f"/v1/runs/{run_id}/model", headers=ann)
    assert response.status_code == 404 and "no model yet: it is queued" in response.json()["detail"]


def test_delete_is_idempotent_and_the_run_says_deleted(auth_client, ann, done, files):
    for _ in range(2):
        assert auth_client.delete(f"/v1/runs/{done}/model", headers=ann).status_code == 204
    assert not (files.root / done).exists()
    record = auth_client.get(f"/v1/runs/{done}", headers=ann).json()
    assert record["model"]["state"] == "deleted" and record["status"] == "succeeded"
    response = auth_client.get(f"/v1/runs/{done}/model", headers=ann)
    assert response.status_code == 404 and "deleted by its owner" in response.json()["detail"]
    usage = auth_client.get("/v1/limits", headers=ann).json()["usage"]
    assert usage["models"] == 0 and usage["artifact_bytes"] == 0


def test_another_users_run_is_a_404_and_their_delete_changes_nothing(
    auth_client, bob, done, redis_client, files
):
    before = prefix_keys(redis_client, TEST_PREFIX)
    for method, path in [
        ("GET", "model"),
        ("GET", "model.json"),
        ("GET", "confusion.png"),
        ("DELETE", "model"),
    ]:
        response = auth_client.request(method, f"/v1/runs/{done}/{path}", headers=bob)
        assert response.status_code == 404 and done in response.json()["detail"], path
    assert prefix_keys(redis_client, TEST_PREFIX) == before
    assert (files.root / done / SAVE / "final.safetensors").exists()


def test_files_gone_from_the_store_are_a_404_not_a_500(auth_client, ann, done, files):
    files.remove(done)
    response = auth_client.get(f"/v1/runs/{done}/model", headers=ann)
    assert (
        response.status_code == 404 and "gone from the artifact store" in response.json()["detail"]
    )


def test_the_confusion_matrix_is_a_png_final_and_best(auth_client, ann, done):
    for which in ("final", "best"):
        response = auth_client.get(
            f"/v1/runs/{done}/confusion.png", params={"which": which}, headers=ann
        )
        if which == "best":  # the test's result holds no best_confusion
            assert response.status_code == 404 and "best confusion" in response.json()["detail"]
            continue
        assert response.status_code == 200 and response.headers["content-type"] == "image/png"
        assert response.content.startswith(b"\x89PNG\r\n\x1a\n")


def test_limits_show_the_artifact_limit_and_usage(auth_client, ann, done, users):
    body = auth_client.get("/v1/limits", headers=ann).json()
    assert body["limits"]["max_artifact_bytes"] == 2**30
    assert body["usage"]["models"] == 1 and body["usage"]["artifact_bytes"] > 128
    users.update("ann", limits={"max_artifact_bytes": 5000})
    body = auth_client.get("/v1/limits", headers=ann).json()
    assert body["limits"]["max_artifact_bytes"] == 5000 and body["overrides"] == {
        "max_artifact_bytes": 5000
    }


def test_a_submission_records_the_owners_artifact_limit_for_the_workers(
    auth_client, ann, redis_client
):
    new_run(auth_client, ann)
    assert redis_client.hget(f"{TEST_PREFIX}:model_limits", "ann") == str(2**30)


def test_the_confusion_png_draws_any_class_name_as_plain_text_and_a_class_without_samples():
    from api.confusion import render_confusion

    names = ["$\\frac{a}{", "x" * 200, "ok", "$$"]
    matrix = [[1, 0, 0, 0], [0, 2, 0, 0], [0, 0, 0, 0], [0, 0, 1, 3]]
    png = render_confusion(matrix, names, per_class=[1.0, 1.0, None, 0.75], title="$x^$")
    assert png.startswith(b"\x89PNG\r\n\x1a\n")


def test_a_malformed_matrix_is_a_plot_failure_not_a_crash():
    from api.confusion import render_confusion
    from api.errors import PlotFailed

    with pytest.raises(PlotFailed, match="2 x 2"):
        render_confusion([[1, 2, 3]], ["a", "b"], per_class=[], title="t")
