#!/usr/bin/env python3
"""Load each kube-proxy shaped restore input of this directory into a real kernel and save
what the kernel kept: the node dumps the kube-proxy scenario tests trace
(tests/eval/test_kube_scenarios.py).

Usage (as root, on a Linux host with iptables-nft, nfacct and iproute2):

    python3 corpus/kube-nodes/make.py            # every *.rules here
    python3 corpus/kube-nodes/make.py etp-local  # only the named cases
    python3 corpus/kube-nodes/make.py --rewrite  # rewrite even when only '#' lines changed

Every run builds the node in a brand-new network namespace (``nfemu-kube-nodes-<pid>-<n>``)
and deletes it afterwards (also on SIGTERM/SIGHUP or an error):

* the node's network: ``eth0`` with 192.168.0.2/24 (the node IP) and 192.168.1.2/24 (a
  second node IP), ``cni0`` (a bridge) with 10.244.1.254/24, this node's pod subnet, a default
  route via 192.168.0.1 and the rest of the pod network, 10.244.0.0/16, via the next node
  192.168.0.3. The peers of the veth devices live in a second namespace, deleted with the
  first. IPv6 is off so the dumps stay IPv4 only, the MAC addresses are fixed, and the
  bridge does no multicast snooping (it would send an IGMP report through OUTPUT, whose
  policy counter iptables-nft-save prints), so that a rerun gives the same files. ``net.ipv4.conf.all.route_localnet`` is set to 1 as kube-proxy
  does when localhost NodePorts are on (the iproute2 dumps do not show sysctls).
* the two nfacct objects kube-proxy's rules name (``ct_state_invalid_dropped_pkts`` and
  ``localhost_nps_accepted_pkts``); without them the kernel refuses the rules (RULE_APPEND
  ENOENT, as corpus/cases/kube/nfacct-invalid-drop shows).

Then, per case, ``iptables-nft-restore < NAME.rules`` and ``iptables-nft-save > NAME.nft.save``
(a failed restore writes ``NAME.nft.err`` with the exit code and stderr instead). Once per run
it also writes ``node.addrs.json`` (``ip -j -p addr show``) and ``node.routes.json``
(``ip -j -p route show table all``) of that node, for ``Host.from_ip_json`` / ``nfemu trace
--addrs/--routes``. An output whose lines not starting with '#' are unchanged is left alone, so
a rerun does not churn the dated header lines.

The ``*.rules`` files are the source of truth. They follow kube-proxy's iptables proxier
(pkg/proxy/iptables/proxier.go, v1.29+ shapes: ``-m tcp -p tcp`` order, KUBE-EXT/KUBE-SVL/
KUBE-FW chains, ``MASQUERADE --random-fully``, chain names from the same
sha256/base32 hash of "ns/svc:port" + protocol [+ "ip:port"]) and mirror the services of
kube-proxy's own packet-flow tests (pkg/proxy/iptables/proxier_test.go):

* ``clusterip-general``: TestClusterIPGeneral (one and two endpoints, a targetPort, TCP, UDP
  and SCTP on port 53, hairpin).
* ``loadbalancer-sourceranges``: TestLoadBalancer (two LB IPs, loadBalancerSourceRanges
  192.168.0.0/24 and 203.0.113.0/25, which hold the node IP, so the LB IPs are allowed as
  sources too).
* ``nodeport-localhost``: TestNodePorts, IPv4 with localhost NodePorts on, as kube-proxy
  writes it when the nfacct counters are not available (no ``-m nfacct`` matches).
* ``nodeport-nfacct``: the same service as kube-proxy v1.29+ writes it when they are
  (``-m nfacct`` on the KUBE-FORWARD INVALID rule and an extra KUBE-NODEPORTS rule for
  127.0.0.0/8 that only counts; both jump where the general rule does).
* ``etp-local``: TestExternalTrafficPolicyLocal with the health check node port of
  TestHealthCheckNodePort, on a node whose filter INPUT policy is DROP with a few
  administrator rules after kube-proxy's jumps.

Standard library only.
"""
from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
TIMEOUT = 60
ENV = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
       "LC_ALL": "C", "LANG": "C"}
NFACCT_OBJECTS = ("ct_state_invalid_dropped_pkts", "localhost_nps_accepted_pkts")

_counter = 0
_live: list[str] = []


def run(argv: list[str], stdin: bytes = b"", check: bool = True) -> subprocess.CompletedProcess:
    """Run a command; with ``check`` a non-zero exit raises with its stderr."""
    p = subprocess.run(argv, input=stdin, capture_output=True, env=ENV, timeout=TIMEOUT,
                       check=False)
    if check and p.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed ({p.returncode}): "
                           + p.stderr.decode(errors="replace"))
    return p


def _new_ns(tag: str) -> str:
    global _counter
    _counter += 1
    name = f"nfemu-kube-nodes-{os.getpid()}-{_counter}{tag}"
    run(["ip", "netns", "add", name])
    _live.append(name)
    return name


def _del_ns(name: str) -> None:
    if name in _live:
        run(["ip", "netns", "del", name], check=False)
        _live.remove(name)


class Node:
    """A namespace set up as the kube node described in the module docstring, with a second
    namespace holding the far ends of its veth devices; both deleted on exit."""

    def __enter__(self) -> "Node":
        self.ns = _new_ns("")
        self.wire = _new_ns("w")
        ns, wire = self.ns, self.wire
        for target in (ns, wire):
            self.sysctl(target, "net.ipv6.conf.all.disable_ipv6=1",
                        "net.ipv6.conf.default.disable_ipv6=1")
            run(["ip", "-n", target, "link", "set", "lo", "up"])
        self.sysctl(ns, "net.ipv4.ip_forward=1", "net.ipv4.conf.all.route_localnet=1")
        ip = ["ip", "-n", ns]
        run(ip + ["link", "add", "eth0", "address", "02:00:00:00:00:02", "type", "veth",
                  "peer", "name", "up0", "address", "02:00:00:00:00:01", "netns", wire])
        run(ip + ["addr", "add", "192.168.0.2/24", "dev", "eth0"])
        run(ip + ["addr", "add", "192.168.1.2/24", "dev", "eth0"])
        run(ip + ["link", "add", "cni0", "address", "02:00:00:00:01:fe", "type", "bridge",
                  "mcast_snooping", "0"])
        run(ip + ["addr", "add", "10.244.1.254/24", "dev", "cni0"])
        run(ip + ["link", "add", "veth1", "address", "02:00:00:00:01:10", "type", "veth",
                  "peer", "name", "pod1", "address", "02:00:00:00:01:01", "netns", wire])
        run(ip + ["link", "set", "veth1", "master", "cni0"])
        for dev in ("eth0", "cni0", "veth1"):
            run(ip + ["link", "set", dev, "up"])
        for dev in ("up0", "pod1"):
            run(["ip", "-n", wire, "link", "set", dev, "up"])
        run(ip + ["route", "add", "default", "via", "192.168.0.1", "dev", "eth0"])
        run(ip + ["route", "add", "10.244.0.0/16", "via", "192.168.0.3", "dev", "eth0"])
        for obj in NFACCT_OBJECTS:
            self.exec(["nfacct", "add", obj])
        return self

    def __exit__(self, *exc) -> bool:
        _del_ns(self.ns)
        _del_ns(self.wire)
        return False

    @staticmethod
    def sysctl(ns: str, *settings: str) -> None:
        run(["ip", "netns", "exec", ns, "sysctl", "-q", "-w", *settings])

    def exec(self, argv: list[str], stdin: bytes = b"", check: bool = True):
        return run(["ip", "netns", "exec", self.ns, *argv], stdin, check)


def strip_comments(data: bytes) -> bytes:
    return b"".join(l for l in data.splitlines(keepends=True) if not l.startswith(b"#"))


def write(path: Path, data: bytes, rewrite: bool) -> str:
    """Write ``data`` unless the file already holds it (ignoring '#' lines); say what happened."""
    if path.exists() and not rewrite and strip_comments(path.read_bytes()) == strip_comments(data):
        return "unchanged"
    path.write_bytes(data)
    return "written"


def make_case(rules: Path, rewrite: bool) -> str:
    base = rules.with_suffix("")
    save, err = Path(str(base) + ".nft.save"), Path(str(base) + ".nft.err")
    with Node() as node:
        p = node.exec(["iptables-nft-restore"], rules.read_bytes(), check=False)
        if p.returncode != 0:
            if save.exists():
                save.unlink()
            return "REJECTED " + write(err, b"exit=%d\n" % p.returncode + p.stderr, rewrite)
        out = node.exec(["iptables-nft-save"]).stdout
    if err.exists():
        err.unlink()
    return write(save, out, rewrite)


def make_host_files(rewrite: bool) -> list[str]:
    with Node() as node:
        addrs = node.exec(["ip", "-j", "-p", "addr", "show"]).stdout
        routes = node.exec(["ip", "-j", "-p", "route", "show", "table", "all"]).stdout
    return [write(HERE / "node.addrs.json", addrs, rewrite),
            write(HERE / "node.routes.json", routes, rewrite)]


def _on_signal(signum, frame):
    raise SystemExit(128 + signum)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("names", nargs="*", help="case names (default: every *.rules here)")
    ap.add_argument("--rewrite", action="store_true",
                    help="rewrite outputs even when only '#' lines changed")
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("make.py must run as root (it creates network namespaces)")
    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGHUP, _on_signal)
    cases = sorted(HERE.glob("*.rules"))
    if args.names:
        cases = [c for c in cases if c.stem in args.names]
        missing = set(args.names) - {c.stem for c in cases}
        if missing:
            sys.exit("no such case: " + ", ".join(sorted(missing)))
    failed = 0
    try:
        print("node.addrs.json / node.routes.json:", ", ".join(make_host_files(args.rewrite)))
        for case in cases:
            result = make_case(case, args.rewrite)
            failed += result.startswith("REJECTED")
            print(f"{case.stem}: {result}")
    finally:
        for name in list(_live):
            _del_ns(name)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
