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
from dataclasses import dataclass
from fractions import Fraction

from .engine import EvalContext, NodeState, sampler
from .ext.conntrack import CtState
from .host import Host
from .interp import explore
from .ir import Ruleset
from .packet import Packet
from .pipeline import Journey, arriving, local_out, new_conntrack


@dataclass(frozen=True)
class Outcome:
    probability: Fraction
    journey: Journey


class Node:
    """Owns its ruleset, host and state; two nodes never share anything."""

    def __init__(self, ruleset: Ruleset, host: Host, seed: int | None = None):
        self.ruleset = ruleset
        self.host = host
        self.state = NodeState()
        self.counters: dict = {}
        self.seed = seed if seed is not None else random.SystemRandom().randrange(1 << 32)
        self.rng = random.Random(self.seed)

    def _run(self, pkt: Packet, iface: str | None, local: bool, ctstate: CtState,
             chooser, state: NodeState, counters: dict | None) -> Journey:
        ct = new_conntrack(pkt, ctstate)
        ev = EvalContext(self.host, state, ct=ct, chooser=chooser, local=local)
        if local:
            return local_out(self.ruleset, pkt, ev, counters)
        if iface is not None:
            pkt = pkt.replace(iif=iface)
        return arriving(self.ruleset, pkt, ev, counters)

    def trace(self, pkt: Packet, iface: str | None = None, local: bool = False,
              ctstate: CtState = CtState.NEW) -> Journey:
        """One packet through the node, random decisions sampled from the node's seeded
        generator; counters and stateful-extension state are kept."""
        return self._run(pkt, iface, local, ctstate, sampler(self.rng), self.state,
                         self.counters)

    def outcomes(self, pkt: Packet, iface: str | None = None, local: bool = False,
                 ctstate: CtState = CtState.NEW) -> list[Outcome]:
        """Every distinct outcome with its exact probability (they add up to 1); the node's
        own state is left untouched."""
        def run(chooser):
            return self._run(pkt, iface, local, ctstate, chooser, copy.deepcopy(self.state),
                             None)
        merged: dict = {}
        for probability, journey in explore(run):
            key = journey.key()
            if key in merged:
                merged[key] = Outcome(merged[key].probability + probability, journey)
            else:
                merged[key] = Outcome(probability, journey)
        return sorted(merged.values(), key=lambda o: -o.probability)
