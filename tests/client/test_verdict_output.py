"""How `mlplab best` and `mlplab show` print a sweep with repeats: the best configuration's
mean and spread, the verdict in one line, and the test-set warning."""

from rich.console import Console

from mlplab import output

VERDICT = {"status": "noise", "summary": "activation=relu vs activation=tanh: within seed noise"}
BEST = {
    "run_id": "r1",
    "metric": "final_test_loss",
    "mode": "min",
    "value": 0.12,
    "config": {"varied": {"activation": "relu"}, "spec": {"activation": "relu", "seed": 1}},
    "runs": ["r0", "r1", "r2"],
    "mean": 0.12,
    "std": 0.02,
    "n": 3,
    "warnings": ["the winner is chosen on the test set (final_test_loss): ..."],
    "verdict": VERDICT,
}


def rendered(renderable):
    console = Console(width=200, record=True)
    console.print(renderable)
    return console.export_text()


def test_best_shows_the_configuration_mean_the_verdict_and_the_warning():
    text = output.best_text(BEST)
    lines = text.splitlines()
    assert lines[0] == (
        "best configuration: mean final_test_loss = 0.12 ± 0.02 over 3 runs (min); its best run r1"
    )
    assert f"verdict: {VERDICT['summary']}" in lines
    assert lines[-1].startswith("warning: the winner is chosen on the test set")


def test_best_without_repeats_keeps_its_old_first_line():
    plain = {k: BEST[k] for k in ("run_id", "metric", "mode", "value", "config")}
    assert output.best_text(plain).splitlines()[0] == "best run r1: final_test_loss = 0.12 (min)"


def test_show_prints_the_grouped_leaderboard_with_std_and_n_and_the_verdict():
    row = {
        "rank": 1,
        "run_id": "r1",
        "status": "succeeded",
        "value": 0.12,
        "varied": BEST["config"]["varied"],
    }
    board = {
        "metric": "final_test_loss",
        "data": [{**row, "std": 0.02, "n": 3, "run_ids": BEST["runs"]}],
    }
    sweep = {
        "id": "s1",
        "name": None,
        "run_ids": BEST["runs"],
        "counts": {"succeeded": 3},
        "done": True,
        "metric": "final_test_loss",
        "mode": "min",
        "varied": ["activation"],
        "warnings": BEST["warnings"],
        "verdict": VERDICT,
    }
    text = rendered(output.sweep_detail(sweep, board))
    assert "warning: the winner is chosen on the test set" in text
    assert f"verdict: {VERDICT['summary']}" in text
    header = next(line for line in text.splitlines() if line.lstrip().startswith("rank"))
    assert header.split()[:7] == ["rank", "best", "run", "status", "mean", "final_test_loss", "std"]
    assert "0.0200" in text and " 3 " in text
