"""The Redis key schema: every key mlplab uses, in one place.

{p}:run:{id}               hash    the run record (JSON fields: spec, varied, result);
                                   fused_group: the id its fused group's runs share (the API
                                   plans it, the worker records the group it trained in);
                                   checkpoint: the key of the file holding its group's state;
                                   stage: the stage number (2, 3, ...) of a run a staged
                                   sweep's stage move created (runstore/stages.py)
{p}:run:{id}:events        stream  epoch k at id k-0; status events at {last_epoch}-n
{p}:sweep:{id}             hash    the sweep record (JSON fields: spec, varied, run_ids)
{p}:sweep:{id}:events      stream  every event of the sweep's runs, with run_id, auto ids;
                                   `stage` events (no run_id) as a staged sweep moves on
{p}:sweep:{id}:stages      string  a staged sweep's stage record, JSON (runstore/stages.py);
                                   while it runs, the sweep's n_runs counts one extra run
{p}:owner:{owner}:runs     zset    run ids in creation order (score: {p}:created's, below)
{p}:owner:{owner}:sweeps   zset    sweep ids in creation order (score: {p}:created's)
{p}:sweeps                 zset    every sweep id in creation order: the admin's listing (sweeps
                                   made before it existed are listed by owner only)
{p}:created                string  the last score the creation-order zsets gave: a record's
                                   creation time in us, or one more than the last score when
                                   that is not later (runstore/records.py), so scores are unique
                                   and in creation order (records indexed before this key
                                   existed have their creation ms, all lower)
{p}:sweeps:staging         zset    running staged sweeps (score: start, ms): added when the
                                   stage record starts, removed in each move out of running;
                                   the repair pass finishes their interrupted stage changes
{p}:workers                zset    worker hostname -> last heartbeat (unix seconds)
{p}:worker:{hostname}      string  the worker's heartbeat JSON, expires with its TTL
{p}:leases                 zset    running run id -> lease expiry (Redis clock, ms); the run
                                   hash's `holder` names the worker process holding it, `claim`
                                   the token task that took it, `requeues` how often it was
                                   handed back or reaped, `reaped` how often its worker
                                   vanished (runstore/leases.py)
{p}:runs                   zset    every run id in creation order: the admin's listing
{p}:owner:{owner}:active   set     the owner's queued and running run ids (finished ones are
                                   pruned when counted): the max_queued quota's count
{p}:owner:{owner}:reserved string  runs being written by submissions in flight (quota lease,
                                   short TTL), so two submissions cannot both pass the quota
{p}:owner:{owner}:promised string  runs the owner's running staged sweeps may still create (each
                                   later stage's most runs), counted by the quota like queued
                                   ones; released as stages are created or the sweep ends
{p}:owner:{owner}:streams  zset    the owner's open SSE streams: lease token -> expiry (Redis ms),
                                   renewed while the stream runs (runstore/streams.py)
{p}:owner:{owner}:reserved_cost
                           string  param-epochs (parameters x epochs) of the runs submissions
                                   in flight are writing (the quota lease's, same TTL): the
                                   max_param_epochs budget's share of `reserved`
{p}:idem:{owner}:{sha256}  string  an Idempotency-Key the owner sent (its sha256 hex, so any
                                   header makes a safe name), JSON: state pending (being
                                   written; short TTL) or created (with the record's id; 24 h),
                                   kind (run, sweep), fingerprint of the body (runstore/
                                   idempotency.py)
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

Fair share (runstore/fairqueue.py):
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

Models (runstore/artifacts.py; the files are in the artifact store, artifacts/):
{p}:owner:{owner}:models   zset    the owner's stored models: run id -> when saved (Redis us,
                                   unique), oldest first: the order eviction takes them in
{p}:owner:{owner}:model_bytes
                           hash    run id -> "<bytes> <save id>" of each stored model: the
                                   max_artifact_bytes usage is their sum
{p}:model_limits           hash    owner -> max_artifact_bytes the API applied at their last
                                   submission; an override in the user record wins
A run hash's `model` field (JSON) says what became of its model: state stored (with the
save id, its files' bytes), evicted, deleted or failed (with the reason).

The cancel flag is the run hash's `cancel_requested` field, so it is read and written in the
same Lua scripts that move the status.

Lua scripts get every key name from here, too (rq's `Job.key_for` way), never by pasting
names together: the keys Python knows before the call go in KEYS; a key whose id the script
finds itself (a run id in a claim, an owner in a run hash) is a family prefix plus that id,
and the script reads the prefixes of the families it needs from ARGV[1], one JSON object made
by `Keys.lua_families` (`local F = cjson.decode(ARGV[1])`, then `F.run .. id`). The families:

run            {p}:run:            + run id     (`run_prefix`)
sweep          {p}:sweep:          + sweep id   (`sweep_prefix`)
user           {p}:user:           + user name  (`user_prefix`)
fair_queue     {p}:fair:q:         + owner      (`fair_queue_prefix`)
fair_running   {p}:fair:running:   + owner      (`fair_running_prefix`)
fair_claim     {p}:fair:claim:     + task id    (`fair_claim_prefix`)
events         :events, a suffix: a run's or sweep's key + it is its stream (`events_suffix`)
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

# Where every part looks for Redis unless MLPLAB_REDIS_URL (or --redis-url) says otherwise.
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"


@dataclass(frozen=True)
class Keys:
    """Key names under one prefix (tests use their own prefix and DB index)."""

    prefix: str = "mlplab"

    def run(self, run_id: str) -> str:
        """The run record hash."""
        return self.run_prefix() + run_id

    def run_prefix(self) -> str:
        """The run family: a run's hash is this + its id."""
        return f"{self.prefix}:run:"

    def run_events(self, run_id: str) -> str:
        """The run's event stream."""
        return self.run(run_id) + self.events_suffix()

    def events_suffix(self) -> str:
        """A run's or a sweep's key + this is its event stream."""
        return ":events"

    def sweep(self, sweep_id: str) -> str:
        """The sweep record hash."""
        return self.sweep_prefix() + sweep_id

    def sweep_prefix(self) -> str:
        """The sweep family: a sweep's hash is this + its id."""
        return f"{self.prefix}:sweep:"

    def sweep_events(self, sweep_id: str) -> str:
        """The stream carrying every event of the sweep's runs."""
        return self.sweep(sweep_id) + self.events_suffix()

    def sweep_stages(self, sweep_id: str) -> str:
        """A staged sweep's stage record."""
        return f"{self.prefix}:sweep:{sweep_id}:stages"

    def owner_runs(self, owner: str) -> str:
        """The owner's runs, newest last (score: creation order)."""
        return f"{self.prefix}:owner:{owner}:runs"

    def owner_sweeps(self, owner: str) -> str:
        """The owner's sweeps, newest last (score: creation order)."""
        return f"{self.prefix}:owner:{owner}:sweeps"

    def all_sweeps(self) -> str:
        """Every sweep id, newest last (score: creation order): the admin's listing."""
        return f"{self.prefix}:sweeps"

    def creation_order(self) -> str:
        """The last score the creation-order zsets gave (us)."""
        return f"{self.prefix}:created"

    def staged_running(self) -> str:
        """Running staged sweeps (score: start time in ms)."""
        return f"{self.prefix}:sweeps:staging"

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
        """Every run id, newest last (score: creation order)."""
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

    def owner_streams(self, owner: str) -> str:
        """The owner's open event streams: a zset of stream leases by expiry (Redis ms)."""
        return f"{self.prefix}:owner:{owner}:streams"

    def owner_reserved_cost(self, owner: str) -> str:
        """The param-epochs of the runs the owner's submissions in flight are writing."""
        return f"{self.prefix}:owner:{owner}:reserved_cost"

    def idempotency(self, owner: str, key: str) -> str:
        """The owner's claim on an Idempotency-Key (named by its sha256: any header is safe)."""
        digest = hashlib.sha256(key.encode()).hexdigest()
        return f"{self.prefix}:idem:{owner}:{digest}"

    def stats(self) -> str:
        """Running totals the worker keeps for /metrics (epochs, finished runs, durations)."""
        return f"{self.prefix}:stats"

    def user(self, name: str) -> str:
        """A user record hash."""
        return self.user_prefix() + name

    def user_prefix(self) -> str:
        """The user family: a user's hash is this + their name."""
        return f"{self.prefix}:user:"

    def users(self) -> str:
        """User names by creation time."""
        return f"{self.prefix}:users"

    def tokens(self) -> str:
        """Token hash -> user name."""
        return f"{self.prefix}:tokens"

    def fair(self, name: str) -> str:
        """A fair-share key: ready, vtime, clock, claims, parked, caps (or q:{owner}, ...)."""
        return f"{self.prefix}:fair:{name}"

    def fair_queue(self, owner: str) -> str:
        """The owner's pending groups, oldest first."""
        return self.fair_queue_prefix() + owner

    def fair_queue_prefix(self) -> str:
        """The fair_queue family: an owner's queue is this + the owner."""
        return self.fair("q:")

    def fair_running(self, owner: str) -> str:
        """Run ids dispatched for the owner and not finished."""
        return self.fair_running_prefix() + owner

    def fair_running_prefix(self) -> str:
        """The fair_running family: an owner's running set is this + the owner."""
        return self.fair("running:")

    def fair_claim(self, task_id: str) -> str:
        """The group a token task took."""
        return self.fair_claim_prefix() + task_id

    def fair_claim_prefix(self) -> str:
        """The fair_claim family: a token's claim is this + its task id."""
        return self.fair("claim:")

    def owner_models(self, owner: str) -> str:
        """The owner's stored models by when they were saved (Redis us), oldest first."""
        return f"{self.prefix}:owner:{owner}:models"

    def owner_model_bytes(self, owner: str) -> str:
        """Run id -> "<bytes> <save id>" of each of the owner's stored models."""
        return f"{self.prefix}:owner:{owner}:model_bytes"

    def model_limits(self) -> str:
        """Owner -> the max_artifact_bytes the API applied at their last submission."""
        return f"{self.prefix}:model_limits"

    def families(self) -> dict[str, str]:
        """Every key family a Lua script builds names in: its name -> its prefix (the
        `events` suffix: appended to a run's or sweep's key)."""
        return {
            "run": self.run_prefix(),
            "sweep": self.sweep_prefix(),
            "user": self.user_prefix(),
            "fair_queue": self.fair_queue_prefix(),
            "fair_running": self.fair_running_prefix(),
            "fair_claim": self.fair_claim_prefix(),
            "events": self.events_suffix(),
        }

    def lua_families(self, *names: str) -> str:
        """The named families' prefixes as the one ARGV a Lua script reads them from (JSON;
        in Lua `local F = cjson.decode(ARGV[1])`, then `F.run .. id`); KeyError for a name
        that is no family."""
        families = self.families()
        return json.dumps({name: families[name] for name in names}, separators=(",", ":"))

    def pattern(self) -> str:
        """A SCAN pattern matching every key under the prefix."""
        return f"{self.prefix}:*"
