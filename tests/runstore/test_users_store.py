"""Users and tokens in Redis: hashed tokens, revoke and rotate at once, overrides."""

import pytest

from runstore import Conflict, NotFound
from runstore.users import LIMIT_NAMES, token_hash


def test_a_token_is_shown_once_and_stored_only_as_its_hash(users, redis_client):
    user, token = users.add(name="ann")
    assert token.startswith("mlp_") and len(token) > 40
    assert (user.name, user.admin, user.priority, user.revoked) == ("ann", False, 1.0, False)
    stored = [
        v
        for key in redis_client.scan_iter("*")
        if redis_client.type(key) == "hash"
        for v in redis_client.hgetall(key).values()
    ]
    assert token not in stored and token_hash(token) in stored
    assert users.authenticate(token) == user
    assert users.authenticate(token + "x") is None and users.authenticate("") is None


def test_names_are_unique_and_checked(users):
    users.add(name="ann", admin=True)
    with pytest.raises(Conflict):
        users.add(name="ann")
    for bad in ("Ann", "a b", "", "x" * 33, "1ann", "ann:x"):
        with pytest.raises(ValueError):
            users.add(name=bad)
    with pytest.raises(NotFound):
        users.revoke("nobody")


def test_revoke_and_rotate_take_effect_at_once(users):
    _, old = users.add(name="ann")
    assert users.revoke("ann").revoked and users.authenticate(old) is None
    user, new = users.rotate("ann")  # a new token re-enables a revoked user
    assert not user.revoked and users.authenticate(new).name == "ann"
    _, newer = users.rotate("ann")
    assert users.authenticate(new) is None and users.authenticate(newer).name == "ann"


def test_priority_and_overrides(users):
    users.add(name="ann")
    user = users.update("ann", priority=2.5, limits={"max_queued": 10, "max_epochs": 500})
    assert user.priority == 2.5 and user.overrides == {"max_queued": 10, "max_epochs": 500}
    assert users.update("ann", limits={"max_queued": None}).overrides == {"max_epochs": 500}
    with pytest.raises(ValueError, match="unknown limit"):
        users.update("ann", limits={"max_gpus": 1})
    with pytest.raises(ValueError):
        users.update("ann", priority=0)
    assert [u.name for u in users.list()] == ["ann"]


def test_limit_names_are_api_settings_and_schema_names():
    from typing import get_args

    from api.schemas import LimitName
    from api.settings import ApiSettings
    from mlplab.users_cmd import LIMIT_NAMES as LIMIT_FLAGS

    assert set(LIMIT_NAMES) <= set(ApiSettings.model_fields)
    assert set(get_args(LimitName)) == set(LIMIT_NAMES) == set(LIMIT_FLAGS)
