"""PNGs of a sweep's parameter importance (bars) and parallel coordinates (one line per
finished run, coloured by the metric, the best drawn thick on top), from lab/importance.py's
data, with matplotlib's Agg canvas. Every string is drawn as plain text (parse_math=False):
category labels are values a user chose."""

from __future__ import annotations

import io
import textwrap
from typing import Any

from matplotlib import colormaps
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import Normalize
from matplotlib.figure import Figure

LABEL_CHARS = 24  # a category label is cut to this many characters
BEST_COLOUR = "#d62728"


def _png(fig: Figure) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return buffer.getvalue()


def _title(fig: Figure, text: str) -> None:
    fig.suptitle(textwrap.fill(text, 80, max_lines=2), parse_math=False)


def importance_png(data: dict[str, Any], *, title: str) -> bytes:
    """Horizontal bars, the most important field on top."""
    fields = list(data["importance"])
    fig = Figure(figsize=(7, 1.2 + 0.5 * len(fields)), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.barh(range(len(fields)), list(data["importance"].values()), color="#1f77b4")
    ax.set_yticks(range(len(fields)), [""] * len(fields))
    for y, field in enumerate(fields):
        ax.text(-0.01, y, field, ha="right", va="center", transform=ax.get_yaxis_transform(),
                parse_math=False)  # fmt: skip
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.set_xlabel(f"importance for {data['metric']} ({data['evaluator']}, "
                  f"{data['finished']} finished runs)", parse_math=False)  # fmt: skip
    _title(fig, title)
    return _png(fig)


def parallel_png(data: dict[str, Any], *, title: str) -> bytes:
    """One vertical axis per field and one for the metric; a line per finished run."""
    axes, lines = data["axes"], data["runs"]
    values = [line["metric"] for line in lines]
    norm = Normalize(min(values), max(values) if max(values) > min(values) else min(values) + 1)
    cmap = colormaps["viridis" if data["mode"] == "max" else "viridis_r"]  # bright is good
    fig = Figure(figsize=(2 + 1.6 * (len(axes) + 1), 5), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    xs = list(range(len(axes) + 1))
    for line in sorted(lines, key=lambda line: line["best"]):  # the best on top
        ys = [line["values"][a["field"]] for a in axes] + [norm(line["metric"])]
        style = {"color": BEST_COLOUR, "linewidth": 3.0, "zorder": 3} if line["best"] else {
            "color": cmap(norm(line["metric"])), "linewidth": 1.2, "alpha": 0.8}  # fmt: skip
        ax.plot(xs, [y if y is not None else float("nan") for y in ys], **style)
    for x, axis in enumerate(axes):
        ax.axvline(x, color="black", linewidth=0.8)
        for y, label in _ticks(axis):
            ax.text(x + 0.03, y, label, fontsize=8, va="center", parse_math=False)
    ax.axvline(len(axes), color="black", linewidth=0.8)
    for y in (0.0, 1.0):
        ax.text(len(axes) + 0.03, y, f"{norm.inverse(y):.4g}", fontsize=8, va="center")
    ax.set_xticks(xs, [""] * len(xs))
    for x, name in enumerate([a["field"] for a in axes] + [data["metric"]]):
        ax.text(x, -0.08, name, ha="center", va="top", parse_math=False)
    ax.set_yticks([])
    ax.set_ylim(-0.05, 1.05)
    ax.set_xlim(-0.2, len(axes) + 0.6)
    _title(fig, f"{title} · best in red")
    return _png(fig)


def _ticks(axis: dict[str, Any]) -> list[tuple[float, str]]:
    """(position 0..1, label): every category, or a numeric axis's ends."""
    if axis["kind"] == "categorical":
        labels = axis["labels"]
        step = max(len(labels) - 1, 1)
        return [(i / step, _cut(label)) for i, label in enumerate(labels)]
    return [(0.0, f"{axis['low']:.4g}"), (1.0, f"{axis['high']:.4g}")]


def _cut(label: str) -> str:
    return label if len(label) <= LABEL_CHARS else label[: LABEL_CHARS - 1] + "…"
