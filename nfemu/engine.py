"""The evaluation interface between the chain walk and the extensions (issue 3).

Every match value gets ``match(self, pkt: Packet, ev: EvalContext) -> bool`` and every target
value ``apply(self, pkt: Packet, ev: EvalContext) -> TargetResult``, written in the
extension's own module next to its parsing and saving, each naming the kernel function it
mirrors (``tcp_mt``, ``mark_tg``, ...). This module holds what they share: the outcome of a
target, the single-packet conntrack view, the node's stateful-extension state, and the
evaluation context with its choice source for random matches (see docs/engine-design.md).
"""
from __future__ import annotations

import copy
import enum
import random
from dataclasses import dataclass, field
from fractions import Fraction
from typing import TYPE_CHECKING, Callable

from .ext.conntrack import CtState
from .host import Host
if TYPE_CHECKING:     # (an annotation only: importing it here would make nfemu.packet,
    from .packet import Packet   # which loads the extensions, a circular import)


class Verdict(enum.Enum):
    """What a target tells ipt_do_table (XT_CONTINUE, XT_RETURN, NF_ACCEPT, NF_DROP, ...)."""

    CONTINUE = "CONTINUE"   # XT_CONTINUE: go on with the next rule (MARK, LOG, ...)
    ACCEPT = "ACCEPT"       # NF_ACCEPT: leave this table, the packet goes on
    DROP = "DROP"           # NF_DROP (REJECT too, after recording what it sends back)
    RETURN = "RETURN"       # XT_RETURN
    QUEUE = "QUEUE"         # NF_QUEUE (NFQUEUE): handed to user space; ends the traversal


@dataclass(frozen=True, slots=True)
class TargetResult:
    verdict: Verdict
    packet: Packet          # the packet after the target (rewritten by NAT, MARK, ...)


@dataclass(frozen=True, slots=True)
class Event:
    """Something a target did besides its verdict: a LOG line, an NFLOG message, the reply a
    REJECT sends, a NAT binding decided. ``detail`` holds the target's own fields."""

    kind: str               # "LOG", "NFLOG", "REJECT", "DNAT", "SNAT", "NOTRACK", ...
    hook: str
    table: str
    chain: str
    rule: int               # 1-based position in the chain
    detail: dict = field(default_factory=dict)


@dataclass(slots=True)
class CtView:
    """The connection a packet belongs to, as the matches and targets see it (nf_conn):
    ctinfo as ``state`` (one of NEW/ESTABLISHED/RELATED/INVALID/UNTRACKED, plus the SNAT and
    DNAT bits once a binding exists), ``status`` (IPS_* bits), the original and reply tuples,
    the connmark, and the NAT manips already decided (each is decided once per connection)."""

    state: CtState = CtState.NEW
    status: int = 0
    proto: int = 0
    orig_src: int = 0
    orig_dst: int = 0
    orig_sport: int = 0
    orig_dport: int = 0
    repl_src: int = 0
    repl_dst: int = 0
    repl_sport: int = 0
    repl_dport: int = 0
    mark: int = 0
    zone: int = 0
    reply: bool = False                 # this packet goes in the reply direction
    dnat_done: bool = False             # IP_NAT_MANIP_DST decided (null binding included)
    snat_done: bool = False             # IP_NAT_MANIP_SRC decided
    helper: str | None = None
    untracked: bool = False


@dataclass
class NodeState:
    """The state stateful extensions keep in a network namespace: recent tables by name,
    nth counters and limit buckets by rule (keyed by ``EvalContext.state_key``)."""

    recent: dict = field(default_factory=dict)
    nth: dict = field(default_factory=dict)
    limit: dict = field(default_factory=dict)
    quota: dict = field(default_factory=dict)

    def fork(self) -> NodeState:
        """An independent copy (exact enumeration copies the state at each random
        decision; almost always it is empty)."""
        if not (self.nth or self.limit or self.quota) and not any(
                t.entries for t in self.recent.values()):
            # only empty recent tables (made at load): copy their shape
            return NodeState(recent={name: type(t)(t.mask, t.nstamps_mask)
                                     for name, t in self.recent.items()})
        return copy.deepcopy(self)


@dataclass
class EvalContext:
    """Where a packet is being evaluated and what the extensions may consult or change."""

    host: Host
    state: NodeState
    hook: str = "PREROUTING"
    table: str = "filter"
    chain: str = "PREROUTING"
    rule: int = 0                       # 1-based position of the rule being evaluated
    match_index: int = 0                # position of the match within the rule
    ct: CtView | None = None
    now: float = 0.0                    # seconds, from packet timestamps (never the wall clock)
    local: bool = False                 # generated on this host (OUTPUT path)
    sock_uid: int | None = None         # owner of the sending socket (locally generated only)
    sock_gid: int | None = None
    events: list = field(default_factory=list)
    chooser: Callable[[Fraction], bool] | None = None
    hotdrop: bool = False               # a match asked to drop the packet (par->hotdrop)
    # stateful nodes (Node.send): the conntrack table NAT checks its tuples against, and an
    # optional script of the kernel's random NAT port draws: (packet, first, last) -> port
    conntrack: object = None
    nat_port_hint: Callable | None = None

    @property
    def state_key(self) -> tuple:
        """Identifies the match or target being evaluated, for per-rule state (nth counters,
        limit buckets): rule values are shared between identical rules, so never key by the
        value itself."""
        return (self.table, self.chain, self.rule, self.match_index)

    def choose(self, probability: Fraction) -> bool:
        """A random decision that is true with ``probability`` (statistic --mode random):
        sampled, or enumerated by the outcome explorer."""
        if self.chooser is None:
            raise RuntimeError("no choice source: set EvalContext.chooser")
        return self.chooser(probability)

    def record(self, kind: str, **detail) -> None:
        self.events.append(Event(kind, self.hook, self.table, self.chain, self.rule, detail))


def sampler(rng: random.Random) -> Callable[[Fraction], bool]:
    """A choice source that samples: true when a random 31-bit number is below the threshold,
    as statistic_mt does with get_random_u32() & 0x7FFFFFFF (so the probability is exact when
    it is a multiple of 2^-31, which every statistic probability is)."""
    getrandbits = rng.getrandbits

    def choose(probability: Fraction) -> bool:
        # r < p * 2^31 in integers: r * den < num * 2^31
        return getrandbits(31) * probability.denominator < probability.numerator << 31
    return choose
