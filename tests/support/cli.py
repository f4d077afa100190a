"""What the CLI tests share: the spec files they submit and how a failed command reads."""

RUN_YAML = "dataset: synthetic\nhidden: [16]\nepochs: 3\n"
SWEEP_YAML = RUN_YAML + "name: cli\ngrid:\n  activation: [relu, tanh]\n"
SPEC_FILES = {"run.yaml": RUN_YAML, "sweep.yaml": SWEEP_YAML}


def error_line(done, command):
    """The one stderr line a failed command prints."""
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"mlplab {command}: error: "), done.stderr
    return lines[0]
