"""The Redis key schema: every key mlplab uses, in one place.

{p}:run:{id}               hash    the run record (JSON fields: spec, varied, result);
                                   fused_group: the id its fused group's runs share (the API
                                   plans it, the worker records the group it trained in);
                                   checkpoint: the key of the file holding its group's state
{p}:run:{id}:events        stream  epoch k at id k-0; status events at {last_epoch}-n
{p}:sweep:{id}             hash    the sweep record (JSON fields: spec, varied, run_ids)
{p}:sweep:{id}:events      stream  every event of the sweep's runs, with run_id, auto ids
{p}:owner:{owner}:runs     zset    run ids by creation time (ms)
{p}:owner:{owner}:sweeps   zset    sweep ids by creation time (ms)
{p}:workers                zset    worker hostname -> last heartbeat (unix seconds)
{p}:worker:{hostname}      string  the worker's heartbeat JSON, expires with its TTL

The cancel flag is the run hash's `cancel_requested` field, so it is read and written in the
same Lua scripts that move the status.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Keys:
    """Key names under one prefix (tests use their own prefix and DB index)."""

    prefix: str = "mlplab"

    def run(self, run_id: str) -> str:
        """The run record hash."""
        return f"{self.prefix}:run:{run_id}"

    def run_events(self, run_id: str) -> str:
        """The run's event stream."""
        return f"{self.prefix}:run:{run_id}:events"

    def sweep(self, sweep_id: str) -> str:
        """The sweep record hash."""
        return f"{self.prefix}:sweep:{sweep_id}"

    def sweep_events(self, sweep_id: str) -> str:
        """The stream carrying every event of the sweep's runs."""
        return f"{self.prefix}:sweep:{sweep_id}:events"

    def owner_runs(self, owner: str) -> str:
        """The owner's runs, newest last (score: creation time in ms)."""
        return f"{self.prefix}:owner:{owner}:runs"

    def owner_sweeps(self, owner: str) -> str:
        """The owner's sweeps (score: creation time in ms)."""
        return f"{self.prefix}:owner:{owner}:sweeps"

    def workers(self) -> str:
        """Worker hostnames scored by their last heartbeat."""
        return f"{self.prefix}:workers"

    def worker(self, hostname: str) -> str:
        """One worker's heartbeat payload."""
        return f"{self.prefix}:worker:{hostname}"

    def pattern(self) -> str:
        """A SCAN pattern matching every key under the prefix."""
        return f"{self.prefix}:*"
