"""Assertions about what a node does to a packet, for the tests of people who write rules
(kube-proxy and CNI developers, platform teams). Plain functions: they need no pytest, and
each raises :class:`AssertionError` with a multi-line message that shows the packet, what
was expected, and the trace of every outcome that went against it (the rules and policies
hit, hook by hook, the NAT/REJECT/LOG events under the rule that made them, the verdict and
the final packet). The pytest plugin (nfemu/pytest_plugin.py) re-exports them and adds the
``nfemu_node`` fixture, which is :func:`make_node`.

    >>> from nfemu.assertions import make_node, assert_dropped, assert_reaches
    >>> node = make_node(\"\"\"*filter
    ... :INPUT ACCEPT [0:0]
    ... :FORWARD ACCEPT [0:0]
    ... :OUTPUT ACCEPT [0:0]
    ... -A INPUT -p tcp --dport 23 -j DROP
    ... COMMIT
    ... \"\"\", iface=["eth0=192.168.0.2/24"])
    >>> assert_dropped(node, "-p tcp -s 192.168.0.9 -d 192.168.0.2 --dport 23 -i eth0")
    >>> assert_reaches(node, "-p tcp -s 192.168.0.9 -d 192.168.0.2 --dport 22 -i eth0",
    ...                {"192.168.0.2:22": 1})

Packets (the ``pkt`` argument of every assertion) are given as

- iptables-style text, read by the command line's packet parser (nfemu/packetopts.py, the
  options of ``nfemu trace``): ``"-p tcp -s 10.0.0.1 -d 10.96.0.10 --dport 53 -i eth0"``;
  ``-i IFACE`` (arrives on) or ``--local`` (locally generated) is required, ``--ctstate``
  gives the single-packet conntrack state;
- a mapping of the same options by name: ``{"p": "tcp", "d": "10.96.0.10", "dport": 53,
  "i": "eth0"}`` (long names too: ``proto``, ``src``, ``dst``, ``iface``, ``tcp_flags``...);
- an :class:`nfemu.packet.Packet` (or a scapy IP packet), which arrives on its ``iif``
  unless the assertion's ``iface=`` or ``local=True`` says otherwise.

Every assertion takes ``iface``, ``local``, ``ctstate`` and ``now`` keywords, which override
what the packet says, and evaluates with :meth:`Node.outcomes` (every outcome with its exact
probability; the node's counters and state are left alone). Random choices (``-m statistic
--mode random``, ``--mode nth`` is deterministic) make several outcomes: an assertion about
a packet's fate must then hold for every outcome, and the message names the outcome that
failed with its probability. ``any_outcome=True`` asks for one outcome instead, and
``outcome=`` restricts the assertion to some outcomes (a destination such as
``"10.244.1.5:8080"``, or a function of the :class:`~nfemu.node.Outcome`).

Destinations (the keys of :func:`assert_reaches`, and ``outcome=``) are the final packet's
destination ``"ADDR:PORT"`` (``"[ADDR6]:PORT"``) for TCP, UDP and SCTP, ``"ADDR"`` for
other protocols; a key without a port stands for every port of that address. Outcomes in
which the packet does not get through have the destinations ``"DROP"``, ``"REJECT"`` and
``"QUEUE"``.
"""
from __future__ import annotations

import argparse
import fnmatch
import ipaddress
import os
import shlex
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

__all__ = ["make_node", "parse_packet", "outcome_destination", "chains_visited",
           "format_journey", "assert_reaches", "assert_dropped", "assert_rejected",
           "assert_accepted", "assert_delivered", "assert_masqueraded", "assert_path",
           "MAX_TRACES"]

#: at most this many outcome traces are shown in one failure message (the rest are counted)
MAX_TRACES = 5

# destinations of the outcomes in which the packet does not get through
_NOT_THROUGH = ("DROP", "REJECT", "QUEUE")


# ---------------------------------------------------------------------------- nodes

def make_node(rules=None, host=None, *, iface: Iterable[str] = (),
              local_ip: Iterable[str] = (), default_gateway: str | None = None,
              addrs=None, routes=None, route_localnet: bool = False, seed: int | None = 0,
              engine: str = "compiled", kube=None, node: str | None = None,
              **kube_options):
    """A :class:`nfemu.node.Node` for a test (the ``nfemu_node`` fixture).

    ``rules``: iptables-save text, a path to a file of it (a ``str`` without a newline that
    does not start with ``*`` is taken as a path; an :class:`os.PathLike` always is), or a
    :class:`~nfemu.ir.Ruleset`. It is read as a node's dump (``nfemu trace`` does the same:
    the ipsets and nfacct objects it names are taken to exist); a text a real
    ``iptables-restore`` would reject raises :class:`nfemu.errors.RulesetErrors`.

    The host: ``host`` (a :class:`~nfemu.host.Host`), or the options of ``nfemu trace``:
    ``iface=["eth0=192.168.0.2/24", ...]``, ``local_ip=[...]``, ``default_gateway=...``,
    ``route_localnet=True``, or ``addrs=PATH, routes=PATH`` (``ip -j addr show`` and ``ip
    -j route show table all``); they are read by the same code as the command line's. With
    none of them the host has only ``lo``, as ``nfemu trace`` without host options.

    ``seed`` seeds the node's sampled traces (``node.trace``); the assertions enumerate
    every outcome and do not depend on it. ``engine``: ``"compiled"`` or ``"reference"``.

    From Kubernetes objects instead of rules: ``kube=`` a cluster from
    :func:`nfemu.kube.load_manifests`, or one or more manifest paths/texts (given to it), and
    ``node=`` the node's name; the rules kube-proxy would write on that node and the node's
    host come from :func:`nfemu.kube.render_node`, which also takes the remaining keywords
    (``cluster_cidr``, ``node_ips``, ``masquerade_all``, ``detect_local``) and ``seed``.
    ``host=`` or the host options replace the host it makes."""
    from .node import Node

    host_options = any((iface, local_ip, default_gateway, addrs, routes, route_localnet))
    if host is not None and host_options:
        raise TypeError("make_node: give host= or the host options (iface, addrs, ...), "
                        "not both")
    if host is None and host_options or host is None and kube is None:
        from .tracecli import _host
        host = _host(argparse.Namespace(
            addrs=None if addrs is None else os.fspath(addrs),
            routes=None if routes is None else os.fspath(routes),
            iface=_strings(iface, "iface"), local_ip=_strings(local_ip, "local_ip"),
            default_gateway=default_gateway, route_localnet=route_localnet))
    if kube is not None:
        if rules is not None:
            raise TypeError("make_node: kube= makes the rules; do not give rules= with it")
        if node is None:
            raise TypeError("make_node: kube= needs node= (the node's name)")
        from . import kube as kube_module
        cluster = kube
        if isinstance(kube, (str, os.PathLike)):
            cluster = kube_module.load_manifests(kube)
        elif isinstance(kube, (list, tuple)):
            cluster = kube_module.load_manifests(*kube)
        made = kube_module.render_node(cluster, node, seed=seed, **kube_options)
        if host is not None or engine != "compiled":
            made = Node(made.ruleset, host or made.host, seed=seed, engine=engine)
        return made
    if kube_options or node is not None:
        raise TypeError("make_node: node= and the kube-proxy options go with kube=; "
                        f"unexpected: {sorted(kube_options) + (['node'] if node else [])}")
    if rules is None:
        raise TypeError("make_node: give rules= (iptables-save text, a path or a Ruleset) "
                        "or kube=")
    return Node(_ruleset(rules), host, seed=seed, engine=engine)


def _strings(value, name: str) -> list[str]:
    if isinstance(value, str):
        return [value]
    items = list(value or ())
    if not all(isinstance(v, str) for v in items):
        raise TypeError(f"make_node: {name} takes strings, not {items!r}")
    return items


def _ruleset(rules):
    """The Ruleset of ``rules`` (a Ruleset, a text or a path), read as a node's dump."""
    from .ir import Ruleset
    from .parse import load, loads
    from .validate import ALL_OBJECTS

    if isinstance(rules, Ruleset):
        return rules
    if isinstance(rules, os.PathLike):
        return load(os.fspath(rules), objects=ALL_OBJECTS)
    if isinstance(rules, bytes):
        rules = rules.decode("utf-8", "surrogateescape")
    if not isinstance(rules, str):
        raise TypeError(f"rules: iptables-save text, a path or a Ruleset, not {type(rules)}")
    if "\n" not in rules and not rules.lstrip().startswith("*"):
        if not os.path.exists(rules):
            raise FileNotFoundError(f"rules: no such file {rules!r} (a one-line string is "
                                    "taken as a path; iptables-save text has newlines)")
        return load(rules, objects=ALL_OBJECTS)
    return loads(rules, file="<rules>", objects=ALL_OBJECTS)


# ---------------------------------------------------------------------------- packets

@dataclass(frozen=True)
class Probe:
    """A packet and where it starts: what :meth:`Node.outcomes` is given."""

    packet: Any                 # nfemu.packet.Packet
    iface: str | None
    local: bool
    ctstate: Any                # nfemu.ext.conntrack.CtState
    now: float = 0.0

    def describe(self) -> str:
        where = "generated locally" if self.local else f"arriving on {self.iface}"
        state = getattr(self.ctstate, "name", None) or str(self.ctstate)
        extra = "" if state == "NEW" else f", ctstate {state}"
        return f"{self.packet.describe()} {where}{extra}"


class _Parser(argparse.ArgumentParser):
    """argparse that raises instead of exiting."""

    def error(self, message):
        raise ValueError(f"packet: {message}")


# option names a mapping may use, beside the ``pkt_`` destinations' own names
_KEYWORDS = {"p": "proto", "protocol": "proto", "s": "src", "source": "src",
             "d": "dst", "destination": "dst", "i": "iif", "iface": "iif",
             "in_interface": "iif", "o": "oif", "out_interface": "oif",
             "source_port": "sport", "destination_port": "dport"}


def parse_packet(pkt, *, iface: str | None = None, local: bool | None = None,
                 ctstate=None, now: float = 0.0) -> Probe:
    """The :class:`Probe` for ``pkt`` (text, mapping or Packet; see the module's doc). Text
    and mappings are read by :func:`nfemu.packetopts.packet_from_args`, as ``nfemu trace``
    reads its options; a bad value raises ValueError naming the option."""
    from .errors import LocatedError
    from .ext.conntrack import CtState
    from .packet import Packet
    from .node import ctstate_from_text
    from .packetopts import add_packet_arguments, packet_from_args

    if isinstance(pkt, Probe):
        packet, ctx_iface, ctx_local, ctx_state = pkt.packet, pkt.iface, pkt.local, pkt.ctstate
    elif isinstance(pkt, Packet) or hasattr(pkt, "haslayer"):     # a Packet or scapy's
        packet = pkt if isinstance(pkt, Packet) else Packet.from_scapy(pkt)
        ctx_iface, ctx_local, ctx_state = packet.iif or None, False, CtState.NEW
    else:
        if isinstance(pkt, str):
            argv = shlex.split(pkt)
        elif isinstance(pkt, Mapping):
            argv = []
            for key, value in pkt.items():
                name = _KEYWORDS.get(key, key).replace("-", "_")
                flag = "--" + {"proto": "protocol", "src": "source", "dst": "destination",
                               "iif": "in-interface", "oif": "out-interface"}.get(
                                   name, name.replace("_", "-"))
                if value is True:
                    argv.append(flag)
                elif value is not False and value is not None:
                    argv += [flag, str(value)]
        else:
            raise TypeError(f"a packet is iptables-style text, a mapping of its options or "
                            f"an nfemu.packet.Packet, not {type(pkt).__name__}")
        # -i/--local may come from the assertion's keywords instead of the text
        if (iface is not None or local) and not {"-i", "--in-interface", "--local"} & set(argv):
            argv += ["--local"] if local else ["-i", iface]
        parser = _Parser(prog="packet", add_help=False)
        add_packet_arguments(parser)
        try:
            args = parser.parse_args(argv)
            packet, ctx = packet_from_args(args)
        except LocatedError as exc:
            raise ValueError(f"packet {pkt!r}: {exc.message}") from None
        ctx_iface, ctx_local, ctx_state = ctx.arrives_on, ctx.local, ctx.ctstate
    if local:
        ctx_iface, ctx_local = None, True
    elif iface is not None:
        ctx_iface, ctx_local = iface, False
    if ctstate is not None:
        ctx_state = ctstate if isinstance(ctstate, CtState) else ctstate_from_text(str(ctstate))
    if not ctx_local and not ctx_iface:
        raise ValueError(f"packet {packet.describe()}: say where it comes from: a Packet "
                         "with iif, iface=..., or local=True")
    return Probe(packet, ctx_iface, ctx_local, ctx_state, now)


# ---------------------------------------------------------------------------- outcomes

def _addr_text(family: int, value: int) -> str:
    return str(ipaddress.IPv6Address(value) if family == 6 else ipaddress.IPv4Address(value))


def outcome_destination(journey) -> str:
    """Where an outcome's packet goes: ``"ADDR:PORT"`` / ``"[ADDR6]:PORT"`` (TCP, UDP,
    SCTP) or ``"ADDR"`` for a packet that gets through (its final destination, after any
    DNAT); ``"REJECT"``, ``"DROP"`` or ``"QUEUE"`` for one that does not."""
    from .engine import Verdict
    from .packet import SCTP, TCP, UDP

    if journey.verdict is Verdict.QUEUE:
        return "QUEUE"
    if journey.verdict is not Verdict.ACCEPT:
        return "REJECT" if _reject_event(journey) is not None else "DROP"
    pkt = journey.packet
    addr = _addr_text(pkt.family, pkt.dst)
    if pkt.proto in (TCP, UDP, SCTP) and not pkt.frag:
        return f"[{addr}]:{pkt.dport}" if pkt.family == 6 else f"{addr}:{pkt.dport}"
    return addr


def _normal_destination(key) -> str:
    """A destination the user wrote, in the form :func:`outcome_destination` gives."""
    text = str(key).strip()
    if text.upper() in _NOT_THROUGH:
        return text.upper()
    try:
        if text.startswith("["):
            addr, _, port = text[1:].partition("]:")
            return f"[{ipaddress.IPv6Address(addr)}]:{int(port)}"
        if text.count(":") == 1:
            addr, port = text.split(":")
            return f"{ipaddress.IPv4Address(addr)}:{int(port)}"
        return str(ipaddress.ip_address(text))
    except ValueError:
        raise ValueError(f"bad destination {key!r}: ADDR:PORT, [ADDR6]:PORT, ADDR, DROP, "
                         "REJECT or QUEUE") from None


def _matches_destination(actual: str, wanted: str) -> bool:
    """``wanted`` (normalised) names the outcome's destination: the same, or its address
    when ``wanted`` has no port."""
    if actual == wanted:
        return True
    return (wanted not in _NOT_THROUGH and actual not in _NOT_THROUGH
            and _strip_port(actual) == wanted)


def _strip_port(dest: str) -> str:
    if dest.startswith("["):
        return dest[1:].partition("]")[0]
    return dest.partition(":")[0] if dest.count(":") == 1 else dest


def _reject_event(journey):
    return next((e for e in journey.events if e.kind == "REJECT"), None)


def chains_visited(node, journey) -> list[tuple[str, str]]:
    """The (table, chain) pairs an outcome went through, in order: the chain of each rule
    or policy hit, and every user chain a rule jumped (-j) or went (-g) to even when no
    rule in it matched; a chain entered again after others counts again, consecutive
    repeats once."""
    out: list[tuple[str, str]] = []

    def add(item):
        if not out or out[-1] != item:
            out.append(item)

    tables = {t.name: t for t in node.ruleset.tables}
    for step in journey.steps:
        add((step.table, step.chain))
        table = tables.get(step.table)
        if table is not None and step.rule is not None and _has_chain(table, step.target):
            add((step.table, step.target))
    return out


def _has_chain(table, name: str) -> bool:
    return any(c.name == name and not c.builtin for c in table.chains)


# ---------------------------------------------------------------------------- messages

def _share(p) -> str:
    """An exact share and its value: ``1/3 (0.3333333333)``."""
    p = Fraction(p)
    return f"{p} ({float(p):.10g})"


def format_journey(node, journey, indent: str = "  ") -> str:
    """One outcome as text, in ``nfemu trace``'s layout (nfemu/tracecli.py
    :func:`~nfemu.tracecli.journey_lines`): each hook and table, the rules and policies hit
    (as iptables-save prints them), the events a target made under it, the verdict, where
    the packet ended and the final packet."""
    from .tracecli import journey_lines
    return "\n".join(journey_lines(node, journey, indent))


def _outcome_block(node, outcome, index: int, total: int, reason: str = "") -> str:
    head = (f"-- outcome {index} of {total}, probability {_share(outcome.probability)}: "
            f"{_fate(outcome.journey)}")
    if reason:
        head += f"\n   failed: {reason}"
    return head + "\n" + format_journey(node, outcome.journey, "   ")


def _fate(journey) -> str:
    """What became of the packet, in a few words."""
    from .tracecli import _where
    dest = outcome_destination(journey)
    if dest == "REJECT":
        event = _reject_event(journey)
        return (f"rejected with {event.detail.get('with')} by {event.table} {event.chain} "
                f"rule {event.rule}")
    if dest in _NOT_THROUGH:
        return journey.where + (f" ({journey.note})" if journey.note else "")
    return f"{_where(journey)}, to {dest}"


def _traces(node, items, total: int) -> list[str]:
    """The blocks of (index, outcome, reason) items, at most MAX_TRACES of them."""
    lines = [_outcome_block(node, o, i, total, r) for i, o, r in items[:MAX_TRACES]]
    if len(items) > MAX_TRACES:
        lines.append(f"-- ... and {len(items) - MAX_TRACES} more outcome(s) not shown")
    return lines


def _fail(title: str, probe: Probe, lines: list[str]) -> AssertionError:
    return AssertionError("\n".join([title, f"packet: {probe.describe()}", *lines]))


# ---------------------------------------------------------------------------- the checks

def _outcomes(node, probe: Probe) -> list:
    return node.outcomes(probe.packet, iface=probe.iface, local=probe.local,
                         ctstate=probe.ctstate, now=probe.now)


def _selector(outcome) -> Callable | None:
    if outcome is None:
        return None
    if callable(outcome):
        return outcome
    wanted = _normal_destination(outcome)
    return lambda o: _matches_destination(outcome_destination(o.journey), wanted)


def _check_each(name: str, node, pkt, expected: str, check: Callable, *, outcome,
                any_outcome: bool, where: dict) -> None:
    """Run ``check(journey) -> None | reason`` on the outcomes; raise when one fails (or,
    with any_outcome, when all do)."""
    __tracebackhide__ = True
    probe = parse_packet(pkt, **where)
    everything = _outcomes(node, probe)
    total = len(everything)
    numbered = list(enumerate(everything, 1))
    select = _selector(outcome)
    if select is not None:
        numbered = [(i, o) for i, o in numbered if select(o)]
        if not numbered:
            raise _fail(f"{name}: no outcome is {outcome!r} (the selection of outcome=)",
                        probe, ["the outcomes:"] + _traces(
                            node, [(i, o, "") for i, o in enumerate(everything, 1)], total))
    failed = []
    for i, o in numbered:
        reason = check(o.journey)
        if reason is not None:
            failed.append((i, o, reason))
    scope = "" if select is None else f" (of those selected by outcome={outcome!r})"
    if any_outcome:
        if len(failed) < len(numbered):
            return
        raise _fail(f"{name}: no outcome{scope} is {expected}", probe,
                    [f"expected: at least one outcome {expected}",
                     f"{len(numbered)} outcome(s), none is:"] + _traces(node, failed, total))
    if not failed:
        return
    share = sum((o.probability for _, o, _ in failed), Fraction(0))
    raise _fail(f"{name}: not every outcome{scope} is {expected}", probe,
                [f"expected: every outcome {expected}",
                 f"{len(failed)} of {len(numbered)} outcome(s) fail, total probability "
                 f"{_share(share)}:"] + _traces(node, failed, total))


def _where_kwargs(iface, local, ctstate, now) -> dict:
    return dict(iface=iface, local=local, ctstate=ctstate, now=now)


def assert_dropped(node, pkt, *, outcome=None, any_outcome: bool = False, iface=None,
                   local=None, ctstate=None, now: float = 0.0) -> None:
    """The packet is discarded without an answer: by a DROP rule or a chain's DROP policy,
    or by the kernel itself (no route, rp_filter-style martians, ip_forward off, a NAT
    target's NF_DROP). A REJECT does not count (see :func:`assert_rejected`): the sender
    gets an answer there. Holds for every outcome unless ``any_outcome``/``outcome``."""
    __tracebackhide__ = True

    def check(journey):
        dest = outcome_destination(journey)
        return None if dest == "DROP" else f"not dropped: {_fate(journey)}"

    _check_each("assert_dropped", node, pkt, "dropped (without a REJECT answer)", check,
                outcome=outcome, any_outcome=any_outcome,
                where=_where_kwargs(iface, local, ctstate, now))


def _reject_name(name: str) -> str:
    """iptables' name of a --reject-with type, from its name or alias (libipt_REJECT's
    tables, nfemu/ext/REJECT.py)."""
    from .ext.REJECT import _NAMES4, _NAMES6
    low = name.lower()
    for _value, full, alias in _NAMES4 + _NAMES6:
        if low in (full, alias):
            return full
    raise ValueError(f"unknown REJECT type {name!r}")


def assert_rejected(node, pkt, with_: str | None = None, *, outcome=None,
                    any_outcome: bool = False, iface=None, local=None, ctstate=None,
                    now: float = 0.0) -> None:
    """The packet is dropped by a REJECT rule (ipt_REJECT: NF_DROP after sending an ICMP
    error or a TCP reset). ``with_``: the --reject-with type it must use (its iptables name
    or alias: ``"tcp-reset"``, ``"icmp-port-unreachable"``, ``"port-unreach"``...; a REJECT
    without --reject-with answers icmp-port-unreachable). Holds for every outcome unless
    ``any_outcome``/``outcome``."""
    __tracebackhide__ = True
    wanted = None if with_ is None else _reject_name(with_)

    def check(journey):
        event = _reject_event(journey) if outcome_destination(journey) == "REJECT" else None
        if event is None:
            return f"not rejected: {_fate(journey)}"
        if wanted is not None and event.detail.get("with") != wanted:
            return f"rejected with {event.detail.get('with')}, not {wanted}"
        return None

    expected = "rejected" + (f" with {wanted}" if wanted else "")
    _check_each("assert_rejected", node, pkt, expected, check, outcome=outcome,
                any_outcome=any_outcome, where=_where_kwargs(iface, local, ctstate, now))


_WHERE_WORDS = {"local": "delivered locally", "forward": "forwarded", "out": "sent out"}


def assert_accepted(node, pkt, where: str | None = None, *, outcome=None,
                    any_outcome: bool = False, iface=None, local=None, ctstate=None,
                    now: float = 0.0) -> None:
    """The packet gets through the node: delivered to a local socket, forwarded, or (a
    locally generated one) sent out. ``where``: ``"local"``, ``"forward"`` or ``"out"``
    to say which, or an interface name the packet must leave by. Holds for every outcome
    unless ``any_outcome``/``outcome``."""
    __tracebackhide__ = True
    _accepted("assert_accepted", node, pkt, where, outcome=outcome, any_outcome=any_outcome,
              where_kw=_where_kwargs(iface, local, ctstate, now))


def assert_delivered(node, pkt, *, outcome=None, any_outcome: bool = False, iface=None,
                     local=None, ctstate=None, now: float = 0.0) -> None:
    """The packet is delivered to a local socket of the node (it went through INPUT):
    ``assert_accepted(node, pkt, "local")``."""
    __tracebackhide__ = True
    _accepted("assert_delivered", node, pkt, "local", outcome=outcome,
              any_outcome=any_outcome, where_kw=_where_kwargs(iface, local, ctstate, now))


def _accepted(name: str, node, pkt, where, *, outcome, any_outcome, where_kw) -> None:
    __tracebackhide__ = True

    def check(journey):
        if outcome_destination(journey) in _NOT_THROUGH:
            return f"not accepted: {_fate(journey)}"
        if where is None:
            return None
        if where in _WHERE_WORDS:
            ok = journey.where == where
        else:
            ok = journey.where in ("forward", "out") and journey.out_iface == where
        return None if ok else f"accepted but {_fate(journey)}"

    if name == "assert_delivered":
        expected = "delivered locally"
    else:
        expected = "accepted" + ("" if where is None else
                                 f" ({_WHERE_WORDS.get(where, f'leaving by {where}')})")
    _check_each(name, node, pkt, expected, check, outcome=outcome,
                any_outcome=any_outcome, where=where_kw)


def assert_masqueraded(node, pkt, to: str | None = None, *, outcome=None,
                       any_outcome: bool = False, iface=None, local=None, ctstate=None,
                       now: float = 0.0) -> None:
    """The packet leaves with its source NATed in POSTROUTING, by MASQUERADE (the address
    of the outgoing interface, nf_nat_masquerade_ipv4) or SNAT. ``to``: the source it must
    leave with, ``"ADDR"`` or ``"ADDR:PORT"`` (compared with the final packet). Holds for
    every outcome unless ``any_outcome``/``outcome``."""
    __tracebackhide__ = True
    wanted = None if to is None else _normal_destination(to)

    def check(journey):
        if outcome_destination(journey) in _NOT_THROUGH:
            return f"not sent: {_fate(journey)}"
        # an SNAT/MASQUERADE binding made in POSTROUTING (not one that failed, nor
        # MASQUERADE's "original source 0.0.0.0: not masqueraded")
        nat = [e for e in journey.events if e.kind == "SNAT" and e.hook == "POSTROUTING"
               and "error" not in e.detail and "note" not in e.detail]
        if not nat:
            return "no SNAT/MASQUERADE in POSTROUTING: the source stays " + _addr_text(
                journey.packet.family, journey.packet.src)
        if wanted is None:
            return None
        pkt = journey.packet
        src = _addr_text(pkt.family, pkt.src)
        if wanted.startswith("[") or wanted.count(":") == 1:    # with a port
            src = f"[{src}]:{pkt.sport}" if pkt.family == 6 else f"{src}:{pkt.sport}"
        return None if src == wanted else f"source NATed to {src}, not {wanted}"

    expected = "masqueraded" + ("" if to is None else f" to {wanted}")
    _check_each("assert_masqueraded", node, pkt, expected, check, outcome=outcome,
                any_outcome=any_outcome, where=_where_kwargs(iface, local, ctstate, now))


def _chain_pattern(text: str) -> tuple[str | None, str]:
    """(table or None, fnmatch pattern) of a path entry: ``CHAIN``, ``table:CHAIN``, with
    ``*``/``?`` wildcards; a trailing ``...`` is ``*``."""
    table, sep, chain = text.partition(":")
    if not sep:
        table, chain = None, text
    if chain.endswith("..."):
        chain = chain[:-3] + "*"
    return table, chain


def _entry_matches(pattern: tuple[str | None, str], visited: tuple[str, str]) -> bool:
    table, chain = pattern
    return (table is None or table == visited[0]) and fnmatch.fnmatchcase(visited[1], chain)


def assert_path(node, pkt, chains: Iterable[str], *, exact: bool = False, outcome=None,
                any_outcome: bool = False, iface=None, local=None, ctstate=None,
                now: float = 0.0) -> None:
    """The packet goes through ``chains`` in this order (:func:`chains_visited`: built-in
    and user chains, entered by a jump even when nothing in them matched). By default the
    list is a subsequence of the visited chains (other chains may come between and around
    them); ``exact=True`` asks for the whole sequence. Each entry is a chain name, may name
    the table (``"nat:PREROUTING"``), and may use ``*``/``?`` wildcards or end in ``...``
    (``"KUBE-SVC-*"``, ``"KUBE-SEP-..."``) for kube-proxy's hashed names. Holds for every
    outcome unless ``any_outcome``/``outcome``."""
    __tracebackhide__ = True
    if isinstance(chains, str):
        raise TypeError("assert_path: chains is a list of chain names, not one string")
    wanted = list(chains)
    patterns = [_chain_pattern(c) for c in wanted]

    def check(journey):
        visited = chains_visited(node, journey)
        shown = " -> ".join(f"{t}:{c}" for t, c in visited) or "(no chain)"
        if exact:
            ok = len(visited) == len(patterns) and all(
                _entry_matches(p, v) for p, v in zip(patterns, visited))
            return None if ok else f"visited {shown}"
        at = 0
        for p in patterns:
            while at < len(visited) and not _entry_matches(p, visited[at]):
                at += 1
            if at == len(visited):
                return f"no {p[1] if p[0] is None else p[0] + ':' + p[1]} where expected; " \
                       f"visited {shown}"
            at += 1
        return None

    expected = ("through exactly " if exact else "through ") + " -> ".join(wanted)
    _check_each("assert_path", node, pkt, expected, check, outcome=outcome,
                any_outcome=any_outcome, where=_where_kwargs(iface, local, ctstate, now))


def assert_reaches(node, pkt, expected, tolerance: float | None = None, *, iface=None,
                   local=None, ctstate=None, now: float = 0.0) -> None:
    """Where the packet ends, with the probability of each destination
    (:func:`outcome_destination`; a key without a port takes every port of its address).

    ``expected`` is a mapping ``{destination: share}`` (shares as Fraction, int, float or
    ``"p/q"`` text), compared exactly by default: kube-proxy's ``-m statistic --probability``
    values become the kernel's u32 thresholds (xt_statistic: the rule matches when
    ``get_random_u32() & 0x7FFFFFFF < probability * 2^31``), so a third of the traffic is
    not exactly ``Fraction(1, 3)``; the message gives the real shares exactly and as
    decimals, and ``tolerance=1e-6`` allows that much absolute difference per destination.
    A set, list or tuple of destinations means exactly these, with any shares; a single
    destination means all of it (share 1). Destinations that the packet never reaches have
    share 0; outcomes whose destination ``expected`` does not name fail it."""
    __tracebackhide__ = True
    probe = parse_packet(pkt, iface=iface, local=local, ctstate=ctstate, now=now)
    outcomes = _outcomes(node, probe)
    total = len(outcomes)
    if isinstance(expected, (str, bytes)):
        expected = {expected: 1}
    only_names = not isinstance(expected, Mapping)
    if only_names:
        wanted = {_normal_destination(k): None for k in expected}
    else:
        wanted = {}
        for key, share in expected.items():
            dest = _normal_destination(key)
            if dest in wanted:
                raise ValueError(f"assert_reaches: destination {key!r} given twice")
            wanted[dest] = share if isinstance(share, Fraction) else _as_fraction(share)

    # each outcome goes to the expected key that names it (an exact one before an address)
    def key_of(o) -> tuple[str, bool]:
        dest = outcome_destination(o.journey)
        if dest in wanted:
            return dest, True
        short = _strip_port(dest)
        if dest not in _NOT_THROUGH and short in wanted:
            return short, True
        return dest, False

    actual: dict[str, Fraction] = {}
    keys = []
    for o in outcomes:
        key, named = key_of(o)
        keys.append((key, named))
        actual[key] = actual.get(key, Fraction(0)) + o.probability

    bad: set[str] = set()
    rows = []
    for dest in list(wanted) + [k for k in actual if k not in wanted]:
        got = actual.get(dest, Fraction(0))
        want = wanted.get(dest)
        if dest not in wanted:
            verdict = "not expected"
        elif only_names:
            verdict = "ok" if got else "never reached"
        elif (got == want if tolerance is None else abs(got - want) <= tolerance):
            verdict = "ok"
        else:
            verdict = "never reached" if not got else "differs"
        if verdict != "ok":
            bad.add(dest)
        rows.append((dest, "any" if only_names and dest in wanted else
                     ("-" if want is None else _share(want)), _share(got), verdict))
    if not bad:
        return
    how = ("the destinations (any shares)" if only_names else
           "exact shares" if tolerance is None else f"shares within {tolerance}")
    widths = [max(len(r[i]) for r in rows + [("destination", "expected", "actual", "")])
              for i in range(3)]
    table = [f"  {'destination':<{widths[0]}}  {'expected':<{widths[1]}}  "
             f"{'actual':<{widths[2]}}"]
    table += [f"  {d:<{widths[0]}}  {w:<{widths[1]}}  {a:<{widths[2]}}  {v}"
              for d, w, a, v in rows]
    hint = []
    if not only_names and tolerance is None and all(
            d in wanted for d in actual) and all(
            abs(actual.get(d, 0) - wanted[d]) <= Fraction(1, 10**6) for d in wanted):
        hint = ["(the shares differ by less than 1e-6: the kernel's u32 thresholds of "
                "-m statistic --probability; tolerance=1e-6 allows that)"]
    # the traces of the outcomes going where they should not, or to a destination whose
    # share is off
    items = [(i, o, "")
             for i, (o, (key, _named)) in enumerate(zip(outcomes, keys), 1) if key in bad]
    raise _fail(f"assert_reaches: the packet's destinations differ ({how})", probe,
                table + hint + [f"{total} outcome(s); the traces of those going to the "
                                "destinations marked above:"] + _traces(node, items, total))


def _as_fraction(share) -> Fraction:
    try:
        return Fraction(share)
    except (TypeError, ValueError):
        raise ValueError(f"assert_reaches: bad share {share!r} (a Fraction, int, float "
                         "or 'p/q')") from None
