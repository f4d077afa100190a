"""docker-compose.yml and the Dockerfile match the code: services, commands, settings names,
and one image per layer (the API's without torch)."""

import ast
import json
import re
import tomllib

import yaml

from api.settings import ApiSettings
from mlplab.serve import api_command, worker_command
from tests.support.paths import ROOT
from worker.settings import WorkerSettings

COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]
GPU_WORKERS = ["worker-gpu0", "worker-gpu1"]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
FIRST_PARTY = set(PYPROJECT["tool"]["ruff"]["lint"]["isort"]["known-first-party"])
TORCH = {"torch", "torchvision"}


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


def test_the_api_and_every_worker_share_one_artifact_volume_at_the_dir_they_are_told():
    mounts = {}
    for service in ["api", *GPU_WORKERS]:
        directory = SERVICES[service]["environment"]["MLPLAB_ARTIFACT_DIR"]
        volumes = dict(v.split(":")[::-1][:2] for v in SERVICES[service]["volumes"])
        mounts[service] = (directory, volumes[directory])
    assert len(set(mounts.values())) == 1, mounts
    [(_, volume)] = set(mounts.values())
    assert volume in COMPOSE["volumes"]


def test_all_parts_share_the_redis_service():
    url = SERVICES["api"]["environment"]["MLPLAB_REDIS_URL"]
    assert {SERVICES[s]["environment"]["MLPLAB_REDIS_URL"] for s in GPU_WORKERS} == {url}
    assert url.startswith("redis://redis:6379/")
    assert f"--broker={url}" in SERVICES["flower"]["command"]


# -- docker-compose.multihost.yml: only the workers, on another box ------------------------

MULTIHOST = yaml.safe_load((ROOT / "docker-compose.multihost.yml").read_text())


def test_the_multihost_override_runs_only_worker_services_against_a_remote_redis():
    assert set(MULTIHOST["services"]) == set(GPU_WORKERS)
    for service in MULTIHOST["services"].values():
        assert service["environment"]["MLPLAB_REDIS_URL"].startswith("${MLPLAB_REDIS_URL:?")
        assert set(service["environment"]) <= {
            f"MLPLAB_{name.upper()}" for name in WorkerSettings.model_fields
        }
        assert service["hostname"].startswith("${MLPLAB_BOX:?")  # gpuK@<box> names it


def test_the_multihost_override_mounts_the_shared_directories_the_workers_are_told():
    for volume in ("checkpoints", "artifacts"):
        options = MULTIHOST["volumes"][volume]["driver_opts"]
        assert options["type"] == "nfs" and "${MLPLAB_NFS_HOST:?" in options["o"]
    for service in GPU_WORKERS:
        environment = SERVICES[service]["environment"]
        volumes = dict(v.split(":")[::-1][:2] for v in SERVICES[service]["volumes"])
        assert volumes[environment["MLPLAB_CHECKPOINT_DIR"]] == "checkpoints"
        assert volumes[environment["MLPLAB_ARTIFACT_DIR"]] == "artifacts"


# -- the Dockerfile: one image per layer ----------------------------------------------------


def dockerfile_stages() -> dict[str, list[str]]:
    """Each build stage's instructions, its parent stage's first; continuations joined."""
    text = (ROOT / "Dockerfile").read_text()
    lines = [line for line in text.splitlines() if not line.lstrip().startswith("#")]
    joined = re.sub(r"\\\n\s*", " ", "\n".join(lines))
    stages: dict[str, list[str]] = {}
    current: list[str] = []
    for line in filter(None, (line.strip() for line in joined.splitlines())):
        found = re.fullmatch(r"FROM\s+(\S+)\s+AS\s+(\S+)", line, flags=re.IGNORECASE)
        if found:
            current = stages[found[2]] = list(stages.get(found[1], []))
        else:
            current.append(line)
    return stages


def instructions(stage: str, keyword: str) -> list[str]:
    """The arguments of a stage's instructions of one kind (RUN, COPY, CMD)."""
    prefix = keyword + " "
    return [line[len(prefix) :] for line in dockerfile_stages()[stage] if line.startswith(prefix)]


def copied_packages(stage: str) -> set[str]:
    """The project's packages a stage copies into its image."""
    return {line.split()[0] for line in instructions(stage, "COPY")} & FIRST_PARTY


def installed_extras(stage: str) -> set[str]:
    """The extras of the project a stage pip-installs (`.[a,b]`)."""
    found = re.findall(r"\.\[([^\]]*)\]", " ".join(instructions(stage, "RUN")))
    return {extra.strip() for group in found for extra in group.split(",")}


def requirement_names(extras: set[str]) -> set[str]:
    """The distributions the base install plus these extras depend on (self-references followed)."""
    project = PYPROJECT["project"]
    names, todo = set(), [*project["dependencies"]]
    todo += [req for extra in extras for req in project["optional-dependencies"][extra]]
    while todo:
        found = re.match(r"([A-Za-z0-9._-]+)(?:\[([^\]]*)\])?", todo.pop())
        name, extras_of = found[1].lower(), found[2]
        if name == project["name"]:
            todo += [r for e in extras_of.split(",") for r in project["optional-dependencies"][e]]
        else:
            names.add(name)
    return names


def imported_packages(package: str) -> set[str]:
    """The project's packages that `package` imports, directly or through one another."""
    seen, todo = {package}, [package]
    while todo:
        for path in (ROOT / todo.pop()).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
                if isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names = [node.module]
                else:
                    continue
                for top in {name.split(".")[0] for name in names} & FIRST_PARTY - seen:
                    seen.add(top)
                    todo.append(top)
    return seen


def test_each_service_builds_the_image_of_its_layer():
    stages = dockerfile_stages()
    assert SERVICES["api"]["build"] == {"context": ".", "target": "api"}
    for service in GPU_WORKERS:
        assert SERVICES[service]["build"] == {"context": ".", "target": "worker"}
    assert SERVICES["api"]["image"] != SERVICES[GPU_WORKERS[0]]["image"]
    assert {"api", "worker"} <= set(stages)


def test_the_api_image_never_installs_torch_or_the_worker_extra():
    assert installed_extras("api") == {"server"}
    assert not any(re.search(r"torch|worker|\ball\b", run) for run in instructions("api", "RUN"))
    assert not TORCH & requirement_names({"server"})
    assert "worker" not in copied_packages("api")


def test_the_worker_image_installs_the_worker_extra_with_torch():
    assert installed_extras("worker") == {"worker"}
    assert TORCH <= requirement_names({"worker"})
    assert "api" not in copied_packages("worker")


def test_each_image_holds_every_package_its_layer_imports():
    for stage in ("api", "worker"):
        assert "lab" in copied_packages(stage)
        assert imported_packages(stage) <= copied_packages(stage), stage


def test_each_image_starts_its_part_like_mlplab_does():
    [api_cmd] = instructions("api", "CMD")
    assert json.loads(api_cmd)[1:3] == api_command(host="x", port=0)[3:5]
    [worker_cmd] = instructions("worker", "CMD")
    command, ours = json.loads(worker_cmd), worker_command(name="x")[3:]
    assert command[0] == "celery"
    for option in ("-A", "--pool", "--concurrency"):
        assert command[command.index(option) + 1] == ours[ours.index(option) + 1]
