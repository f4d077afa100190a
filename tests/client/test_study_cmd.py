"""`mlplab study`: the study's spec, shrunk to synthetic data, through the real CLI and server."""

import json

import pytest

from tests.support.cli import error_line
from tests.support.paths import ROOT

pytestmark = pytest.mark.integration

STUDY = str(ROOT / "examples" / "seed_study.yaml")
SMALL = ["--set", "dataset=synthetic", "--set", "hidden=[16]", "--set", "epochs=3"]


def test_the_seed_study_runs_stage_by_stage_to_a_winner(mlplab):
    done = mlplab("study", STUDY, *SMALL, "--watch")
    out = done.stdout
    assert out.startswith("submitted study ")
    sweep_id = out.split()[2].rstrip(":")
    at = [
        out.index(f"stage {n}: {field}")
        for n, field in ((1, "activation"), (2, "lr"), (3, "step_size"))
    ]
    assert at == sorted(at) and out.count("★") == 2 + 2 + 2
    assert "winner: activation=" in out and "step_size=" in out.split("winner:")[1]
    lines = [json.loads(line) for line in mlplab("study", sweep_id, "--json").stdout.splitlines()]
    stages = [line for line in lines if line["event"] == "stage"]
    assert [len(s["rows"]) for s in stages] == [4, 6, 6]
    # the lr 0.001 and step_size 20 of stages 2 and 3 are a winner as it is: kept, not retrained
    assert [sum(r["kept"] for r in s["rows"]) for s in stages] == [0, 2, 2]
    assert len({r["run_id"] for s in stages for r in s["rows"]}) == 4 + 4 + 4
    assert {r["status"] for s in stages for r in s["rows"]} == {"succeeded"}
    assert all(r["runtime_s"] > 0 and r["final_train_loss"] > 0 for r in stages[2]["rows"])
    # per_parent: stage 3 tries both stage-1 winners, each at its own best lr
    stage3 = {r["config"]["activation"] for r in stages[2]["rows"]}
    assert stage3 == {r["config"]["activation"] for r in stages[0]["rows"] if r["winner"]}
    end = lines[-1]
    assert end["event"] == "end" and end["winner"]["run_id"] in {
        r["run_id"] for s in stages for r in s["rows"]
    }


def test_study_refuses_a_sweep_that_is_not_staged(mlplab):
    done = mlplab("study", "sweep.yaml", code=2)
    assert "is not a staged sweep" in error_line(done, "study")


def test_watching_a_staged_sweep_shows_each_stage_as_it_is_created(mlplab, tmp_path):
    (tmp_path / "staged.yaml").write_text(
        "strategy: staged\nbase: {dataset: synthetic, hidden: [16], epochs: 2}\n"
        "stages: [{activation: [relu, tanh]}, {lr: [0.05, 0.005]}]\nkeep_top: 1\n"
    )
    done = mlplab("submit", "staged.yaml", "--watch")
    assert done.stdout.startswith("submitted sweep") and "with 2 runs" in done.stdout
    assert "lr=0.005" in done.stderr
    assert "sweep " in done.stderr and "4/4 finished" in done.stderr
