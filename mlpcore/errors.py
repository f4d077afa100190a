"""mlpcore's exceptions; one base class so callers can catch all of them.

MlpcoreError
├── SpecError          a spec or sweep that cannot be run as written
├── DatasetError       a dataset that cannot be loaded (missing files, unknown name)
├── CheckpointError    a checkpoint that does not fit the run it should resume
└── DeviceError        a device that is asked for but not present
"""


class MlpcoreError(Exception):
    """Base of every error mlpcore raises on purpose."""


class SpecError(MlpcoreError):
    """A run or sweep spec that is invalid."""


class DatasetError(MlpcoreError):
    """A dataset that cannot be loaded."""


class CheckpointError(MlpcoreError):
    """A checkpoint that cannot resume the given run."""


class DeviceError(MlpcoreError):
    """A requested device that this machine does not have."""
