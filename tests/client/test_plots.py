"""The loss-curve renderer and its cache, without a server."""

import math
import subprocess
import sys

import pytest

from api.curves import merge_identical, panel_figure, per_run_figure, run_label, series
from api.plots import PlotCache, PlotFailed, cached_loss_curves, plot_key, render_loss_curves

PNG = b"\x89PNG\r\n\x1a\n"


def make_run(i, epochs, *, status="succeeded", varied=None):
    """A run record with `epochs` decreasing losses."""
    return {
        "id": f"run{i:02d}",
        "status": status,
        "varied": varied,
        "spec": {"dataset": "synthetic", "activation": "relu", "lr": 0.001, "hidden": [16]},
        "epochs": [
            {
                "epoch": e,
                "train_loss": 2.0 * math.exp(-0.3 * e) + 0.01 * i,
                "test_loss": 2.1 * math.exp(-0.25 * e),
            }
            for e in range(1, epochs + 1)
        ],
    }


def png_size(png):
    """Width and height from the PNG's IHDR chunk."""
    return int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")


def test_one_run_renders_a_png():
    png = render_loss_curves(
        [make_run(0, 5)], title="run run00", label_fields=["lr"], best_run_id=None
    )
    assert png.startswith(PNG) and png_size(png)[0] >= 600


def test_a_36_run_sweep_with_gaps_and_empty_runs_renders_with_a_wider_legend():
    grid = [
        {"activation": a, "lr": lr, "step_size": s}
        for a in ("sigmoid", "relu", "tanh", "leaky_relu")
        for lr in (1e-4, 1e-3, 1e-2)
        for s in (20, 30, 40)
    ]
    runs = [make_run(i, 10, varied=v) for i, v in enumerate(grid)]
    runs[3] = {**runs[3], "status": "queued", "epochs": []}  # listed, draws nothing
    runs[4]["epochs"][2]["train_loss"] = None  # a diverged epoch leaves a gap
    png = render_loss_curves(
        runs, title="sweep", label_fields=["activation", "lr", "step_size"], best_run_id="run07"
    )
    one = render_loss_curves(runs[:1], title="sweep", label_fields=["lr"], best_run_id=None)
    assert png.startswith(PNG) and png_size(png)[0] > png_size(one)[0]


STUDY_GRID = [
    {"activation": a, "lr": lr, "step_size": s}
    for a in ("sigmoid", "relu", "tanh", "leaky_relu")
    for lr in (1e-4, 1e-3, 1e-2)
    for s in (20, 30, 40)
]


def study_runs():
    """36 runs where step_size changes nothing (StepLR never fires in 10 epochs): each
    activation and lr gives one curve, three runs each."""
    runs = []
    for i, varied in enumerate(STUDY_GRID):
        run = make_run(i, 10, varied=varied)
        curve = STUDY_GRID.index({**varied, "step_size": 20})
        for epoch in run["epochs"]:
            epoch["train_loss"] = 2.0 * math.exp(-0.3 * epoch["epoch"]) + 0.01 * curve
        runs.append(run)
    return runs


def test_identical_curves_are_merged_with_their_count():
    groups = merge_identical(study_runs(), series)
    assert len(groups) == 12 and all(len(g) == 3 for g in groups)
    fig = per_run_figure(study_runs()[:9], ["activation", "lr", "step_size"], None)
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert "activation=sigmoid lr=0.0001 step_size=20|30|40 (×3 identical)" in labels


def test_many_runs_get_one_panel_per_value_and_legends_of_values():
    runs = study_runs()
    assert per_run_figure(runs, ["activation", "lr", "step_size"], "run07") is None
    fig = panel_figure(runs, ["activation", "lr", "step_size"], "run07")
    panels = [ax for ax in fig.axes if ax.get_visible()]
    titles = [ax.get_title() for ax in panels]
    assert titles == [
        "activation=sigmoid  ★ best",
        "activation=relu",
        "activation=tanh",
        "activation=leaky_relu",
    ]
    assert all(len(ax.get_lines()) == 3 * 2 for ax in panels)  # 3 merged curves, train+test
    assert all([t.get_text() for t in ax.texts] == ["×3"] * 3 for ax in panels)
    (legend,) = fig.legends
    labels = [t.get_text() for t in legend.get_texts()]
    assert labels == [
        "lr=0.0001",
        "lr=0.001",
        "lr=0.01",
        "step_size=20",
        "step_size=30",
        "step_size=40",
        "train loss",
        "test loss",
        "×n: n runs, identical curves",
    ]
    thick = [line for ax in panels for line in ax.get_lines() if line.get_linewidth() > 2]
    assert len(thick) == 2  # the best run's curve pair, though it is merged with two others


@pytest.mark.parametrize("count", [36, 200])
def test_a_big_sweep_plot_stays_a_sane_size(count):
    runs = [
        make_run(i, 5, varied={"activation": ("relu", "tanh")[i % 2], "lr": i * 1e-3})
        for i in range(count)
    ]
    png = render_loss_curves(runs, title="s", label_fields=["activation", "lr"], best_run_id=None)
    width, height = png_size(png)
    assert width <= 1200 and height <= 800


def test_labels_name_the_varied_fields_else_the_spec_else_the_id():
    run = make_run(1, 1, varied={"lr": 0.01})
    assert run_label(run, ["activation", "lr", "hidden"]) == "activation=relu lr=0.01 hidden=16"
    assert run_label(run, []) == "run01"


def test_cache_hits_on_unchanged_state_and_misses_on_any_change():
    cache, calls = PlotCache(maxsize=8), []
    runs = [make_run(0, 3), make_run(1, 2, status="running")]

    def draw(rs, best="run00"):
        def loader():
            calls.append(1)
            return rs

        return cached_loss_curves(
            rs, title="t", label_fields=[], best_run_id=best, with_epochs=loader, cache=cache
        )

    first = draw(runs)
    assert draw(runs) == first and (cache.hits, cache.misses, len(calls)) == (1, 1, 1)
    grown = [runs[0], make_run(1, 3, status="running")]
    finished = [runs[0], make_run(1, 3)]
    assert draw(grown) != first
    draw(finished)
    draw(finished, best="run01")
    assert (cache.hits, cache.misses, len(calls)) == (1, 4, 4)


# Each was a 500: matplotlib read them as mathtext (a parse error, a RecursionError).
HOSTILE = [
    r"$\foo$",
    "$" + "x^{" * 45 + "x" + "}" * 45 + "$",
    r"costs $5 and $6",
    r"$\frac{1}{$",
    "50% \\ _under_ ^caret^ {braces}",
]


@pytest.mark.parametrize("text", HOSTILE)
def test_user_strings_are_drawn_as_plain_text(text):
    runs = [make_run(0, 3, varied={"note": text}), make_run(1, 3, varied={"note": text + "!"})]
    png = render_loss_curves(runs, title=text, label_fields=["note"], best_run_id="run00")
    assert png.startswith(PNG)
    many = [make_run(i, 3, varied={"note": text + "!" * (i % 2), "k": i}) for i in range(12)]
    png = render_loss_curves(many, title=text, label_fields=["note", "k"], best_run_id="run00")
    assert png.startswith(PNG)  # panels titled and a legend labelled with the same strings


def test_a_plot_that_cannot_be_drawn_is_not_drawn_again_until_its_runs_change():
    cache, loads = PlotCache(maxsize=8), []
    broken = {**make_run(0, 2), "epochs": [{"epoch": "one", "train_loss": 1.0}]}

    def draw(runs):
        def loader():
            loads.append(1)
            return runs

        return cached_loss_curves(
            runs, title="t", label_fields=[], best_run_id=None, with_epochs=loader, cache=cache
        )

    for _ in range(3):
        with pytest.raises(PlotFailed):
            draw([broken])
    assert (cache.misses, cache.hits, len(loads)) == (1, 2, 1)
    fixed = {**make_run(0, 3), "id": broken["id"]}  # one epoch more: another picture
    assert draw([fixed]).startswith(PNG) and cache.misses == 2


def test_the_key_reads_epoch_counts_from_light_records_too():
    full = make_run(0, 3)
    light = {**full, "epochs": [], "last_epoch": 3}
    key = plot_key([full], title="t", label_fields=[], best_run_id=None)
    assert plot_key([light], title="t", label_fields=[], best_run_id=None) == key


def test_cache_is_a_bounded_lru():
    cache = PlotCache(maxsize=2)
    cache.put("a", b"1")
    cache.put("b", b"2")
    assert cache.get("a") == b"1"  # a is now the most recently used
    cache.put("c", b"3")
    assert (cache.get("b"), cache.get("a"), cache.get("c"), len(cache)) == (None, b"1", b"3", 2)


def test_rendering_leaves_pyplot_alone_and_imports_no_torch():
    code = (
        "import sys; from api.plots import render_loss_curves as r;"
        "r([], title='t', label_fields=[], best_run_id=None);"
        "print(sorted({'torch', 'matplotlib.pyplot'} & set(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
