"""The directory artifact store: atomic writes, ids and names checked before they are paths."""

import hashlib
import os

import pytest

from artifacts import ArtifactMissing, DirectoryStore, default_artifact_dir

RUN = "0123456789abcdef"


@pytest.fixture
def files(tmp_path):
    return DirectoryStore(tmp_path / "artifacts")


def test_a_file_written_reads_back_with_its_size_and_sha256(files):
    stored = files.put(RUN, "ab12", "final.safetensors", b"weights")
    assert stored.bytes == 7 and stored.sha256 == hashlib.sha256(b"weights").hexdigest()
    with files.open(RUN, "ab12", "final.safetensors") as handle:
        assert handle.read() == b"weights"


def test_a_rewrite_replaces_the_file_whole_and_leaves_no_temporary_file(files):
    files.put(RUN, "ab12", "final.safetensors", b"first version")
    files.put(RUN, "ab12", "final.safetensors", b"second")
    folder = files.root / RUN / "ab12"
    assert os.listdir(folder) == ["final.safetensors"]
    assert (folder / "final.safetensors").read_bytes() == b"second"


def test_a_failed_write_keeps_the_old_file_and_removes_its_temporary_one(files):
    files.put(RUN, "ab12", "model.json", b"{}")

    class Unwritable:  # bytes-like enough for the store to try, failing mid-write
        def __len__(self):
            return 3

    with pytest.raises(TypeError):
        files.put(RUN, "ab12", "model.json", Unwritable())  # type: ignore[arg-type]
    folder = files.root / RUN / "ab12"
    assert os.listdir(folder) == ["model.json"] and (folder / "model.json").read_bytes() == b"{}"


@pytest.mark.parametrize(
    ("run_id", "save", "name"),
    [
        ("../../etc", "ab", "final.safetensors"),
        ("0123456789ABCDEF", "ab", "final.safetensors"),
        (RUN + "/x", "ab", "final.safetensors"),
        (RUN, "..", "final.safetensors"),
        (RUN, "ab/cd", "final.safetensors"),
        (RUN, "ab", "../final.safetensors"),
        (RUN, "ab", ".hidden.json"),
        (RUN, "ab", "final"),
    ],
)
def test_ids_and_names_that_are_not_plain_are_refused_before_any_path(files, run_id, save, name):
    with pytest.raises(ValueError, match="invalid"):
        files.put(run_id, save, name, b"x")
    with pytest.raises(ValueError, match="invalid"):
        files.open(run_id, save, name)
    assert not files.root.exists()


def test_a_missing_file_is_artifact_missing(files):
    with pytest.raises(ArtifactMissing, match=RUN):
        files.open(RUN, "ab12", "final.safetensors")


def test_remove_takes_one_save_or_the_whole_run_and_is_idempotent(files):
    files.put(RUN, "aa", "final.safetensors", b"a")
    files.put(RUN, "bb", "final.safetensors", b"b")
    files.remove(RUN, "aa")
    assert os.listdir(files.root / RUN) == ["bb"]
    files.remove(RUN, "bb")
    assert not (files.root / RUN).exists()
    files.put(RUN, "cc", "final.safetensors", b"c")
    files.remove(RUN)
    files.remove(RUN)
    assert not (files.root / RUN).exists()


def test_the_default_directory_sits_in_the_state_dir_like_the_checkpoints(monkeypatch, tmp_path):
    from worker.settings import default_checkpoint_dir

    monkeypatch.setenv("MLPLAB_STATE_DIR", str(tmp_path))
    assert default_artifact_dir() == tmp_path / "artifacts"
    assert default_artifact_dir().parent == default_checkpoint_dir().parent
