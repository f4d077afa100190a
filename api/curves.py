"""Drawing loss curves (matplotlib's Agg canvas, no pyplot state): one axes with a legend
naming each run for a few curves; for many, one panel per value of the sweep's first varied
field, colour by the second, marker by the third, legends that list values, not runs, so
they fit at any size. Runs whose curves are identical are drawn once with their count.
Every string a user chose is drawn as plain text, never as mathtext."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import AutoLocator, LogFormatter

LEGEND_ROWS = 18  # legend entries per column before another column is added
LABEL_CHARS = 60  # a legend label is cut to this many, so the axes never collapse to nothing
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*", "<", ">")
MAX_PANELS = 12  # more values than this: one panel, coloured by the first field instead


def run_label(run: dict[str, Any], label_fields: list[str]) -> str:
    """`field=value ...` from the run's varied values (else its spec), or its id."""
    varied, spec = run.get("varied") or {}, run.get("spec") or {}
    parts = [f"{f}={_fmt(varied.get(f, spec.get(f)))}" for f in label_fields]
    return " ".join(parts) or run["id"]


def _shorten(label: str) -> str:
    """The label, cut to LABEL_CHARS characters with an ellipsis."""
    return label if len(label) <= LABEL_CHARS else label[: LABEL_CHARS - 1] + "…"


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, list):
        return "x".join(str(v) for v in value)
    return str(value)


def series(run: dict[str, Any], field: str) -> tuple[list[int], list[float]]:
    """Epoch numbers and values; missing or non-finite values become NaN (a gap)."""
    xs, ys = [], []
    for epoch in run.get("epochs") or []:
        value = epoch.get(field)
        xs.append(int(epoch["epoch"]))
        ys.append(float(value) if value is not None and math.isfinite(value) else math.nan)
    return xs, ys


def _colours(n: int) -> list[Any]:
    """Distinct colours: tab10 / tab20 while they last, else an evenly sampled turbo map."""
    from matplotlib import colormaps

    if n <= 10:
        return [colormaps["tab10"](i) for i in range(n)]
    if n <= 20:
        return [colormaps["tab20"](i) for i in range(n)]
    return [colormaps["turbo"](0.05 + 0.9 * i / (n - 1)) for i in range(n)]


def _draw_run(ax: Any, run: dict[str, Any], *, colour: Any, label: str, best: bool) -> None:
    """Train loss solid, test loss dashed, in the run's colour; the best run drawn thicker."""
    width = 3.0 if best else 1.4
    style = {"color": colour, "linewidth": width, "zorder": 3 if best else 2}
    marker = {"marker": "o", "markersize": 4} if best else {}
    xs, ys = series(run, "train_loss")
    ax.plot(xs, ys, linestyle="-", label=label, **style, **marker)
    xs, ys = series(run, "test_loss")
    ax.plot(xs, ys, linestyle="--", alpha=0.75, **style)


class _PlainLogFormatter(LogFormatter):
    """Labels the ticks LogFormatter would, as plain numbers (0.2, not 2e-01)."""

    def __call__(self, x: float, pos: int | None = None) -> str:
        return f"{x:g}" if super().__call__(x, pos) else ""


def _use_log_scale(runs: list[dict[str, Any]]) -> bool:
    """Log y when all losses are positive and span more than a decade."""
    values = [
        y
        for run in runs
        for f in ("train_loss", "test_loss")
        for y in series(run, f)[1]
        if not math.isnan(y)
    ]
    return bool(values) and min(values) > 0 and max(values) / min(values) > 10


def _legend(ax: Any, fig: Figure, n_runs: int) -> None:
    """Runs first, then what solid and dashed mean; outside the axes, in columns."""
    handles, labels = ax.get_legend_handles_labels()
    handles += [
        Line2D([], [], color="grey", linestyle="-"),
        Line2D([], [], color="grey", linestyle="--"),
    ]
    labels += ["train loss", "test loss"]
    ncol = max(1, math.ceil(len(labels) / LEGEND_ROWS))
    size = "small" if n_runs <= 12 else "x-small"
    legend = ax.legend(
        handles,
        labels,
        loc="upper left",
        bbox_to_anchor=(1.01, 1.0),
        ncol=ncol,
        fontsize=size,
        frameon=False,
        borderaxespad=0.0,
    )
    for text in legend.get_texts():
        text.set_parse_math(False)  # labels hold user values: `$...$` is not mathtext here


PER_RUN_LEGEND = 10  # curves a legend names run by run; beyond: panels with value legends


def per_run_figure(
    runs: list[dict[str, Any]], label_fields: list[str], best_run_id: str | None
) -> Figure | None:
    """One axes, a legend entry per distinct curve; None past PER_RUN_LEGEND of them (with
    fields to panel by)."""
    groups = merge_identical(runs, series)
    if len(groups) > PER_RUN_LEGEND and label_fields:
        return None
    ncol = max(1, math.ceil((len(groups) + 2) / LEGEND_ROWS))
    fig = Figure(figsize=(8 + 3.2 * ncol, 5), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    for group, colour in zip(groups, _colours(len(groups)), strict=True):
        best = any(run["id"] == best_run_id for run in group)
        label = _group_label(group, label_fields) + ("  ★ best" if best else "")
        _draw_run(ax, group[0], colour=colour, label=label, best=best)
    _axes_style(ax, [g[0] for g in groups])
    _legend(ax, fig, len(groups))
    return fig


def _group_label(group: list[dict[str, Any]], label_fields: list[str]) -> str:
    """The run's label; for identical runs, the values that differ joined by | and a count."""
    if len(group) == 1:
        return _shorten(run_label(group[0], label_fields))
    parts = []
    for field in label_fields:
        values = list(dict.fromkeys(_fmt(value_in(run, field)) for run in group))
        parts.append(f"{field}={'|'.join(values)}")
    return f"{_shorten(' '.join(parts) or group[0]['id'])} (×{len(group)} identical)"


def panel_figure(runs: list[dict[str, Any]], fields: list[str], best_run_id: str | None) -> Figure:
    panel_field, panels = layout(runs, fields)
    rest = [f for f in fields if f != panel_field]
    colour_field, mark_field = rest[0], (rest[1] if len(rest) > 1 else None)
    colours = colours_for(values_of(runs, colour_field))
    marks: dict[tuple[str, Any], str] = {}
    if mark_field is not None:
        values = values_of(runs, mark_field)
        marks = {(mark_field, v): MARKERS[i % len(MARKERS)] for i, v in enumerate(values)}
    fig = Figure(figsize=figure_size(len(panels)), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    any_merged = False
    for ax, value in zip(panel_axes(fig, len(panels)), panels, strict=True):
        mine = [r for r in runs if panel_field is None or key_of(value_in(r, panel_field)) == value]
        best = merged = False
        for group in merge_identical(mine, series):
            run, mine_best = group[0], any(r["id"] == best_run_id for r in group)
            mark = None  # identical runs differ in the marked field: no one marker is theirs
            if mark_field is not None and len(group) == 1:
                mark = marks.get((mark_field, key_of(value_in(run, mark_field))))
            best, merged = best or mine_best, merged or len(group) > 1
            colour = colours[key_of(value_in(run, colour_field))]
            _draw_panel_run(ax, group, colour=colour, marker=mark, best=mine_best)
        any_merged = any_merged or merged
        head = f"{panel_field}={_fmt(value)}" if panel_field else ""
        ax.set_title(head + ("  ★ best" if best else ""), fontsize="medium", parse_math=False)
        _axes_style(ax, runs)
    value_legend(fig, colour_field, colours, marks, merged=any_merged)
    return fig


def _draw_panel_run(
    ax: Any, group: list[dict[str, Any]], *, colour: Any, marker: str | None, best: bool
) -> None:
    """One curve pair for identical runs, marked every few epochs, counted at its end."""
    xs, ys = series(group[0], "train_loss")
    every = max(1, len(xs) // 6)
    style = {"color": colour, "linewidth": 2.6 if best else 1.2, "zorder": 3 if best else 2}
    ax.plot(xs, ys, marker=marker, markevery=every, markersize=4, **style)
    ax.plot(*series(group[0], "test_loss"), linestyle="--", alpha=0.7, **style)
    if len(group) > 1 and xs:
        ax.annotate(f"×{len(group)}", (xs[-1], ys[-1]), fontsize="x-small", color=colour)


def _axes_style(ax: Any, runs: list[dict[str, Any]]) -> None:
    """Log y for losses spanning a decade, whole epochs on x, a light grid."""
    if _use_log_scale(runs):
        ax.set_yscale("log")
        plain = _PlainLogFormatter(labelOnlyBase=False, minor_thresholds=(1.5, 0.6))
        ax.yaxis.set_major_formatter(plain)
        ax.yaxis.set_minor_formatter(plain)
    ax.set(xlabel="epoch", ylabel="loss")
    whole_epochs = AutoLocator()  # the default x locator, on whole epochs only
    whole_epochs.set_params(integer=True)
    ax.xaxis.set_major_locator(whole_epochs)
    ax.grid(True, alpha=0.3)


def values_of(runs: list[dict[str, Any]], field: str) -> list[Any]:
    """The field's distinct values over the runs, sorted (numbers) or in first-seen order."""
    seen = list(dict.fromkeys(key_of(value_in(run, field)) for run in runs))
    numeric = all(isinstance(v, int | float) and not isinstance(v, bool) for v in seen)
    return sorted(seen) if numeric else seen


def value_in(run: dict[str, Any], field: str) -> Any:
    """The run's value of a field: varied first, else its spec."""
    varied, spec = run.get("varied") or {}, run.get("spec") or {}
    return varied.get(field, spec.get(field))


def key_of(value: Any) -> Any:
    """A hashable form of a field's value (lists become tuples)."""
    return tuple(value) if isinstance(value, list) else value


def merge_identical(
    runs: list[dict[str, Any]], series: Callable[[dict[str, Any], str], tuple[list, list]]
) -> list[list[dict[str, Any]]]:
    """Runs grouped by identical train and test curves, in first-seen order."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for run in runs:
        curves = [series(run, f)[1] for f in ("train_loss", "test_loss")]
        groups.setdefault(repr(curves), []).append(run)
    return list(groups.values())


def layout(runs: list[dict[str, Any]], fields: list[str]) -> tuple[str | None, list[Any]]:
    """The panel field and its values, or (None, [None]) for a single panel."""
    if len(fields) >= 2:
        values = values_of(runs, fields[0])
        if 1 < len(values) <= MAX_PANELS:
            return fields[0], values
    return None, [None]


def colours_for(values: list[Any]) -> dict[Any, Any]:
    """Numbers on a sequential map (their order reads as a gradient), names on tab10."""
    from matplotlib import colormaps

    numeric = all(isinstance(v, int | float) and not isinstance(v, bool) for v in values)
    if numeric and len(values) > 1:
        cmap = colormaps["viridis"]
        return {v: cmap(0.9 * i / (len(values) - 1)) for i, v in enumerate(values)}
    cmap = colormaps["tab10" if len(values) <= 10 else "tab20"]
    return {v: cmap(i % cmap.N) for i, v in enumerate(values)}


def panel_axes(fig: Figure, count: int) -> list[Any]:
    """`count` axes in a grid of at most 4 columns, sharing both axes."""
    cols = min(4, count)
    rows = math.ceil(count / cols)
    grid = fig.subplots(rows, cols, sharex=True, sharey=True, squeeze=False)
    axes = [ax for row in grid for ax in row]
    for ax in axes[count:]:
        ax.set_visible(False)
    return axes[:count]


def figure_size(panels: int) -> tuple[float, float]:
    cols = min(4, panels)
    return 3.6 * cols + 2.6, 3.0 * math.ceil(panels / cols) + 1.0


def value_legend(
    fig: Figure, field: str | None, colours: dict[Any, Any], marks: dict, *, merged: bool
) -> None:
    """What colour, marker and line style mean; one entry per value, beside the panels."""
    handles, labels = [], []
    for value, colour in colours.items():
        handles.append(Line2D([], [], color=colour, linewidth=2))
        labels.append(f"{field}={_fmt(value)}" if field else _fmt(value))
    for (name, value), marker in marks.items():
        handles.append(Line2D([], [], color="grey", marker=marker, linestyle=""))
        labels.append(f"{name}={_fmt(value)}")
    handles += [Line2D([], [], color="grey"), Line2D([], [], color="grey", linestyle="--")]
    labels += ["train loss", "test loss"]
    if merged:
        handles.append(Line2D([], [], color="grey", linestyle=""))
        labels.append("×n: n runs, identical curves")
    legend = fig.legend(handles, labels, loc="outside right upper", fontsize="small")
    for text in legend.get_texts():
        text.set_parse_math(False)
