"""mlplab: the client, the CLI and the server launcher.

`from mlplab import Client` loads only the thin httpx client, on first use; importing the
package itself loads nothing heavy (no torch, fastapi or celery).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mlplab.client import Client, MlplabError

__all__ = ["Client", "MlplabError"]


def __getattr__(name: str) -> Any:
    """Load the client lazily, so `mlplab --help` does not pay for httpx."""
    if name in __all__:
        from mlplab import client

        return getattr(client, name)
    raise AttributeError(f"module 'mlplab' has no attribute {name!r}")
