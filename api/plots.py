"""Loss-curve PNGs with matplotlib's Agg canvas (no pyplot state, so safe across threads).

`render_loss_curves` draws (api/curves.py holds the drawing); `PlotCache` keeps recent PNGs
keyed by what the picture shows (ids, statuses, epoch counts, best run), so a page polling a
plot re-renders only on change.
A picture that could not be drawn is kept too, as its failure, so retries do not redraw it.
Every string a user chose (names, labels, titles) is drawn as plain text, never as mathtext.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import textwrap
import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from api.curves import panel_figure, per_run_figure
from api.errors import PlotFailed

# User strings are long at will (a name may be 200 characters): a title wraps onto lines of
# this many, a legend label is cut to this many, so the axes never collapse to nothing.
TITLE_CHARS = 80
log = logging.getLogger(__name__)


def render_loss_curves(
    runs: list[dict[str, Any]], *, title: str, label_fields: list[str], best_run_id: str | None
) -> bytes:
    """A PNG of every run's train (solid) and test (dashed) loss per epoch; runs whose curves
    are identical are drawn once with their count. Up to PER_RUN_LEGEND curves, one axes with
    a legend naming each run; more, panels by the first varied field (api/curves.py)."""
    fig = per_run_figure(runs, label_fields, best_run_id)
    if fig is None:  # too many distinct curves to name one by one
        fig = panel_figure(runs, label_fields, best_run_id)
    # a sweep's name is in the title: `$\foo$` parsed as mathtext was a 500 (or a
    # RecursionError for deep nesting); parse_math=False draws it character for character
    # over the whole figure, not the axes: a long title has the legend's width too
    fig.suptitle(textwrap.fill(title, TITLE_CHARS, max_lines=3), parse_math=False)
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
