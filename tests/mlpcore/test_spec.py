"""RunSpec validation: defaults, bounds, clear field-named errors, file loading."""

import json
import math

import pytest
from pydantic import ValidationError

from mlpcore.errors import SpecError
from mlpcore.spec import RunSpec, format_validation_error, load_spec_file, parse_override
from mlpcore.status import ACTIVE, TERMINAL, RunStatus


def test_defaults_are_the_design_table():
    spec = RunSpec()
    assert spec.dataset == "fashion-mnist"
    assert spec.hidden == [512, 256, 128]
    assert (spec.activation, spec.init, spec.optimizer) == ("relu", "he", "adam")
    assert (spec.lr, spec.step_size, spec.gamma) == (1e-3, 20, 0.1)
    assert (spec.epochs, spec.batch_size, spec.seed) == (10, 64, 0)
    assert spec.train_subset is None and spec.device == "auto"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("lr", 0),
        ("lr", -1e-3),
        ("lr", math.nan),
        ("lr", math.inf),
        ("gamma", math.inf),
        ("epochs", 0),
        ("batch_size", 0),
        ("step_size", 0),
        ("hidden", [512, 0]),
        ("train_subset", 0),
        ("activation", "swish"),
        ("optimizer", "rmsprop"),
        ("scheduler", "plateau"),
        ("dataset", "cifar10"),
        ("device", "tpu"),
        ("momentum", 1.0),
        ("seed", -1),
        ("epochs", True),
        ("batch_size", False),
        ("lr", True),
        ("seed", True),
        ("hidden", [True, 8]),
    ],
)
def test_bad_values_are_rejected_naming_the_field(field, value):
    with pytest.raises(ValidationError) as info:
        RunSpec(**{field: value})
    assert info.value.errors()[0]["loc"][0] == field


def test_unknown_fields_are_rejected():
    with pytest.raises(ValidationError, match="extra_forbidden|Extra inputs"):
        RunSpec(learning_rate=0.1)


@pytest.mark.parametrize("device", ["auto", "cpu", "cuda", "cuda:0", "cuda:1", "cuda:63", "mps"])
def test_devices(device):
    assert RunSpec(device=device).device == device


@pytest.mark.parametrize(
    "device",
    [
        "cpu\n",  # `$` matches before a trailing newline: the worker got "cpu\n"
        "cuda:1\n",
        " cpu",
        "cuda:" + "9" * 30,  # no GPU index is 30 digits long
        "cuda:64",
        "cuda:001",
        "cuda:",
        "cuda:-1",
        "cuda:\u0663",  # an Arabic-Indic digit: a regex \d takes it, torch does not
        "CPU",
    ],
)
def test_devices_are_matched_whole_and_gpu_indexes_bounded(device):
    with pytest.raises(ValidationError) as info:
        RunSpec(device=device)
    assert info.value.errors()[0]["loc"] == ("device",)
    assert "cuda:N" in str(info.value)


def test_status_terminal():
    assert RunStatus.queued not in TERMINAL and RunStatus.running not in TERMINAL
    assert all(RunStatus(s) in TERMINAL for s in ("succeeded", "failed", "cancelled", "diverged"))
    assert TERMINAL == set(RunStatus) - set(ACTIVE) and "stopped_early" in TERMINAL


def test_json_and_yaml_files_load(tmp_path):
    (tmp_path / "a.json").write_text(json.dumps({"lr": 0.01, "hidden": [64]}))
    (tmp_path / "b.yaml").write_text("lr: 0.01\nhidden: [64]\n")
    from_json = RunSpec(**load_spec_file(tmp_path / "a.json"))
    assert from_json == RunSpec(**load_spec_file(tmp_path / "b.yaml"))


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("list.yaml", "- 1\n- 2\n", "mapping"),
        ("bad.json", "{lr: ", "bad.json:1:2: not valid JSON"),
        ("bad.yaml", "lr: [1,\n", "not valid YAML"),
    ],
)
def test_bad_files_give_spec_errors(tmp_path, name, text, message):
    (tmp_path / name).write_text(text)
    with pytest.raises(SpecError, match=message):
        load_spec_file(tmp_path / name)


def test_a_yaml_syntax_error_is_one_line_naming_the_file_line_and_column(tmp_path):
    (tmp_path / "study.yaml").write_text("epochs: 3\nhidden: [64, 32\nlr: 0.01\n")
    with pytest.raises(SpecError) as info:
        load_spec_file(tmp_path / "study.yaml")
    message = str(info.value)
    assert "\n" not in message and "<unicode string>" not in message
    assert message.startswith(f"{tmp_path / 'study.yaml'}:3:3: not valid YAML: expected ','")


def test_an_unknown_field_says_what_it_may_have_meant():
    with pytest.raises(ValidationError) as info:
        RunSpec(epcohs=3)
    assert format_validation_error(info.value) == (
        "epcohs: Extra inputs are not permitted (did you mean 'epochs'?)"
    )
    with pytest.raises(ValidationError) as info:
        RunSpec(zzz=3)
    assert "did you mean" not in format_validation_error(info.value)


def test_missing_file(tmp_path):
    with pytest.raises(SpecError, match="cannot read"):
        load_spec_file(tmp_path / "nope.yaml")


def test_overrides_parse_yaml_values():
    assert parse_override("lr=0.01") == ("lr", 0.01)
    assert parse_override("hidden=[64, 32]") == ("hidden", [64, 32])
    assert parse_override("activation=tanh") == ("activation", "tanh")
    with pytest.raises(SpecError):
        parse_override("lr")
