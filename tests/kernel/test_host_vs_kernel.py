"""nfemu.host against the real kernel: build namespaces with veth links, addresses and routes,
read them back with ``ip -j``, and compare ``ip -j route get`` with Host.route_lookup.

No packet is sent: only rtnetlink questions are asked. Every namespace is deleted.

Re-record the fixtures of tests/test_host.py (as root):
    python3 -m tests.kernel.test_host_vs_kernel --record
"""
from __future__ import annotations

import ipaddress
import itertools
import json
import os
import random
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

import pytest

from nfemu.host import Host, ip4

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "host"
_counter = itertools.count()

# Each scenario: the peer devices live in a second namespace so that links have carrier.
SCENARIOS: dict[str, dict] = {
    "basic": {
        "links": ["eth0", "eth1", "eth2", "eth3"],
        "forward": True,
        "setup": [
            "addr add 192.168.0.2/24 dev eth0",
            "addr add 192.168.0.3/24 dev eth0",          # secondary
            "addr add 192.168.7.9/24 dev eth0",          # second primary, other subnet
            "addr add 10.0.0.5/16 dev eth1",
            "addr add 169.254.1.1/16 scope link dev eth2",
            "addr add 10.0.9.9/32 dev lo",
            "addr add 10.50.0.1/16 dev lo",              # a local /16 route
            "route add default via 192.168.0.1",
            "route add 172.20.0.0/16 via 10.0.0.1 metric 10",
            "route add 172.20.0.0/16 via 192.168.0.1 metric 5",
            "route add 172.20.5.0/24 via 10.0.0.1",
            "route add 10.50.1.0/24 via 192.168.0.1",    # more specific than the local /16
            "route add blackhole 10.99.0.0/16",
            "route add unreachable 10.98.0.0/16",
            "route add prohibit 10.97.0.0/16",
            "route add throw 10.96.0.0/16",
            "route add 198.51.100.0/24 dev eth3",        # device without address
            "route add 203.0.113.0/24 via 169.254.0.1 dev eth2",  # link-scope address only
            "route add 198.18.0.0/15 via 10.0.0.1 src 10.0.9.9",
            "route add 100.64.0.0/10 dev eth1 src 192.168.0.2",
            "route add 192.168.0.3/32 via 10.0.0.1",     # same /32 as a local route
        ],
        "queries": [
            *[[a] for a in (
                "8.8.8.8 172.20.1.1 172.20.5.5 10.99.1.1 10.98.1.1 10.97.1.1 10.96.1.1 "
                "198.51.100.7 203.0.113.9 198.18.3.4 100.64.1.1 224.0.0.5 239.1.2.3 "
                "255.255.255.255 192.168.0.255 192.168.7.255 10.0.255.255 127.0.0.5 "
                "127.255.255.255 0.0.0.0 0.1.2.3 192.168.0.2 192.168.0.3 192.168.7.9 10.0.0.5 "
                "10.0.9.9 10.50.1.7 10.50.2.7 10.0.0.0 192.168.0.0 192.168.0.77 192.168.7.77 "
                "10.0.77.1 169.254.9.9").split()],
            ["8.8.8.8", "from", "10.0.0.5"],
            ["8.8.8.8", "from", "1.2.3.4"],
            ["8.8.8.8", "from", "127.0.0.9"],
            ["224.0.0.5", "from", "10.0.0.5"],
            ["8.8.8.8", "oif", "eth1"],
            ["10.0.77.1", "oif", "eth1"],
            ["10.0.77.1", "oif", "eth0"],
            ["198.51.100.7", "oif", "eth3"],
            ["224.0.0.5", "oif", "eth1"],
            ["255.255.255.255", "oif", "eth2"],
            ["8.8.8.8", "from", "10.0.0.9", "iif", "eth1"],
            ["192.168.0.2", "from", "10.0.0.9", "iif", "eth1"],
            ["192.168.0.3", "from", "10.0.0.9", "iif", "eth1"],
            ["10.0.9.9", "from", "10.0.0.9", "iif", "eth1"],
            ["10.99.3.3", "from", "10.0.0.9", "iif", "eth1"],
            ["10.98.3.3", "from", "10.0.0.9", "iif", "eth1"],
            ["10.97.3.3", "from", "10.0.0.9", "iif", "eth1"],
            ["10.96.3.3", "from", "10.0.0.9", "iif", "eth1"],
            ["8.8.8.8", "from", "10.0.0.5", "iif", "eth1"],
            ["8.8.8.8", "iif", "eth1"],
            ["127.0.0.1", "from", "10.0.0.9", "iif", "eth1"],
            ["8.8.8.8", "from", "127.0.0.1", "iif", "eth1"],
            ["192.168.0.255", "from", "192.168.0.77", "iif", "eth0"],
            ["255.255.255.255", "from", "192.168.0.77", "iif", "eth0"],
            ["172.20.5.5", "from", "192.168.0.77", "iif", "eth0"],
            ["10.0.3.3", "from", "10.0.0.9", "iif", "eth1"],
            ["8.8.8.8", "from", "0.1.2.3", "iif", "eth1"],
            ["0.1.2.3", "from", "10.0.0.9", "iif", "eth1"],
            ["0.0.0.0", "from", "10.0.0.9", "iif", "eth1"],
            ["0.0.0.0", "iif", "eth1"],
            ["224.0.0.1", "from", "10.0.0.9", "iif", "eth1"],
            ["224.0.0.5", "from", "10.0.0.9", "iif", "eth1"],
            ["10.99.0.1", "oif", "eth2"],
            ["237.1.2.3", "oif", "eth3"],
            ["8.8.8.8", "from", "192.168.0.3"],
        ],
    },
    "noforward": {
        "links": ["eth0"],
        "forward": False,
        "setup": [
            "addr add 10.1.2.3/24 dev eth0",
            "route add default via 10.1.2.1",
        ],
        "queries": [
            ["8.8.8.8"], ["10.1.2.3"], ["10.1.2.255"], ["10.1.2.77"],
            ["8.8.8.8", "from", "10.1.2.9", "iif", "eth0"],
            ["10.1.2.3", "from", "10.1.2.9", "iif", "eth0"],
            ["10.1.2.200", "from", "10.1.2.9", "iif", "eth0"],
        ],
    },
    # what Host.from_options(["eth0=192.168.0.2/24", "eth1=10.0.0.5/16,10.0.0.6/16"],
    # local_ips=["10.96.0.10"], default_gateway="192.168.0.1") builds
    "options": {
        "links": ["eth0", "eth1"],
        "forward": True,
        "setup": [
            "addr add 192.168.0.2/24 dev eth0",
            "addr add 10.0.0.5/16 dev eth1",
            "addr add 10.0.0.6/16 dev eth1",
            "addr add 10.96.0.10/32 dev lo",
            "route add default via 192.168.0.1",
        ],
        "queries": [["8.8.8.8"], ["10.0.3.3"], ["10.96.0.10"], ["192.168.0.255"]],
    },
}

OPTIONS_ARGS = dict(ifaces=["eth0=192.168.0.2/24", "eth1=10.0.0.5/16,10.0.0.6/16"],
                    local_ips=["10.96.0.10"], default_gateway="192.168.0.1")

_ERRNO = {"Network is unreachable": "ENETUNREACH", "No route to host": "EHOSTUNREACH",
          "Invalid argument": "EINVAL", "Permission denied": "EACCES",
          "No such device": "ENODEV", "Cannot find device": "ENODEV"}


def _ip(ns: str, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    run = subprocess.run(["ip", "-n", ns, *args], capture_output=True, text=True, timeout=30)
    if check and run.returncode != 0:
        raise RuntimeError(f"ip -n {ns} {' '.join(args)}: {run.stderr.strip()}")
    return run


@contextmanager
def scenario_netns(spec: dict):
    """A namespace built from a scenario (its peers in a second one); both always deleted."""
    base = f"nfh-{os.getpid()}-{next(_counter)}"
    ns, peer = base, base + "-p"
    made = []
    try:
        for n in (ns, peer):
            subprocess.run(["ip", "netns", "add", n], check=True, timeout=30)
            made.append(n)
        _ip(ns, "link", "set", "lo", "up")
        for i, link in enumerate(spec["links"]):
            _ip(ns, "link", "add", link, "type", "veth", "peer", "name", f"p{i}", "netns", peer)
            _ip(ns, "link", "set", link, "up")
            _ip(peer, "link", "set", f"p{i}", "up")
        subprocess.run(["ip", "netns", "exec", ns, "sysctl", "-qw",
                        f"net.ipv4.ip_forward={1 if spec['forward'] else 0}"], check=True,
                       timeout=30)
        for cmd in spec["setup"]:
            _ip(ns, *cmd.split())
        yield ns
    finally:
        for n in made:
            subprocess.run(["ip", "netns", "del", n], check=False, timeout=30)


def dump(ns: str) -> tuple[str, str]:
    return (_ip(ns, "-j", "addr", "show").stdout, _ip(ns, "-j", "route", "show", "table", "all").stdout)


def kernel_route_get(ns: str, query: list[str]) -> dict:
    """``ip -j route get QUERY`` reduced to what Host.route_lookup answers."""
    run = _ip(ns, "-j", "route", "get", *query, check=False)
    if run.returncode != 0:
        msg = run.stderr.strip().rsplit(":", 1)[-1].strip()
        return {"error": _ERRNO.get(msg, msg)}
    r = json.loads(run.stdout)[0]
    out = {"error": None, "type": r.get("type", "unicast"), "dev": r.get("dev"),
           "gateway": r.get("gateway")}
    if "iif" not in query:
        out["prefsrc"] = r.get("prefsrc")
    return out


def nfemu_route_get(host: Host, query: list[str]) -> dict:
    dst = ip4(query[0])
    opts = dict(zip(query[1::2], query[2::2]))
    res = host.route_lookup(dst, src=ip4(opts.get("from", "0.0.0.0")), iif=opts.get("iif"),
                            oif=opts.get("oif"))
    if not res.ok:
        return {"error": res.error}
    out = {"error": None, "type": res.type.value, "dev": res.dev,
           "gateway": None if res.gateway is None else str(ipaddress.IPv4Address(res.gateway))}
    if "iif" not in opts:
        # ip route get prints the source as "from" when given, "prefsrc" when chosen
        out["prefsrc"] = None if "from" in opts else (
            str(ipaddress.IPv4Address(res.prefsrc)) if res.prefsrc else None)
    return out


def kernel_answers(ns: str, queries: list[list[str]]) -> list[dict]:
    return [{"query": q, "answer": kernel_route_get(ns, q)} for q in queries]


def sweep(host: Host, seed: int, n: int = 150) -> list[list[str]]:
    """Destinations around every route's edges plus random ones."""
    rnd = random.Random(seed)
    addrs = set()
    for r in host.routes:
        if r.family != "inet":
            continue
        size = 1 << (32 - r.prefixlen)
        for a in (r.dst, r.dst + 1, r.dst + size - 1, r.dst + size, r.dst - 1):
            if 0 < a < 2 ** 32:
                addrs.add(a)
    addrs |= {rnd.getrandbits(32) for _ in range(n)}
    queries = [[str(ipaddress.IPv4Address(a))] for a in sorted(addrs)]
    devs = [i.name for i in host.interfaces if i.name != "lo"]
    for a in rnd.sample(sorted(addrs), min(40, len(addrs))):
        queries.append([str(ipaddress.IPv4Address(a)), "from", "10.77.0.1", "iif", rnd.choice(devs)])
        queries.append([str(ipaddress.IPv4Address(a)), "oif", rnd.choice(devs)])
    return queries


def record() -> None:
    FIXTURES.mkdir(parents=True, exist_ok=True)
    for name, spec in SCENARIOS.items():
        with scenario_netns(spec) as ns:
            addrs, routes = dump(ns)
            answers = kernel_answers(ns, spec["queries"])
            local = _ip(ns, "route", "show", "table", "local").stdout
        (FIXTURES / f"{name}.addrs.json").write_text(addrs)
        (FIXTURES / f"{name}.routes.json").write_text(routes)
        (FIXTURES / f"{name}.local.txt").write_text(local)
        (FIXTURES / f"{name}.queries.json").write_text(json.dumps(
            {"ip_forward": spec["forward"], "answers": answers}, indent=1) + "\n")
        print(f"recorded {name}: {len(answers)} answers")


# ---------------------------------------------------------------------- live tests
@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_route_get_matches_kernel(kernel, name):
    spec = SCENARIOS[name]
    with scenario_netns(spec) as ns:
        addrs, routes = dump(ns)
        host = Host.from_ip_json(addrs, routes, ip_forward=spec["forward"])
        queries = spec["queries"] + sweep(host, seed=len(name))
        kern = kernel_answers(ns, queries)
    diffs = [(k["query"], k["answer"], nfemu_route_get(host, k["query"])) for k in kern
             if nfemu_route_get(host, k["query"]) != k["answer"]]
    assert not diffs, "\n".join(f"{' '.join(q)}: kernel {a} nfemu {b}" for q, a, b in diffs[:20])


def _inet_routes(host: Host) -> set[str]:
    return {str(r) for r in host.routes if r.family == "inet"}


def test_from_options_builds_the_kernels_tables(kernel):
    spec = SCENARIOS["options"]
    with scenario_netns(spec) as ns:
        addrs, routes = dump(ns)
    real = Host.from_ip_json(addrs, routes)
    built = Host.from_options(**OPTIONS_ARGS)
    assert _inet_routes(built) == _inet_routes(real)
    for iface in built.interfaces:
        assert iface.inet() == real.interface(iface.name).inet()


def test_address_order_and_secondaries(kernel):
    """__inet_insert_ifa: scope-ordered primaries, secondaries last."""
    spec = {"links": ["eth0"], "forward": True, "setup": [
        "addr add 10.1.0.1/24 dev eth0", "addr add 10.1.0.2/24 dev eth0",
        "addr add 10.2.0.1/24 dev eth0", "addr add 10.3.0.1/24 scope link dev eth0",
        "addr add 10.4.0.1/24 scope host dev eth0", "addr add 10.5.0.1/16 dev eth0",
        "addr add 10.5.0.2/24 dev eth0", "addr add 127.0.0.9/8 dev lo",
        "addr add 10.6.0.1/32 dev lo"]}
    with scenario_netns(spec) as ns:
        real = Host.from_ip_json(*dump(ns))
    built = Host.from_options(
        ["eth0=10.1.0.1/24,10.1.0.2/24,10.2.0.1/24"], local_ips=["127.0.0.9/8", "10.6.0.1"])
    assert built.interface("lo").inet() == real.interface("lo").inet()
    # scope link/host addresses cannot be given as options; check the insertion rule directly
    from nfemu.host import IfAddr, _add_addr
    lst: list[IfAddr] = []
    for a in real.interface("eth0").inet():
        _add_addr(lst, IfAddr("inet", a.addr, a.prefixlen, a.broadcast, a.scope, False, a.label),
                  False)
    # the kernel's list is the insertion result when inserted in the setup order
    order = [ip4(c.split()[2].split("/")[0]) for c in spec["setup"] if c.endswith("eth0")]
    lst = []
    by_addr = {a.addr: a for a in real.interface("eth0").inet()}
    for a in order:
        x = by_addr[a]
        _add_addr(lst, IfAddr("inet", x.addr, x.prefixlen, x.broadcast, x.scope, False, x.label),
                  False)
    assert tuple(lst) == real.interface("eth0").inet()
    # and fib_add_ifaddr gives the kernel's proto-kernel routes for these addresses
    from nfemu.host import _kernel_routes
    assert {str(r) for r in _kernel_routes(real.interfaces)} == {
        str(r) for r in real.routes if r.family == "inet" and r.protocol == "kernel"}


if __name__ == "__main__":
    if "--record" in sys.argv:
        record()
    else:
        print(__doc__)


@pytest.mark.parametrize("localnet", [0, 1])
def test_route_localnet_matches_kernel(kernel, localnet):
    """127/8 sources and destinations with net.ipv4.conf.all.route_localnet off and on
    (kube-proxy turns it on for NodePorts on 127.0.0.1): martian, or routed like any other
    address (ip_route_input_slow; __mkroute_output for a loopback source leaving a device)."""
    spec = {"links": ["eth0"], "forward": True,
            "setup": ["addr add 192.168.0.2/24 dev eth0", "route add default via 192.168.0.1"]}
    with scenario_netns(spec) as ns:
        for conf in ("all", "eth0", "lo"):
            subprocess.run(["ip", "netns", "exec", ns, "sysctl", "-qw",
                            f"net.ipv4.conf.{conf}.route_localnet={localnet}"], check=True,
                           timeout=30)
        addrs, routes = dump(ns)
        host = Host.from_ip_json(addrs, routes, route_localnet=bool(localnet))
        queries = [["10.244.1.5", "from", "127.0.0.1"], ["127.0.0.1"],
                   ["8.8.8.8", "from", "127.0.0.5"],
                   ["127.0.0.1", "from", "192.168.0.9", "iif", "eth0"],
                   ["10.9.9.9", "from", "127.0.0.1", "iif", "eth0"],
                   ["192.168.0.2", "from", "127.0.0.1", "iif", "eth0"],
                   ["10.244.1.5", "from", "127.0.0.1", "oif", "eth0"]]
        kern = kernel_answers(ns, queries)
    diffs = [(k["query"], k["answer"], nfemu_route_get(host, k["query"])) for k in kern
             if nfemu_route_get(host, k["query"]) != k["answer"]]
    assert not diffs, "\n".join(f"{' '.join(q)}: kernel {a} nfemu {b}" for q, a, b in diffs)
    # the switch matters for these queries: the kernel answers differ between 0 and 1
    changed = kern[3]["answer"]          # 127.0.0.1 arriving on eth0
    assert (changed["error"] is None) == bool(localnet), kern
