"""lab.fusion.plan: runs cut into fused groups by fusion key and model cap, with the runs that
differ only in their lr schedule (and so share epochs, mlpcore.schedule) kept together."""

from __future__ import annotations

from lab.fusion import plan
from mlpcore.spec import RunSpec

BASE = RunSpec(dataset="synthetic", hidden=[16], epochs=4)


def test_groups_follow_the_fusion_key_and_the_cap():
    specs = [BASE.model_copy(update={"lr": lr}) for lr in (0.1, 0.01, 0.001)]
    specs.append(BASE.model_copy(update={"hidden": [8]}))
    planned = plan(specs, fuse=True, max_models=2)
    assert planned.chunks == [[0, 1], [2], [3]]
    assert planned.groups[0] == planned.groups[1] and planned.groups[2] is None
    assert plan(specs, fuse=False, max_models=2).chunks == [[0], [1], [2], [3]]


def test_runs_that_share_epochs_stay_in_one_group():
    # sweep order interleaves the lrs; each lr's step sizes share their first epochs
    specs = [
        BASE.model_copy(update={"lr": lr, "step_size": s}) for s in (2, 3) for lr in (0.1, 0.01)
    ]
    assert plan(specs, fuse=True, max_models=2).chunks == [[0, 2], [1, 3]]
    # families of three, at most four a group: a group holds one family, never a part of two
    triples = [
        BASE.model_copy(update={"lr": lr, "step_size": s}) for lr in (0.1, 0.01) for s in (1, 2, 3)
    ]
    assert plan(triples, fuse=True, max_models=4).chunks == [[0, 1, 2], [3, 4, 5]]
    assert plan(triples, fuse=True, max_models=2).chunks == [[0, 1], [2], [3, 4], [5]]
