"""Property-based requests from the app's own OpenAPI schema: no input gets a 5xx.

Schemathesis generates valid and invalid requests for every operation and sends each to the
app in-process (auth on, real Redis, no worker) with an admin's real token, so the
authenticated paths run past the auth check. SSE streams are left out: a run that no worker
trains never ends its stream. Examples are bounded per operation.
"""

import sys

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.python import asgi

from api.main import create_app
from api.settings import ApiSettings

MAX_EXAMPLES = 25

# The schema does not depend on settings; building an app opens no connection.
schema = schemathesis.openapi.from_dict(create_app(ApiSettings(auth=True)).openapi()).exclude(
    path_regex=r"/events$"
)


def _subnormals_on() -> bool:
    """Hypothesis needs subnormal floats, but a test that trained in this process (collected
    or run earlier) may have left torch's denormal flushing on for the thread: turn it off.
    True when it was on (training turns it on again by itself)."""
    torch = sys.modules.get("torch")
    if torch is None or sys.float_info.min / 2 != 0.0:
        return False
    torch.set_flush_denormal(False)
    return True


_subnormals_on()  # the strategies are built at collection


@pytest.fixture(autouse=True)
def subnormal_floats():
    """Subnormals while the examples are generated."""
    _subnormals_on()


@pytest.fixture
def app(api_settings, redis_client):
    """The app with auth on; schemathesis runs its lifespan on first call, we end it."""
    yield create_app(api_settings.model_copy(update={"auth": True}))
    asgi.shutdown_lifespans()


@pytest.fixture
def admin(users):
    """An admin's Authorization header, with a real token on the app's Redis."""
    return {"Authorization": f"Bearer {users.add(name='root', admin=True)[1]}"}


@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES, deadline=None, database=None, suppress_health_check=list(HealthCheck)
)
def test_no_request_gets_a_server_error(case, app, admin):
    case.call_and_validate(app=app, headers=admin, checks=[not_a_server_error])
