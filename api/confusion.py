"""A run's test-set confusion matrix as a PNG (matplotlib's Agg canvas, as api/plots.py):
true class down, predicted class across, the count in every cell, each true class's
accuracy beside its name. Every label is drawn as plain text, never as mathtext."""

from __future__ import annotations

import io
import textwrap
from typing import Any

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from api.errors import PlotFailed
from api.plots import PlotCache

CACHE = PlotCache(maxsize=64)  # a finished run's matrix never changes: drawn once
NAME_CHARS = 24  # class names are cut to this many characters on the axes


def confusion_parts(
    result: dict[str, Any], which: str
) -> tuple[list[list[int]], list[float | None]]:
    """The matrix and per-class accuracies of the final or the best epoch ([] when absent)."""
    prefix = "best_" if which == "best" else ""
    matrix = result.get(f"{prefix}confusion") or []
    return matrix, result.get(f"{prefix}per_class_accuracy") or []


def _checked(matrix: Any, names: list[str]) -> list[list[int]]:
    """The matrix if it is C x C ints for C class names; else PlotFailed."""
    n = len(names)
    if n == 0 or len(matrix) != n or any(len(row) != n for row in matrix):
        raise PlotFailed(f"the confusion matrix is not {n} x {n} (one row per class)")
    return [[int(v) for v in row] for row in matrix]


def render_confusion(
    matrix: list[list[int]], names: list[str], *, per_class: list[float | None], title: str
) -> bytes:
    """The PNG of a confusion matrix with class names on both axes and counts in cells."""
    counts = _checked(matrix, names)
    n = len(names)
    side = max(5.0, 0.55 * n + 3.0)
    fig = Figure(figsize=(side + 2.0, side), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    image = ax.imshow(counts, cmap="Blues", vmin=0)
    _cells(ax, counts)
    short = [name if len(name) <= NAME_CHARS else name[: NAME_CHARS - 1] + "…" for name in names]
    rows = [f"{name} ({_percent(per_class, i)})" for i, name in enumerate(short)]
    ax.set_xticks(range(n), labels=short, rotation=45, ha="right")
    ax.set_yticks(range(n), labels=rows)
    for label in [*ax.get_xticklabels(), *ax.get_yticklabels()]:
        label.set_parse_math(False)
    ax.set(xlabel="predicted class", ylabel="true class (its accuracy)")
    fig.colorbar(image, ax=ax, shrink=0.8, label="test samples")
    fig.suptitle(textwrap.fill(title, 80, max_lines=2), parse_math=False)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return buffer.getvalue()


def _percent(per_class: list[float | None], i: int) -> str:
    """A class's accuracy in percent; a dash for a class the test set lacks."""
    value = per_class[i] if i < len(per_class) else None
    return "–" if value is None else f"{100 * value:.1f} %"


def _cells(ax: Any, counts: list[list[int]]) -> None:
    """Each cell's count, white on the dark cells."""
    top = max((v for row in counts for v in row), default=0)
    size = "medium" if len(counts) <= 10 else "x-small"
    for i, row in enumerate(counts):
        for j, value in enumerate(row):
            colour = "white" if top and value > top / 2 else "black"
            ax.text(j, i, str(value), ha="center", va="center", color=colour, fontsize=size)


def cached_confusion(
    key: str,
    matrix: list[list[int]],
    names: list[str],
    *,
    per_class: list[float | None],
    title: str,
) -> bytes:
    """The PNG from the cache (by run id, which and status), else drawn and kept."""
    png = CACHE.get(key)
    if isinstance(png, bytes):
        return png
    png = render_confusion(matrix, names, per_class=per_class, title=title)
    CACHE.put(key, png)
    return png
