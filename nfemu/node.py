"""A node: a ruleset, a host and the state they keep, and the questions users ask of it.

    >>> import nfemu
    >>> from nfemu.node import Node
    >>> from nfemu.host import Host
    >>> node = Node(nfemu.loads("*filter\\n:INPUT DROP [0:0]\\nCOMMIT\\n"),
    ...             Host.from_options(["eth0=192.168.0.2/24"]))
"""
from __future__ import annotations

import copy
import random
from dataclasses import dataclass, replace
from fractions import Fraction

from .engine import CtView, EvalContext, NodeState, sampler
from .ext.conntrack import CtState
from .ext.recent import recent_tables
from .host import Host
from .interp import explore
from .conntrack import ConntrackTable
from .ir import Counters, Ruleset
from .packet import Packet
from .pipeline import Journey, Machine, Traversal, explore_traversals, new_conntrack


def _add(base: Counters | None, extra: tuple[int, int] | None) -> Counters:
    base = base or Counters()
    if extra is None:
        return base
    return Counters(base.packets + extra[0], base.bytes + extra[1])


class CounterMap(dict):
    """The counters the traces and sends added: (table, chain, rule index 0-based, or None
    for a built-in chain's policy) -> (packets, bytes). Calling it (``node.counters()``)
    gives a plain copy."""

    def __call__(self) -> dict:
        return dict(self)


@dataclass(frozen=True)
class Outcome:
    probability: Fraction
    journey: Journey


def ctstate_from_text(text: str) -> CtState:
    """``"ESTABLISHED"``, ``"new"``, ``"ESTABLISHED,DNAT"``...: the state as ``--ctstate``
    reads it (nfemu/packetopts.py), for the API's ``ctstate=`` arguments."""
    from .errors import LocatedError
    from .packetopts import _ctstate
    try:
        return _ctstate(text)
    except LocatedError as exc:
        raise ValueError(f"ctstate: {exc.message}") from None


class Node:
    """Owns its ruleset, host and state; two nodes never share anything.

    ``engine="compiled"`` (the default) runs the compiled rules (nfemu/compile.py,
    nfemu/walk.py) and enumerates outcomes by resuming copies at each random decision;
    ``engine="reference"`` runs the plain reference walk (nfemu/interp.py) and enumerates by
    replaying decisions from the start. Both give the same answers (tests/eval/test_compile.py);
    with the same seed their sampled traces may differ, as the compiled walk skips rules (and
    their random matches) that its indexes show cannot match.
    """

    def __init__(self, ruleset: Ruleset, host: Host, seed: int | None = None,
                 engine: str = "compiled"):
        if engine not in ("compiled", "reference"):
            raise ValueError(f"engine must be 'compiled' or 'reference', not {engine!r}")
        self.ruleset = ruleset
        self.host = host
        self.engine = engine
        self.machine = Machine(ruleset, host, compiled=engine == "compiled")
        self.state = NodeState(recent=recent_tables(ruleset))
        self.counters = CounterMap()
        self.conntrack = ConntrackTable()
        self.nat_port_hint = None
        self.seed = seed if seed is not None else random.SystemRandom().randrange(1 << 32)
        self.rng = random.Random(self.seed)

    def _traversal(self, pkt, iface: str | None, local: bool, ctstate: CtState,
                   chooser, state: NodeState, counters: dict | None,
                   now: float = 0.0) -> Traversal:
        if not isinstance(pkt, Packet):
            pkt = Packet.from_scapy(pkt)
        if ctstate is None:
            ctstate = CtState.NEW
        elif isinstance(ctstate, str):
            ctstate = ctstate_from_text(ctstate)
        ct = new_conntrack(pkt, ctstate)
        ev = EvalContext(self.host, state, ct=ct, chooser=chooser, local=local, now=now)
        if not local and iface is not None:
            pkt = pkt.replace(iif=iface)
        return Traversal(self.machine, pkt, ev, counters, local)

    def counted_ruleset(self) -> Ruleset:
        """The ruleset with the counters the kernel would show after the packets traced so
        far (``iptables-save -c``): each rule's and built-in policy's loaded counters (zero
        unless the ruleset was read with counters) plus those of the traces."""
        # only the rules and chains that counted something are copied (a rule without
        # counters saves as [0:0]): a 10,000-service dump is 200,000 rules, a capture
        # usually touches a few thousand
        hits: dict = {}
        for (table, chain, index), value in self.counters.items():
            hits.setdefault((table, chain), {})[index] = value
        tables = []
        for table in self.ruleset.tables:
            chains = []
            for chain in table.chains:
                counted = hits.get((table.name, chain.name))
                if counted is None:
                    chains.append(chain)
                    continue
                rules = list(chain.rules)
                for i, value in counted.items():
                    if i is not None:
                        rules[i] = replace(rules[i], counters=_add(rules[i].counters, value))
                policy = counted.get(None) if chain.builtin else None
                chains.append(replace(chain, rules=tuple(rules),
                                      counters=_add(chain.counters, policy)))
            tables.append(replace(table, chains=tuple(chains)))
        return replace(self.ruleset, tables=tuple(tables))

    def trace(self, pkt, iface: str | None = None, local: bool = False,
              ctstate: CtState = CtState.NEW, now: float = 0.0) -> Journey:
        """One packet (a :class:`Packet` or a scapy IP packet) through the node, random
        decisions sampled from the node's seeded generator; counters and stateful-extension
        state are kept. ``ctstate``: the single-packet conntrack state, a CtState or its
        text (``"ESTABLISHED"``, as ``--ctstate``). Returns the :class:`~nfemu.pipeline.Trace` (verdict, path, final
        packet; ``.scapy()`` gives it as scapy). ``now`` is the packet's time in seconds
        since the epoch (what -m time, limit, hashlimit and recent see; 0 when unknown)."""
        return self._traversal(pkt, iface, local, ctstate, sampler(self.rng), self.state,
                               self.counters, now).run()

    def send(self, pkt, iface: str | None = None, local: bool = False,
             now: float = 0.0, csum_bad: bool = False) -> Journey:
        """One packet through the node with connection tracking (stateful): the packet is
        looked up in or added to ``node.conntrack``, NAT is decided for a connection's first
        packet and applied from the binding to every later one, replies are un-NATed.
        ``now`` is the packet's time in seconds (timeouts run on it). Returns the Trace,
        with ``.ct`` (the conntrack entry) and ``.ctinfo``. ``csum_bad``: the capture
        showed a bad TCP/UDP/ICMP checksum (conntrack then treats the packet as INVALID in
        PREROUTING, as nf_conntrack_checksum=1 does).

        Random NAT ports (--random, --random-fully, a source port remapped after a clash):
        the kernel draws an offset with get_random_u16(); nfemu starts from the packet's
        own port when it lies in the candidate range (else the range's first) and takes
        the first free one. ``node.nat_port_hint = f(packet, first, last) -> port``
        scripts the kernel's draw instead (differential tests use it)."""
        if not isinstance(pkt, Packet):
            pkt = Packet.from_scapy(pkt)
        if not local and iface is not None and pkt.iif != iface:
            pkt = pkt.replace(iif=iface)
        # the raw table sees no entry yet (INVALID); CT there can make the template
        # untracked or give it a zone
        template = CtView(state=CtState.INVALID)
        ev = EvalContext(self.host, self.state, ct=template, chooser=sampler(self.rng),
                         local=local, now=now, conntrack=self.conntrack,
                         nat_port_hint=self.nat_port_hint)
        return Traversal(self.machine, pkt, ev, self.counters, local,
                         conntrack=self.conntrack, csum_bad=csum_bad).run()

    def replay(self, source, iface: str | None = None, local: bool = False):
        """Replay a capture (a pcap/pcapng path or file object) or an iterable of packets
        through :meth:`send`, yielding one result per record (see nfemu/replay.py)."""
        from .replay import replay
        return replay(self, source, iface=iface, local=local)

    def outcomes(self, pkt, iface: str | None = None, local: bool = False,
                 ctstate: CtState = CtState.NEW, now: float = 0.0) -> list[Outcome]:
        """Every distinct outcome with its exact probability (they add up to 1), most
        likely first; the node's own state and counters are left untouched."""
        if self.engine == "compiled":
            first = self._traversal(pkt, iface, local, ctstate, None, self.state.fork(), None,
                                    now)
            runs = explore_traversals(first)
        else:
            def run(chooser):
                return self._traversal(pkt, iface, local, ctstate, chooser,
                                       copy.deepcopy(self.state), None, now).run()
            runs = explore(run)
        merged: dict = {}
        for probability, journey in runs:
            key = journey.key()
            if key in merged:
                merged[key] = Outcome(merged[key].probability + probability, journey)
            else:
                merged[key] = Outcome(probability, journey)
        # most likely first; compared as floats (exact comparisons of fractions with
        # thousand-digit denominators would cost more than the enumeration itself)
        return sorted(merged.values(), key=lambda o: -float(o.probability))
