"""docker-compose.yml matches the code: services, commands, settings names."""

import yaml

from api.settings import ApiSettings
from mlplab.serve import api_command, worker_command
from tests.conftest import ROOT
from worker.settings import WorkerSettings

COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]
GPU_WORKERS = ["worker-gpu0", "worker-gpu1"]


def env_names(service):
    return {name for name in SERVICES[service].get("environment", {}) if name.startswith("MLPLAB_")}


def test_services():
    assert set(SERVICES) == {"redis", "api", *GPU_WORKERS, "flower"}


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


def test_one_worker_per_gpu_runs_like_mlplab_worker_pinned_and_named_after_its_gpu():
    for index, service in enumerate(GPU_WORKERS):
        command = SERVICES[service]["command"]
        ours = worker_command(name=f"gpu{index}")[3:]  # after `python -m celery`
        assert command[0] == "celery"
        for option in ("-A", "--pool", "--concurrency", "--hostname"):
            assert command[command.index(option) + 1] == ours[ours.index(option) + 1]
        assert command[command.index("--concurrency") + 1] == "1"
        [device] = SERVICES[service]["deploy"]["resources"]["reservations"]["devices"]
        assert device["capabilities"] == ["gpu"] and device["device_ids"] == [str(index)]
        assert SERVICES[service]["environment"]["MLPLAB_DEVICE"] == "cuda"


def test_auth_is_on_in_production():
    assert "MLPLAB_AUTH" not in SERVICES["api"]["environment"]
    assert ApiSettings.model_fields["auth"].default is True


def test_environment_names_are_settings_fields():
    api_fields = {f"MLPLAB_{name.upper()}" for name in ApiSettings.model_fields}
    worker_fields = {f"MLPLAB_{name.upper()}" for name in WorkerSettings.model_fields}
    assert env_names("api") and env_names("api") <= api_fields
    for service in GPU_WORKERS:
        assert env_names(service) and env_names(service) <= worker_fields


def test_all_parts_share_the_redis_service():
    url = SERVICES["api"]["environment"]["MLPLAB_REDIS_URL"]
    assert {SERVICES[s]["environment"]["MLPLAB_REDIS_URL"] for s in GPU_WORKERS} == {url}
    assert url.startswith("redis://redis:6379/")
    assert f"--broker={url}" in SERVICES["flower"]["command"]
