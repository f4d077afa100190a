"""`mlplab watch` stays readable at 80 columns (nothing cut, the configuration wrapped) and
prints plain lines when its output is not a terminal."""

import io

import pytest
from rich.console import Console

from mlplab.client import Event
from mlplab.watch import Display

VARIED = ["activation", "lr", "step_size", "gamma"]


def run(i, status="running"):
    spec = {"dataset": "fashion-mnist", "activation": "leaky_relu", "lr": 0.001, "epochs": 50}
    varied = {"activation": "leaky_relu", "lr": 0.001, "step_size": 30 + i, "gamma": 0.1}
    return {"id": f"run{i:013d}", "spec": spec, "varied": varied, "status": status, "epochs": []}


def sweep_display(width):
    runs = [run(0), run(1, "succeeded")]
    display = Display(runs, sweep={"id": "sw1", "varied": VARIED}, width=width)
    data = {
        "run_id": runs[0]["id"],
        "epoch": 3,
        "train_loss": 0.123456,
        "test_loss": 0.5,
        "seconds": 2,
    }
    display.apply(Event("epoch", "1-0", data))
    return display


@pytest.mark.parametrize("width", [60, 80, 120, 160])
def test_nothing_is_cut_at_any_width(width):
    out = io.StringIO()
    console = Console(file=out, width=width, force_terminal=True, color_system=None)
    console.print(sweep_display(width))
    text = out.getvalue()
    assert all(len(line) <= width for line in text.splitlines())
    flat = "".join(text.split())  # a wrapped label reads whole once the breaks are gone
    for needle in ("activation=leaky_relu", "lr=0.001", "step_size=30", "gamma=0.1"):
        assert needle in flat
    assert "succeeded" in text and "3/50" in text and "0.1235" in text and "…" not in text
    assert ("run0000000000000" in text) == (width >= 130)


def test_plain_lines_name_the_run_its_configuration_and_numbers():
    display = sweep_display(80)
    data = {"run_id": "run0000000000000", "epoch": 4, "train_loss": 0.1, "test_loss": 0.2}
    display.apply(Event("epoch", "2-0", data))
    line = display.line(Event("epoch", "2-0", data))
    assert line == (
        "run0000000000000  activation=leaky_relu lr=0.001 step_size=30 gamma=0.1  "
        "epoch 4/50  train 0.1000  test 0.2000"
    )
    ended = {"run_id": "run0000000000000", "status": "succeeded"}
    display.apply(Event("status", "3-0", ended))
    assert display.line(Event("status", "3-0", ended)).endswith("gamma=0.1  succeeded")
    assert display.summary() == "sweep sw1: 2/2 finished"
