"""mlpcore.catalog, the torch-free description of the datasets, agrees with what mlpcore.data
loads and what a model holds; it says which datasets load here from the files alone."""

from __future__ import annotations

import gzip

import pytest

from mlpcore import catalog, data
from mlpcore.model import StackedMLP
from mlpcore.spec import DATASETS


@pytest.mark.parametrize("name", ["mnist-5k", "digits", "synthetic"])
def test_the_shapes_are_those_of_the_loaded_datasets(name):
    loaded = data.load_dataset(name)
    assert catalog.SHAPES[name] == (loaded.num_features, loaded.num_classes)
    assert catalog.TRAIN_SIZES[name] == len(loaded.y_train)
    assert len(catalog.CLASS_NAMES[name]) == loaded.num_classes
    split = loaded.subset(1000).split_val(0.1)
    assert catalog.train_samples(dataset=name, train_subset=1000, val_fraction=0.1) == len(
        split.y_train
    )


def test_the_idx_datasets_are_described_as_torchvision_reads_them():
    assert set(catalog.SHAPES) == set(DATASETS) == set(catalog.TRAIN_SIZES)
    assert set(catalog.CLASS_NAMES) == set(DATASETS)
    for name, cls in data._TORCHVISION.items():
        assert catalog.IDX_FOLDERS[name] == cls.__name__
        assert catalog.IDX_FILES == data._raw_files(cls)
        assert catalog.SHAPES[name] == (784, len(cls.classes))
        assert len(catalog.CLASS_NAMES[name]) == len(cls.classes)
    assert catalog.CLASS_NAMES["fashion-mnist"] == tuple(data._TORCHVISION["fashion-mnist"].classes)


@pytest.mark.parametrize("hidden", [[], [16], [512, 256, 128]])
def test_the_parameter_count_is_what_a_model_holds(hidden):
    widths = [*catalog.SHAPES["digits"][:1], *hidden, catalog.SHAPES["digits"][1]]
    model = StackedMLP(widths, ["relu"])
    held = sum(p.numel() for p in model.parameters())
    assert catalog.parameter_count(dataset="digits", hidden=hidden) == held
    assert catalog.param_epochs(dataset="digits", hidden=hidden, epochs=7) == 7 * held


def test_available_datasets_look_at_files_only(tmp_path, monkeypatch):
    bundled = ["mnist-5k", "digits", "synthetic"]
    no_debian = tmp_path / "no-debian"
    assert catalog.available_datasets(tmp_path / "data", debian=no_debian) == bundled
    raw = tmp_path / "data" / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for name in catalog.IDX_FILES[:3]:
        (raw / name).write_bytes(b"")
    assert catalog.available_datasets(tmp_path / "data", debian=no_debian) == bundled  # 3 of 4
    (raw / catalog.IDX_FILES[3]).write_bytes(b"")
    assert catalog.available_datasets(tmp_path / "data", debian=no_debian) == ["mnist", *bundled]
    debian = tmp_path / "debian"
    debian.mkdir()
    for name in catalog.IDX_FILES:
        (debian / f"{name}.gz").write_bytes(gzip.compress(b""))
    found = catalog.available_datasets(tmp_path / "data", debian=debian)
    assert found == ["fashion-mnist", "mnist", *bundled]
    monkeypatch.setenv("MLPLAB_DATA_DIR", str(tmp_path / "data"))  # the same default as data.py
    assert catalog.available_datasets(debian=no_debian) == ["mnist", *bundled]
    assert data.resolve_data_dir() == catalog.resolve_data_dir() == (tmp_path / "data").resolve()
