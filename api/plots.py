"""Loss-curve PNGs with matplotlib's Agg canvas (no pyplot state, so safe across threads).

`render_loss_curves` draws; `PlotCache` keeps recent PNGs keyed by what the picture shows
(ids, statuses, epoch counts, best run), so a page polling a plot re-renders only on change.
A picture that could not be drawn is kept too, as its failure, so retries do not redraw it.
Every string a user chose (names, labels, titles) is drawn as plain text, never as mathtext.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import math
import textwrap
import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import AutoLocator, LogFormatter

from api.errors import PlotFailed

LEGEND_ROWS = 18  # legend entries per column before another column is added
# User strings are long at will (a name may be 200 characters): a title wraps onto lines of
# this many, a legend label is cut to this many, so the axes never collapse to nothing.
TITLE_CHARS, LABEL_CHARS = 80, 60
log = logging.getLogger(__name__)


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


def _series(run: dict[str, Any], field: str) -> tuple[list[int], list[float]]:
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
    xs, ys = _series(run, "train_loss")
    ax.plot(xs, ys, linestyle="-", label=label, **style, **marker)
    xs, ys = _series(run, "test_loss")
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
        for y in _series(run, f)[1]
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


def render_loss_curves(
    runs: list[dict[str, Any]], *, title: str, label_fields: list[str], best_run_id: str | None
) -> bytes:
    """A PNG of every run's train (solid) and test (dashed) loss per epoch."""
    ncol = max(1, math.ceil((len(runs) + 2) / LEGEND_ROWS))
    fig = Figure(figsize=(8 + 3.2 * ncol, 5), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    for run, colour in zip(runs, _colours(len(runs)), strict=True):
        best = run["id"] == best_run_id
        label = _shorten(run_label(run, label_fields)) + ("  ★ best" if best else "")
        _draw_run(ax, run, colour=colour, label=label, best=best)
    if _use_log_scale(runs):
        ax.set_yscale("log")
        plain = _PlainLogFormatter(labelOnlyBase=False, minor_thresholds=(1.5, 0.6))
        ax.yaxis.set_major_formatter(plain)
        ax.yaxis.set_minor_formatter(plain)
    # a sweep's name is in the title: `$\foo$` parsed as mathtext was a 500 (or a
    # RecursionError for deep nesting); parse_math=False draws it character for character
    # over the whole figure, not the axes: a long title has the legend's width too
    fig.suptitle(textwrap.fill(title, TITLE_CHARS, max_lines=3), parse_math=False)
    ax.set(xlabel="epoch", ylabel="loss")
    whole_epochs = AutoLocator()  # the default x locator, on whole epochs only
    whole_epochs.set_params(integer=True)
    ax.xaxis.set_major_locator(whole_epochs)
    ax.grid(True, alpha=0.3)
    _legend(ax, fig, len(runs))
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return buffer.getvalue()


def plot_key(
    runs: list[dict[str, Any]], *, title: str, label_fields: list[str], best_run_id: str | None
) -> str:
    """A digest of everything the picture shows, without reading the epochs themselves."""
    state = [(r["id"], r["status"], _epoch_count(r)) for r in runs]
    text = json.dumps([title, label_fields, best_run_id, state], default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def _epoch_count(run: dict[str, Any]) -> int:
    """Epochs reported so far (records read without epochs still carry last_epoch)."""
    return max(len(run.get("epochs") or []), int(run.get("last_epoch") or 0))


class PlotCache:
    """A bounded, thread-safe LRU of PNG bytes (or the failure to draw them) by plot key."""

    def __init__(self, maxsize: int = 128) -> None:
        self.maxsize = maxsize
        self.hits = self.misses = 0
        self._items: OrderedDict[str, bytes | PlotFailed] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: str) -> bytes | PlotFailed | None:
        """The cached PNG or failure, marked recently used, or None."""
        with self._lock:
            png = self._items.get(key)
            if png is None:
                self.misses += 1
                return None
            self.hits += 1
            self._items.move_to_end(key)
            return png

    def put(self, key: str, png: bytes | PlotFailed) -> None:
        """Store a PNG or a failure, evicting the least recently used beyond maxsize."""
        with self._lock:
            self._items[key] = png
            self._items.move_to_end(key)
            while len(self._items) > self.maxsize:
                self._items.popitem(last=False)

    def __len__(self) -> int:
        return len(self._items)


CACHE = PlotCache()


def cached_loss_curves(
    runs: list[dict[str, Any]],
    *,
    title: str,
    label_fields: list[str],
    best_run_id: str | None,
    with_epochs: Callable[[], list[dict[str, Any]]] | None = None,
    cache: PlotCache = CACHE,
) -> bytes:
    """The PNG for these runs from the cache, else rendered (epochs loaded by with_epochs);
    PlotFailed, from the cache too, when these runs cannot be drawn."""
    key = plot_key(runs, title=title, label_fields=label_fields, best_run_id=best_run_id)
    png = cache.get(key)
    if png is None:
        # Loading is outside the try: a Redis error is passing and must not be kept.
        full = with_epochs() if with_epochs is not None else runs
        png = _render_or_failure(
            full, title=title, label_fields=label_fields, best_run_id=best_run_id
        )
        cache.put(key, png)
    if isinstance(png, PlotFailed):
        raise PlotFailed(str(png))  # a fresh one: a kept exception would grow its traceback
    return png


def _render_or_failure(
    runs: list[dict[str, Any]], *, title: str, label_fields: list[str], best_run_id: str | None
) -> bytes | PlotFailed:
    """The PNG, or the failure to keep: the same runs fail the same way every time."""
    try:
        return render_loss_curves(
            runs, title=title, label_fields=label_fields, best_run_id=best_run_id
        )
    except Exception as exc:  # any drawing error: logged once, then answered from the cache
        log.exception("plot of runs %s could not be drawn", [r.get("id") for r in runs])
        return PlotFailed(f"the plot could not be drawn ({type(exc).__name__})")
