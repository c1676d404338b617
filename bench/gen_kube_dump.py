#!/usr/bin/env python3
"""Deterministic generator of a kube-proxy (iptables mode) ruleset dump.

The output has exactly the shape ``iptables-save`` (iptables-nft 1.8.9)
prints after kube-proxy has programmed ``--services`` ClusterIP services with
``--endpoints`` endpoints each:

* ``*filter``: built-in INPUT/FORWARD/OUTPUT with kube-proxy's / kubelet's
  jumps, KUBE-EXTERNAL-SERVICES, KUBE-FIREWALL, KUBE-FORWARD, KUBE-NODEPORTS,
  KUBE-PROXY-CANARY, KUBE-PROXY-FIREWALL, KUBE-SERVICES.
* ``*nat``: PREROUTING/OUTPUT -> KUBE-SERVICES, POSTROUTING ->
  KUBE-POSTROUTING (mark check / RETURN / xor mark / MASQUERADE
  --random-fully), KUBE-MARK-MASQ, KUBE-NODEPORTS, KUBE-PROXY-CANARY, one
  KUBE-SVC-* chain per service and one KUBE-SEP-* chain per endpoint.

Chain declarations are sorted by strcmp (built-in chains first, in hook
order) and each chain's rules follow in that same order, as iptables-save
prints them.  Chain names are computed the way kube-proxy does it:
``base32(sha256(servicePortName + protocol [+ endpoint]))[:16]``.

The output is a pure function of (services, endpoints): the header/footer
``#`` lines carry a fixed timestamp.

Usage::

    python3 bench/gen_kube_dump.py --services 10000 --endpoints 5 -o FILE

Importable::

    from gen_kube_dump import generate, write_dump
    text = generate(20, 5)
    with open(path, "w") as fp:
        write_dump(fp, 10000, 5)

stdlib only.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import io
import math
import sys
from typing import Iterator, List, TextIO, Tuple

IPTABLES_VERSION = "v1.8.9 (nf_tables)"
# Fixed timestamp (time.ctime() format) so the output is deterministic.
TIMESTAMP = "Mon Jan  1 00:00:00 2024"

CLUSTER_CIDR = "10.244.0.0/16"
SERVICE_PORT = 80
TARGET_PORT = 8080
PORT_NAME = "http"
PROTOCOL = "tcp"
MASQ_MARK = "0x4000"


# --------------------------------------------------------------------------
# naming / addressing helpers
# --------------------------------------------------------------------------

def _hash16(s: str) -> str:
    """kube-proxy's portProtoHash / endpoint hash: base32(sha256(s))[:16]."""
    return base64.b32encode(hashlib.sha256(s.encode()).digest()).decode()[:16]


def service_port_name(i: int) -> str:
    return f"ns-{i}/svc-{i}:{PORT_NAME}"


def svc_chain(spn: str) -> str:
    return "KUBE-SVC-" + _hash16(spn + PROTOCOL)


def sep_chain(spn: str, endpoint: str) -> str:
    return "KUBE-SEP-" + _hash16(spn + PROTOCOL + endpoint)


def _ipv4(base: Tuple[int, int], n: int) -> str:
    return f"{base[0]}.{base[1]}.{(n >> 8) & 0xFF}.{n & 0xFF}"


def cluster_ip(i: int) -> str:
    """ClusterIP of service i: 10.96.0.10, 10.96.0.11, ... (10.96.0.0/12 style)."""
    n = 10 + i
    return f"10.{96 + (n >> 16)}.{(n >> 8) & 0xFF}.{n & 0xFF}"


def endpoint_ip(j: int) -> str:
    """Pod IP of global endpoint index j: 10.244.a.b, b in 2..251 (250 per /24)."""
    a, b = divmod(j, 250)
    if a > 255:
        raise ValueError("too many endpoints for 10.244.0.0/16 (max 64000)")
    return f"10.244.{a}.{b + 2}"


def saved_probability(n_remaining: int) -> str:
    """Probability as iptables-save prints it for kube-proxy's 1/n rule.

    kube-proxy passes ``%0.10f`` of 1/n; xt_statistic stores
    lround(p * 2^31) and iptables-save prints ``%.11f`` of that / 2^31.
    """
    p = float(f"{1.0 / n_remaining:0.10f}")
    stored = math.floor(p * 0x80000000 + 0.5)  # lround (p > 0)
    return f"{stored / 0x80000000:.11f}"


# --------------------------------------------------------------------------
# table bodies
# --------------------------------------------------------------------------

_FILTER_BUILTIN = ("INPUT", "FORWARD", "OUTPUT")
_NAT_BUILTIN = ("PREROUTING", "INPUT", "OUTPUT", "POSTROUTING")

_FILTER_CHAINS = (
    "KUBE-EXTERNAL-SERVICES",
    "KUBE-FIREWALL",
    "KUBE-FORWARD",
    "KUBE-NODEPORTS",
    "KUBE-PROXY-CANARY",
    "KUBE-PROXY-FIREWALL",
    "KUBE-SERVICES",
)

_FILTER_RULES = {
    "INPUT": [
        '-m conntrack --ctstate NEW -m comment --comment "kubernetes load balancer firewall" -j KUBE-PROXY-FIREWALL',
        '-m comment --comment "kubernetes health check service ports" -j KUBE-NODEPORTS',
        '-m conntrack --ctstate NEW -m comment --comment "kubernetes externally-visible service portals" -j KUBE-EXTERNAL-SERVICES',
        "-j KUBE-FIREWALL",
    ],
    "FORWARD": [
        '-m conntrack --ctstate NEW -m comment --comment "kubernetes load balancer firewall" -j KUBE-PROXY-FIREWALL',
        '-m comment --comment "kubernetes forwarding rules" -j KUBE-FORWARD',
        '-m conntrack --ctstate NEW -m comment --comment "kubernetes service portals" -j KUBE-SERVICES',
        '-m conntrack --ctstate NEW -m comment --comment "kubernetes externally-visible service portals" -j KUBE-EXTERNAL-SERVICES',
    ],
    "OUTPUT": [
        '-m conntrack --ctstate NEW -m comment --comment "kubernetes load balancer firewall" -j KUBE-PROXY-FIREWALL',
        '-m conntrack --ctstate NEW -m comment --comment "kubernetes service portals" -j KUBE-SERVICES',
        "-j KUBE-FIREWALL",
    ],
    "KUBE-FIREWALL": [
        '! -s 127.0.0.0/8 -d 127.0.0.0/8 -m comment --comment "block incoming localnet connections" -m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT -j DROP',
    ],
    "KUBE-FORWARD": [
        "-m conntrack --ctstate INVALID -j DROP",
        f'-m comment --comment "kubernetes forwarding rules" -m mark --mark {MASQ_MARK}/{MASQ_MARK} -j ACCEPT',
        '-m comment --comment "kubernetes forwarding conntrack rule" -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT',
    ],
}

_NAT_FIXED_CHAINS = (
    "KUBE-MARK-MASQ",
    "KUBE-NODEPORTS",
    "KUBE-POSTROUTING",
    "KUBE-PROXY-CANARY",
    "KUBE-SERVICES",
)

_NAT_FIXED_RULES = {
    "PREROUTING": ['-m comment --comment "kubernetes service portals" -j KUBE-SERVICES'],
    "OUTPUT": ['-m comment --comment "kubernetes service portals" -j KUBE-SERVICES'],
    "POSTROUTING": ['-m comment --comment "kubernetes postrouting rules" -j KUBE-POSTROUTING'],
    "KUBE-MARK-MASQ": [f"-j MARK --set-xmark {MASQ_MARK}/{MASQ_MARK}"],
    "KUBE-POSTROUTING": [
        f"-m mark ! --mark {MASQ_MARK}/{MASQ_MARK} -j RETURN",
        f"-j MARK --set-xmark {MASQ_MARK}/0x0",
        '-m comment --comment "kubernetes service traffic requiring SNAT" -j MASQUERADE --random-fully',
    ],
}


def _header() -> str:
    return f"# Generated by iptables-save {IPTABLES_VERSION} on {TIMESTAMP}\n"


def _footer() -> str:
    return f"# Completed on {TIMESTAMP}\n"


def _iter_filter() -> Iterator[str]:
    yield _header()
    yield "*filter\n"
    for c in _FILTER_BUILTIN:
        yield f":{c} ACCEPT [0:0]\n"
    for c in sorted(_FILTER_CHAINS):
        yield f":{c} - [0:0]\n"
    for c in list(_FILTER_BUILTIN) + sorted(_FILTER_CHAINS):
        for r in _FILTER_RULES.get(c, ()):
            yield f"-A {c} {r}\n"
    yield "COMMIT\n"
    yield _footer()


class _Service:
    __slots__ = ("idx", "spn", "ip", "chain", "eps", "sep_chains")

    def __init__(self, idx: int, endpoints: int):
        self.idx = idx
        self.spn = service_port_name(idx)
        self.ip = cluster_ip(idx)
        self.chain = svc_chain(self.spn)
        first = idx * endpoints
        self.eps = [f"{endpoint_ip(first + k)}:{TARGET_PORT}" for k in range(endpoints)]
        self.sep_chains = [sep_chain(self.spn, ep) for ep in self.eps]


def _svc_rules(s: _Service) -> Iterator[str]:
    c = s.chain
    yield (f"-A {c} ! -s {CLUSTER_CIDR} -d {s.ip}/32 -p {PROTOCOL} "
           f'-m comment --comment "{s.spn} cluster IP" -m {PROTOCOL} '
           f"--dport {SERVICE_PORT} -j KUBE-MARK-MASQ\n")
    n = len(s.eps)
    for k, (ep, sep) in enumerate(zip(s.eps, s.sep_chains)):
        if k < n - 1:
            stat = f"-m statistic --mode random --probability {saved_probability(n - k)} "
        else:
            stat = ""
        yield f'-A {c} -m comment --comment "{s.spn} -> {ep}" {stat}-j {sep}\n'


def _sep_rules(s: _Service, k: int) -> Iterator[str]:
    c = s.sep_chains[k]
    ep = s.eps[k]
    ip = ep.rsplit(":", 1)[0]
    yield f'-A {c} -s {ip}/32 -m comment --comment "{s.spn}" -j KUBE-MARK-MASQ\n'
    yield (f'-A {c} -p {PROTOCOL} -m comment --comment "{s.spn}" -m {PROTOCOL} '
           f"-j DNAT --to-destination {ep}\n")


def _iter_nat(services: int, endpoints: int) -> Iterator[str]:
    svcs: List[_Service] = [_Service(i, endpoints) for i in range(services)]

    # (chain name, kind, service, endpoint index) for every user chain
    chains: List[Tuple[str, int, object, int]] = [(c, 0, None, -1) for c in _NAT_FIXED_CHAINS]
    for s in svcs:
        if s.eps:
            chains.append((s.chain, 1, s, -1))
        for k, sep in enumerate(s.sep_chains):
            chains.append((sep, 2, s, k))
    chains.sort(key=lambda t: t[0].encode())  # strcmp order

    yield _header()
    yield "*nat\n"
    for c in _NAT_BUILTIN:
        yield f":{c} ACCEPT [0:0]\n"
    for name, _, _, _ in chains:
        yield f":{name} - [0:0]\n"

    for c in _NAT_BUILTIN:
        for r in _NAT_FIXED_RULES.get(c, ()):
            yield f"-A {c} {r}\n"
    for name, kind, s, k in chains:
        if kind == 1:
            yield from _svc_rules(s)  # type: ignore[arg-type]
        elif kind == 2:
            yield from _sep_rules(s, k)  # type: ignore[arg-type]
        elif name == "KUBE-SERVICES":
            for s2 in svcs:
                if not s2.eps:
                    continue
                yield (f"-A KUBE-SERVICES -d {s2.ip}/32 -p {PROTOCOL} "
                       f'-m comment --comment "{s2.spn} cluster IP" -m {PROTOCOL} '
                       f"--dport {SERVICE_PORT} -j {s2.chain}\n")
            yield ('-A KUBE-SERVICES -m comment --comment "kubernetes service nodeports; '
                   'NOTE: this must be the last rule in this chain" '
                   "-m addrtype --dst-type LOCAL -j KUBE-NODEPORTS\n")
        else:
            for r in _NAT_FIXED_RULES.get(name, ()):
                yield f"-A {name} {r}\n"
    yield "COMMIT\n"
    yield _footer()


# Table order as iptables-nft 1.8.9's iptables-save prints it.
def iter_lines(services: int, endpoints: int) -> Iterator[str]:
    """Yield the dump line by line (each ending in '\\n')."""
    if services < 0 or endpoints < 1:
        raise ValueError("services must be >= 0 and endpoints >= 1")
    yield from _iter_filter()
    yield from _iter_nat(services, endpoints)


def write_dump(fp: TextIO, services: int, endpoints: int, chunk: int = 4096) -> int:
    """Stream the dump to a text file object; return the number of lines."""
    buf: List[str] = []
    n = 0
    for line in iter_lines(services, endpoints):
        buf.append(line)
        if len(buf) >= chunk:
            fp.write("".join(buf))
            n += len(buf)
            buf.clear()
    if buf:
        fp.write("".join(buf))
        n += len(buf)
    return n


def generate(services: int, endpoints: int) -> str:
    """Return the whole dump as a string."""
    out = io.StringIO()
    write_dump(out, services, endpoints)
    return out.getvalue()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--services", type=int, default=10000)
    ap.add_argument("--endpoints", type=int, default=5)
    ap.add_argument("-o", "--output", default="-", help="output file (default stdout)")
    a = ap.parse_args(argv)
    if a.output == "-":
        write_dump(sys.stdout, a.services, a.endpoints)
    else:
        with open(a.output, "w", encoding="ascii", newline="\n") as fp:
            write_dump(fp, a.services, a.endpoints)
    return 0


if __name__ == "__main__":
    sys.exit(main())
