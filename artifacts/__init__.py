"""Model files (safetensors weights and a JSON config) in a store the API and the workers
both reach; torch-free: it stores bytes. The directory store is the one implementation."""

from artifacts.store import (
    CONFIG_FILE,
    STATE_FILE,
    WEIGHT_FILES,
    ArtifactError,
    ArtifactMissing,
    ArtifactStore,
    DirectoryStore,
    StoredFile,
    default_artifact_dir,
)

__all__ = [
    "CONFIG_FILE",
    "STATE_FILE",
    "WEIGHT_FILES",
    "ArtifactError",
    "ArtifactMissing",
    "ArtifactStore",
    "DirectoryStore",
    "StoredFile",
    "default_artifact_dir",
]
