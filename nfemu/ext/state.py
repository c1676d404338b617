"""``-m state [!] --state LIST`` (extensions/libxt_state.c; kernel net/netfilter/xt_state.c
state_mt). The same test as ``-m conntrack --ctstate``; iptables-nft 1.8.9 keeps and prints it
as ``-m state --state INVALID,NEW,RELATED,ESTABLISHED,UNTRACKED`` (that order). SNAT and DNAT
are conntrack-only. The value is the conntrack.CtState set (the kernel's xt_state bits differ
only for UNTRACKED)."""
from __future__ import annotations

from dataclasses import dataclass

from ..ir import Match
from .base import ExtSpec, Given, RuleContext
from .conntrack import CtState, statebit, states_text
from .xtopt import XtOpt, xt_collect, xt_fcheck, xt_opts

STATE_NAMES = ("INVALID", "NEW", "ESTABLISHED", "RELATED", "UNTRACKED")


@dataclass(frozen=True, slots=True)
class State(Match):
    NAME = "state"
    states: CtState = CtState(0)
    invert: bool = False

    def match(self, pkt, ev) -> bool:
        """xt_state.c state_mt(): the packet's state bit (see conntrack.statebit: INVALID
        without entry, UNTRACKED, else NEW/ESTABLISHED/RELATED of ctinfo) in the set, xor
        ``!`` (libxt_state stores ``!`` as the complemented mask: the same test). iptables-nft
        1.8.9 loads ``-m state`` as conntrack revision 3 (seen with nft --debug=netlink),
        whose --ctstate test gives the same answer for these five states."""
        return bool(int(self.states) & int(statebit(ev))) != self.invert

    def save(self) -> str:
        return f"{' !' if self.invert else ''} --state {states_text(self.states)}"


OPTIONS = (XtOpt("state", 0, invert=True, mand=True),)


def _one(word: str) -> str | None:
    return next((n for n in STATE_NAMES if word and n[:len(word)].lower() == word.lower()
                 and len(word) <= len(n)), None)


def parse_states(text: str, g: Given) -> CtState:
    """state_parse_states()."""
    result = CtState(0)
    rest = text
    while "," in rest:
        word, _, after = rest.partition(",")
        name = _one(word)
        if name is None:
            raise g.error(f"Bad state \"{rest}\"")
        result |= CtState[name]
        rest = after
    if not rest:
        raise g.error("\"--state\" requires a list of states with no spaces, e.g. "
                      "ESTABLISHED,RELATED")
    name = _one(rest)
    if name is None:
        raise g.error(f"Bad state \"{rest}\"")
    return result | CtState[name]


def build(given: list[Given], ctx: RuleContext) -> State:
    seen = xt_collect("state", OPTIONS, given)
    xt_fcheck("state", OPTIONS, seen, ctx)
    g = seen[0]
    return State(parse_states(g.arg, g), g.inv)


SPEC = ExtSpec("state", "match", xt_opts(OPTIONS), build)
