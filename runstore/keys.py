"""The Redis key schema: every key mlplab uses, in one place.

{p}:run:{id}               hash    the run record (JSON fields: spec, varied, result);
                                   fused_group: the id its fused group's runs share (the API
                                   plans it, the worker records the group it trained in);
                                   checkpoint: the key of the file holding its group's state
{p}:run:{id}:events        stream  epoch k at id k-0; status events at {last_epoch}-n
{p}:sweep:{id}             hash    the sweep record (JSON fields: spec, varied, run_ids)
{p}:sweep:{id}:events      stream  every event of the sweep's runs, with run_id, auto ids;
                                   `stage` events (no run_id) as a staged sweep moves on
{p}:sweep:{id}:stages      string  a staged sweep's stage record, JSON (runstore/stages.py);
                                   while it runs, the sweep's n_runs counts one extra run
{p}:owner:{owner}:runs     zset    run ids by creation time (ms)
{p}:owner:{owner}:sweeps   zset    sweep ids by creation time (ms)
{p}:workers                zset    worker hostname -> last heartbeat (unix seconds)
{p}:worker:{hostname}      string  the worker's heartbeat JSON, expires with its TTL
{p}:leases                 zset    running run id -> lease expiry (Redis clock, ms); the run
                                   hash's `holder` names the worker process holding it, `claim`
                                   the token task that took it, `requeues` how often it was
                                   handed back or reaped, `reaped` how often its worker
                                   vanished (runstore/leases.py)
{p}:runs                   zset    every run id by creation time (ms): the admin's listing
{p}:owner:{owner}:active   set     the owner's queued and running run ids (finished ones are
                                   pruned when counted): the max_queued quota's count
{p}:owner:{owner}:reserved string  runs being written by submissions in flight (quota lease,
                                   short TTL), so two submissions cannot both pass the quota
{p}:owner:{owner}:promised string  runs the owner's running staged sweeps may still create (each
                                   later stage's most runs), counted by the quota like queued
                                   ones; released as stages are created or the sweep ends
{p}:stats                  hash    running totals for GET /metrics, kept by the worker's Lua:
                                   epochs (epochs appended), runs:<status> (runs reaching each
                                   terminal status), duration_count, duration_sum (seconds),
                                   duration_le:<bound> (runs of at most bound seconds, for
                                   bounds 1,5,15,60,300,900,3600,14400,86400); absent means 0

Users and tokens (runstore/users.py):
{p}:user:{name}            hash    name, token_hash (sha256 hex of the token; never the token),
                                   admin "0"/"1", priority (weight, default 1), created_at,
                                   revoked "0"/"1", and one field per overridden limit (max_*)
{p}:users                  zset    user names by creation time
{p}:tokens                 hash    sha256 hex of a live token -> user name

Fair share (runstore/fairqueue.py; the scheduler's Lua builds these names from the prefix):
{p}:fair:q:{owner}         list    the owner's pending groups, oldest first (JSON run id lists)
{p}:fair:ready             set     owners with pending groups
{p}:fair:vtime             hash    owner -> virtual time (runs dispatched / priority)
{p}:fair:clock             string  virtual time of the group dispatched last
{p}:fair:running:{owner}   set     run ids dispatched and not finished (pruned when counted)
{p}:fair:claim:{task_id}   string  the group a token task took (JSON); a redelivery resumes it
{p}:fair:claims            zset    claim (task id) -> lease expiry (ms), renewed by its worker;
                                   an expired one's unstarted runs are queued again
{p}:fair:parked            string  tokens that found only capped work, re-sent when a group ends
{p}:fair:caps              hash    owner -> max_running the API applied at their last submission
                                   ("none": no cap); an override in the user record wins

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

    def sweep_stages(self, sweep_id: str) -> str:
        """A staged sweep's stage record."""
        return f"{self.prefix}:sweep:{sweep_id}:stages"

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

    def leases(self) -> str:
        """Running run ids scored by their lease expiry (Redis clock, ms)."""
        return f"{self.prefix}:leases"

    def all_runs(self) -> str:
        """Every run id (score: creation time in ms)."""
        return f"{self.prefix}:runs"

    def owner_active(self, owner: str) -> str:
        """The owner's queued and running run ids."""
        return f"{self.prefix}:owner:{owner}:active"

    def owner_reserved(self, owner: str) -> str:
        """How many runs the owner's submissions in flight are writing."""
        return f"{self.prefix}:owner:{owner}:reserved"

    def owner_promised(self, owner: str) -> str:
        """How many runs the owner's running staged sweeps may still create."""
        return f"{self.prefix}:owner:{owner}:promised"

    def stats(self) -> str:
        """Running totals the worker keeps for /metrics (epochs, finished runs, durations)."""
        return f"{self.prefix}:stats"

    def user(self, name: str) -> str:
        """A user record hash."""
        return f"{self.prefix}:user:{name}"

    def users(self) -> str:
        """User names by creation time."""
        return f"{self.prefix}:users"

    def tokens(self) -> str:
        """Token hash -> user name."""
        return f"{self.prefix}:tokens"

    def fair(self, name: str) -> str:
        """A fair-share key: q:{owner}, ready, vtime, clock, running:{owner}, claim:{id}, ..."""
        return f"{self.prefix}:fair:{name}"

    def pattern(self) -> str:
        """A SCAN pattern matching every key under the prefix."""
        return f"{self.prefix}:*"
