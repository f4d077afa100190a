"""Test hosts made of Linux network namespaces (iproute2): a small network of its own per test.

    driver (pytest, root namespace) ── link d ──┐
                                                A  (Redis, the API)
    B (a worker) ─────────────────── link b ────┤
    C (a worker) ─────────────────── link c ────┘

Each host is a namespace with its own loopback and its own hostname (the processes start in a
fresh UTS namespace too, so `%h` and the lease holder ids differ as on real boxes). Each link
is a veth pair, a /30 of a private 10.x.y.0/24 drawn per fabric and checked against every route
of the root namespace, so a leftover or a neighbour can't collide. B and C reach Redis and the
API only over their own link to A: `link_down("b")` cuts B off and nothing else.

The driver reaches A over a veth link of its own rather than running its calls inside A with
`ip netns exec`: the test's HTTP, SSE and Redis clients then stay plain in-process objects
(threads, generators, assertions on live records), and cutting B's or C's link never cuts
the observer off.

Nothing outside the fabric is touched: the only root-namespace change is the driver's end of
link d (one address, its connected /30 route), which goes with A's namespace. Teardown kills
every process in the namespaces (by pid, `ip netns pids`) and deletes them; `sweep_stale()`
does the same for fabrics left by a test process that died (its pid is in the names).
"""

from __future__ import annotations

import ipaddress
import os
import random
import secrets
import shutil
import signal
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

PREFIX = "mlpt-"  # every namespace this module makes: mlpt-<test pid>-<token>-<host>


def available() -> str | None:
    """Why the fabric can't be built here (not root, no `ip`/`unshare`), or None when it can."""
    if os.geteuid() != 0:
        return "network namespaces need root"
    missing = [tool for tool in ("ip", "unshare", "hostname") if shutil.which(tool) is None]
    return f"missing {', '.join(missing)}" if missing else None


def ip(*args: str, check: bool = True) -> str:
    """Run `ip ARGS` and return its output."""
    done = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30)
    if check and done.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {done.stderr.strip()}")
    return done.stdout


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _namespaces() -> list[str]:
    return [line.split()[0] for line in ip("netns", "list").splitlines() if line.strip()]


def kill_namespace(ns: str) -> None:
    """SIGKILL every process in the namespace, then delete it (its veth pairs go with it)."""
    for pid in ip("netns", "pids", ns, check=False).split():
        try:
            os.kill(int(pid), signal.SIGKILL)
        except ProcessLookupError:
            pass
    ip("netns", "del", ns, check=False)


def sweep_stale() -> list[str]:
    """Delete the namespaces of fabrics whose test process is gone; their names."""
    stale = []
    for ns in _namespaces():
        parts = ns.removeprefix(PREFIX).split("-")
        if ns.startswith(PREFIX) and parts[0].isdigit() and not _alive(int(parts[0])):
            kill_namespace(ns)
            stale.append(ns)
    return stale


def _free_subnet() -> ipaddress.IPv4Network:
    """A 10.x.y.0/24 that no route or address of the root namespace overlaps."""
    used = [
        ipaddress.ip_network(line.split()[0], strict=False)
        for line in ip("-4", "route", "show", "table", "all").splitlines()
        if line and line.split()[0][0].isdigit()
    ]
    used += [
        ipaddress.ip_interface(word).network
        for line in ip("-4", "-o", "addr").splitlines()
        for word in line.split()[3:4]
    ]
    for _ in range(1000):
        net = ipaddress.ip_network(f"10.{random.randint(64, 250)}.{random.randint(0, 255)}.0/24")
        if not any(net.overlaps(other) for other in used if other.prefixlen > 0):
            return net
    raise RuntimeError("no free 10.x.y.0/24 for the test fabric")


@dataclass
class Host:
    """One test host: a namespace, its hostname, the processes started in it."""

    name: str
    ns: str
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def spawn(
        self, argv: Sequence[str], *, env: Mapping[str, str], log: Path, cwd: Path | None = None
    ) -> subprocess.Popen[bytes]:
        """Start argv inside this host (its network and hostname), output appended to log."""
        wrapped = ["ip", "netns", "exec", self.ns, "unshare", "--uts", "--", "sh", "-c"]
        wrapped += ['hostname "$0" && exec "$@"', self.name, *argv]
        with open(log, "ab") as out:  # the child keeps its own fd
            proc = subprocess.Popen(
                wrapped, cwd=cwd, env=dict(env), stdout=out, stderr=subprocess.STDOUT
            )
        self.procs.append(proc)
        return proc

    def pids(self) -> list[int]:
        """Every process in this host's namespace now."""
        return [int(p) for p in ip("netns", "pids", self.ns, check=False).split()]

    def kill_all(self) -> None:
        """SIGKILL everything on the host at once, as a power cut would; wait for ours."""
        for pid in self.pids():
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        for proc in self.procs:
            proc.wait(timeout=60)
        self.procs.clear()


class Fabric:
    """Hosts A, B, C and the driver's link to A; `close()` tears it all down."""

    def __init__(self, hosts: Sequence[str] = ("b", "c")) -> None:
        sweep_stale()
        token = secrets.token_hex(2)
        base = f"{PREFIX}{os.getpid()}-{token}"
        net = _free_subnet()
        self.subnet = net
        self.hosts = {"a": Host(f"host-a-{token}", f"{base}-a")}
        self.hosts.update({h: Host(f"host-{h}-{token}", f"{base}-{h}") for h in hosts})
        self._links: dict[str, str] = {}  # link name -> A's end of it
        self.addr: dict[str, str] = {}  # host (and "driver") -> its address; "a@X": A's on X
        try:
            for host in self.hosts.values():
                ip("netns", "add", host.ns)
                ip("-n", host.ns, "link", "set", "lo", "up")
            self._link("d", None, f"mlpt{token}d", net, 0)
            for i, name in enumerate(hosts, start=1):
                self._link(name, self.hosts[name].ns, "eth0", net, 4 * i)
        except Exception:
            self.close()
            raise

    def _link(self, name: str, peer_ns: str | None, peer_if: str, net, offset: int) -> None:
        """A veth pair A <-> peer (None: the root namespace), a /30 at net + offset."""
        a_ns, a_if = self.hosts["a"].ns, f"to-{name}"
        a_addr, peer_addr = net[offset + 1], net[offset + 2]
        target = ["netns", peer_ns] if peer_ns else []
        ip("link", "add", a_if, "netns", a_ns, "type", "veth", "peer", "name", peer_if, *target)
        ip("-n", a_ns, "addr", "add", f"{a_addr}/30", "dev", a_if)
        ip("-n", a_ns, "link", "set", a_if, "up")
        ns_args = ["-n", peer_ns] if peer_ns else []
        ip(*ns_args, "addr", "add", f"{peer_addr}/30", "dev", peer_if)
        ip(*ns_args, "link", "set", peer_if, "up")
        self._links[name] = a_if
        self.addr[f"a@{name}"], self.addr[name if peer_ns else "driver"] = (
            str(a_addr),
            str(peer_addr),
        )

    def a_seen_from(self, host: str) -> str:
        """A's address on the link to host ("driver" for the test itself)."""
        return self.addr[f"a@{'d' if host == 'driver' else host}"]

    def link_down(self, host: str) -> None:
        """Cut host's link at A's end, as a pulled cable: packets are lost, nothing is reset."""
        ip("-n", self.hosts["a"].ns, "link", "set", self._links[host], "down")

    def link_up(self, host: str) -> None:
        """Plug host's link back in."""
        ip("-n", self.hosts["a"].ns, "link", "set", self._links[host], "up")

    def close(self) -> None:
        """Kill every process on every host and delete the namespaces (and so the links)."""
        for host in self.hosts.values():
            for proc in host.procs:
                if proc.poll() is None:
                    proc.terminate()
            for proc in host.procs:
                try:
                    proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    pass
            kill_namespace(host.ns)
            for proc in host.procs:
                proc.wait(timeout=60)
            host.procs.clear()
