"""docker-compose.yml matches the code: services, commands, settings names."""

import yaml

from api.settings import ApiSettings
from mlplab.serve import api_command, worker_command
from tests.conftest import ROOT
from worker.settings import WorkerSettings

COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]


def env_names(service):
    return {name for name in SERVICES[service].get("environment", {}) if name.startswith("MLPLAB_")}


def test_services():
    assert set(SERVICES) == {"redis", "api", "worker", "flower"}


def test_redis_persists_with_aof_and_has_a_healthcheck():
    redis = SERVICES["redis"]
    assert "--appendonly" in redis["command"]
    assert redis["command"][redis["command"].index("--appendonly") + 1] == "yes"
    assert redis["volumes"][0].split(":")[0] in COMPOSE["volumes"]
    assert "redis-cli" in redis["healthcheck"]["test"]


def test_api_serves_the_app_factory_like_mlplab_api():
    command = SERVICES["api"]["command"]
    assert command[0] == "uvicorn"
    assert command[1:3] == api_command(host="x", port=0)[3:5]  # api.main:create_app --factory
    assert SERVICES["api"]["depends_on"]["redis"]["condition"] == "service_healthy"


def test_worker_runs_like_mlplab_worker_with_a_gpu():
    command = SERVICES["worker"]["command"]
    ours = worker_command(name="worker")[3:]  # after `python -m celery`
    assert command[0] == "celery"
    for option in ("-A", "--pool", "--concurrency"):
        assert command[command.index(option) + 1] == ours[ours.index(option) + 1]
    assert command[command.index("--concurrency") + 1] == "1"
    [device] = SERVICES["worker"]["deploy"]["resources"]["reservations"]["devices"]
    assert device["capabilities"] == ["gpu"] and device["count"] == 1


def test_environment_names_are_settings_fields():
    api_fields = {f"MLPLAB_{name.upper()}" for name in ApiSettings.model_fields}
    worker_fields = {f"MLPLAB_{name.upper()}" for name in WorkerSettings.model_fields}
    assert env_names("api") and env_names("api") <= api_fields
    assert env_names("worker") and env_names("worker") <= worker_fields


def test_all_parts_share_the_redis_service():
    url = SERVICES["api"]["environment"]["MLPLAB_REDIS_URL"]
    assert url == SERVICES["worker"]["environment"]["MLPLAB_REDIS_URL"]
    assert url.startswith("redis://redis:6379/")
    assert f"--broker={url}" in SERVICES["flower"]["command"]
