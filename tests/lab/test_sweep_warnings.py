"""lab/sweep_warnings.py: varied fields that cannot change a run are named, with the count
of runs that only repeat another; fields that matter are not."""

from lab.sweep_warnings import inert_warnings
from mlpcore.spec import RunSpec


def runs(base, axis, values):
    """One run record per value of `axis` over the base spec (all fields filled)."""
    return [{"spec": RunSpec(**{**base, axis: value}).model_dump(mode="json")} for value in values]


def test_step_sizes_at_or_past_the_last_epoch_are_duplicates():
    (warning,) = inert_warnings(runs({"epochs": 10}, "step_size", [5, 10, 20, 30]), ["step_size"])
    assert "2 of the sweep's 4 runs" in warning and "StepLR never fires" in warning
    assert inert_warnings(runs({"epochs": 10}, "step_size", [3, 5, 9]), ["step_size"]) == []


def test_gamma_without_a_step_and_momentum_without_sgd():
    none = runs({"scheduler": "none"}, "gamma", [0.1, 0.5])
    assert inert_warnings(none, ["gamma"])[0].startswith("gamma varies (0.1, 0.5)")
    cosine = runs({"scheduler": "cosine"}, "gamma", [0.1, 0.5])
    assert len(inert_warnings(cosine, ["gamma"])) == 1
    stepping = runs({"scheduler": "step", "step_size": 2, "epochs": 5}, "gamma", [0.1, 0.5])
    assert inert_warnings(stepping, ["gamma"]) == []
    for optimizer, warned in (("adam", 1), ("adamw", 1), ("sgd", 0)):
        momentum = runs({"optimizer": optimizer}, "momentum", [0.5, 0.9])
        assert len(inert_warnings(momentum, ["momentum"])) == warned, optimizer


def test_only_the_fields_the_sweep_varies_are_judged():
    assert inert_warnings(runs({"epochs": 10}, "step_size", [20, 30]), ["lr"]) == []
