"""mlpcore.data on the CPU: tiny IDX files in torchvision's layout and the bundled datasets."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import pytest
import torch

from mlpcore import data
from mlpcore.data import TensorData, clear_cache, load_dataset, resolve_data_dir
from mlpcore.errors import DatasetError

RAW_NAMES = {"fashion-mnist": "FashionMNIST", "mnist": "MNIST", "kmnist": "KMNIST"}
FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)


@pytest.fixture(autouse=True)
def _fresh_cache(monkeypatch, tmp_path):
    """Each test starts with no cached datasets and no Debian files."""
    monkeypatch.setattr(data, "DEBIAN_FASHION_MNIST", tmp_path / "no-debian")
    monkeypatch.delenv("MLPLAB_DATA_DIR", raising=False)
    clear_cache()
    yield
    clear_cache()


def idx_bytes(tensor: torch.Tensor) -> bytes:
    """Big-endian IDX encoding of a uint8 tensor: magic (0, 0, 0x08, ndim), dims, data."""
    header = struct.pack(">I", 0x0800 + tensor.dim())
    header += struct.pack(f">{tensor.dim()}I", *tensor.shape)
    return header + tensor.numpy().tobytes()


def make_idx_set(seed: int = 0, n_train: int = 100, n_test: int = 20) -> dict[str, torch.Tensor]:
    """Random 28x28 images and labels, keyed by IDX file name."""
    gen = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (n_train + n_test, 28, 28), dtype=torch.uint8, generator=gen)
    labels = torch.randint(0, 10, (n_train + n_test,), dtype=torch.uint8, generator=gen)
    return dict(
        zip(
            FILES,
            (images[:n_train], labels[:n_train], images[n_train:], labels[n_train:]),
            strict=True,
        )
    )


def write_idx_set(folder: Path, tensors: dict[str, torch.Tensor], gz: bool = False) -> None:
    """Write each tensor as an IDX file (optionally gzipped) into folder."""
    folder.mkdir(parents=True, exist_ok=True)
    for filename, tensor in tensors.items():
        if gz:
            (folder / f"{filename}.gz").write_bytes(gzip.compress(idx_bytes(tensor)))
        else:
            (folder / filename).write_bytes(idx_bytes(tensor))


def assert_matches(ds: TensorData, tensors: dict[str, torch.Tensor]) -> None:
    """The dataset holds exactly the written pixels and labels, flattened."""
    images, labels, test_images, test_labels = tensors.values()
    assert ds.x_train.shape == (100, 784) and ds.x_train.dtype == torch.uint8
    assert ds.x_test.shape == (20, 784) and ds.x_test.dtype == torch.uint8
    assert ds.y_train.dtype == torch.int64 and ds.y_test.dtype == torch.int64
    assert torch.equal(ds.x_train, images.reshape(100, 784))
    assert torch.equal(ds.y_train, labels.long())
    assert torch.equal(ds.x_test, test_images.reshape(20, 784))
    assert torch.equal(ds.y_test, test_labels.long())
    assert ds.divisor == 255.0 and ds.num_classes == 10 and ds.num_features == 784


@pytest.mark.parametrize("name", list(RAW_NAMES))
def test_idx_datasets_load_through_torchvision(tmp_path, name):
    tensors = make_idx_set()
    write_idx_set(tmp_path / RAW_NAMES[name] / "raw", tensors)
    ds = load_dataset(name, data_dir=tmp_path)
    assert_matches(ds, tensors)
    feats = ds.test_features()
    assert feats.dtype == torch.float32 and 0.0 <= feats.min() and feats.max() <= 1.0
    assert torch.equal(feats, tensors["t10k-images-idx3-ubyte"].reshape(20, 784).float() / 255)
    assert ds.test_features() is feats  # cached on the instance


@pytest.mark.parametrize("name", list(RAW_NAMES))
def test_missing_files_raise_one_clear_error(tmp_path, name):
    with pytest.raises(DatasetError) as info:
        load_dataset(name, data_dir=tmp_path)
    message = str(info.value)
    assert str(tmp_path / RAW_NAMES[name] / "raw") in message
    assert all(f in message for f in FILES)
    assert "mnist-5k" in message and "MLPLAB_DATA_DIR" in message and "--data-dir" in message
    assert "download=True" not in message  # the CLI and the server have no such switch
    assert ("apt install dataset-fashion-mnist" in message) == (name == "fashion-mnist")


def test_only_gz_files_are_not_enough_for_torchvision(tmp_path):
    write_idx_set(tmp_path / "MNIST" / "raw", make_idx_set(), gz=True)
    with pytest.raises(DatasetError, match="not found"):
        load_dataset("mnist", data_dir=tmp_path)


def test_corrupt_file_is_reported_as_unreadable(tmp_path):
    raw = tmp_path / "MNIST" / "raw"
    write_idx_set(raw, make_idx_set())
    (raw / "train-images-idx3-ubyte").write_bytes(b"\x00\x00\x08\x01garbage")
    with pytest.raises(DatasetError, match="cannot read"):
        load_dataset("mnist", data_dir=tmp_path)


@pytest.mark.parametrize("gz", [True, False])
def test_debian_fashion_mnist_is_installed_into_data_dir(tmp_path, monkeypatch, gz):
    debian = tmp_path / "debian"
    tensors = make_idx_set(seed=3)
    write_idx_set(debian, tensors, gz=gz)
    monkeypatch.setattr(data, "DEBIAN_FASHION_MNIST", debian)
    root = tmp_path / "data"
    ds = load_dataset("fashion-mnist", data_dir=root)
    assert_matches(ds, tensors)
    raw = root / "FashionMNIST" / "raw"
    assert sorted(p.name for p in raw.iterdir()) == sorted(FILES)  # no temp files left
    assert (raw / FILES[0]).read_bytes() == idx_bytes(tensors[FILES[0]])


def test_debian_files_are_not_used_for_mnist(tmp_path, monkeypatch):
    debian = tmp_path / "debian"
    write_idx_set(debian, make_idx_set(), gz=True)
    monkeypatch.setattr(data, "DEBIAN_FASHION_MNIST", debian)
    with pytest.raises(DatasetError):
        load_dataset("mnist", data_dir=tmp_path / "data")


def test_incomplete_debian_install_still_fails_clearly(tmp_path, monkeypatch):
    debian = tmp_path / "debian"
    tensors = make_idx_set()
    tensors.pop("t10k-labels-idx1-ubyte")
    write_idx_set(debian, tensors, gz=True)
    monkeypatch.setattr(data, "DEBIAN_FASHION_MNIST", debian)
    with pytest.raises(DatasetError, match="mnist-5k"):
        load_dataset("fashion-mnist", data_dir=tmp_path / "data")


def test_mnist_5k():
    ds = load_dataset("mnist-5k")
    assert ds.x_train.shape == (4000, 784) and ds.x_test.shape == (1000, 784)
    assert ds.x_train.dtype == torch.uint8 and ds.y_train.dtype == torch.int64
    assert ds.divisor == 255.0 and ds.num_classes == 10 and int(ds.x_train.max()) == 255
    # Every digit in both splits, and in any small prefix used as a train subset.
    assert torch.bincount(ds.y_train).tolist() == [400] * 10
    assert torch.bincount(ds.y_test).tolist() == [100] * 10
    assert torch.bincount(ds.subset(20).y_train).tolist() == [2] * 10
    # Train and test hold different images.
    assert not (ds.x_train[:, None, :] == ds.x_test[None, :50, :]).all(dim=2).any()


def test_digits():
    ds = load_dataset("digits")
    assert ds.x_train.shape == (1500, 64) and ds.x_test.shape == (297, 64)
    assert ds.x_train.dtype == torch.uint8 and ds.divisor == 16.0
    assert int(ds.x_train.max()) == 16 and set(ds.y_test.tolist()) == set(range(10))
    assert ds.test_features().max() == 1.0


def test_synthetic_is_deterministic_and_float():
    first = load_dataset("synthetic")
    clear_cache()
    second = load_dataset("synthetic")
    assert first is not second
    assert torch.equal(first.x_train, second.x_train) and torch.equal(first.y_test, second.y_test)
    assert first.x_train.shape == (2048, 32) and first.x_train.dtype == torch.float32
    assert first.x_test.shape == (512, 32) and first.divisor == 1.0 and first.num_classes == 4
    assert torch.bincount(first.y_train, minlength=4).min() > 2048 // 8  # no class left empty
    assert torch.equal(first.features(first.x_train), first.x_train)


def test_synthetic_is_learnable():
    ds = load_dataset("synthetic")
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(32, 64), torch.nn.ReLU(), torch.nn.Linear(64, 4))
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(3):
        for i in range(0, 2048, 128):
            x, y = ds.features(ds.x_train[i : i + 128]), ds.y_train[i : i + 128]
            loss = torch.nn.functional.cross_entropy(model(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.7 * 1.386  # well below chance (ln 4)


def test_cache_returns_same_object(tmp_path):
    assert load_dataset("digits") is load_dataset("digits", device="cpu")
    write_idx_set(tmp_path / "KMNIST" / "raw", make_idx_set())
    ds = load_dataset("kmnist", data_dir=tmp_path)
    assert load_dataset("kmnist", data_dir=str(tmp_path)) is ds
    assert load_dataset("kmnist", data_dir=tmp_path, device=torch.device("cpu")) is ds


def test_cache_is_per_data_dir(tmp_path):
    write_idx_set(tmp_path / "a" / "MNIST" / "raw", make_idx_set(seed=1))
    write_idx_set(tmp_path / "b" / "MNIST" / "raw", make_idx_set(seed=2))
    a = load_dataset("mnist", data_dir=tmp_path / "a")
    b = load_dataset("mnist", data_dir=tmp_path / "b")
    assert not torch.equal(a.x_train, b.x_train)


def test_subset():
    ds = load_dataset("digits")
    sub = ds.subset(10)
    assert sub.x_train.shape == (10, 64) and torch.equal(sub.y_train, ds.y_train[:10])
    assert sub.x_test is ds.x_test and sub.name == ds.name
    assert ds.subset(None) is ds and ds.subset(1500) is ds and ds.subset(10_000) is ds
    with pytest.raises(DatasetError):
        ds.subset(0)


def test_unknown_dataset_lists_known_names():
    with pytest.raises(DatasetError) as info:
        load_dataset("cifar10")
    assert "cifar10" in str(info.value)
    assert all(name in str(info.value) for name in ("fashion-mnist", "mnist-5k", "synthetic"))


def test_env_var_data_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("MLPLAB_DATA_DIR", str(tmp_path))
    assert resolve_data_dir() == tmp_path.resolve()
    assert resolve_data_dir(tmp_path / "explicit") == (tmp_path / "explicit").resolve()
    tensors = make_idx_set(seed=5)
    write_idx_set(tmp_path / "MNIST" / "raw", tensors)
    assert_matches(load_dataset("mnist"), tensors)


def test_default_data_dir_is_user_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert resolve_data_dir() == (tmp_path / "xdg" / "mlplab" / "data").resolve()
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert resolve_data_dir() == (tmp_path / "home" / ".cache" / "mlplab" / "data").resolve()
