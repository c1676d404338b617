"""The kernel's hooks and tables for IPv4, in order (SEMANTICS.md section 1), as data, and
the walk of one packet through them: arriving packets (PREROUTING, routing, INPUT or FORWARD,
POSTROUTING) and locally generated ones (routing, OUTPUT, POSTROUTING, and back through lo
for local destinations, with the nat chains of PREROUTING and INPUT skipped).

NAT is decided once per connection and manip type (nf_nat_inet_fn): the nat chains run only
for a packet whose conntrack state is NEW or RELATED and whose manip of that hook's type is
not decided yet; a nat chain that ends without a NAT target makes a null binding.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from .engine import CtView, EvalContext, Verdict
from .ext.conntrack import CtState
from .interp import Step, walk_table
from .ir import Ruleset
from .packet import Packet

# Each hook: the tables in priority order (raw -300, mangle -150, nat DNAT -100, filter 0,
# security 50, nat SNAT 100). "nat" appears where the kernel registers it for that hook.
HOOK_TABLES = {
    "PREROUTING": ("raw", "mangle", "nat"),
    "INPUT": ("mangle", "filter", "security", "nat"),
    "FORWARD": ("mangle", "filter", "security"),
    "OUTPUT": ("raw", "mangle", "nat", "filter", "security"),
    "POSTROUTING": ("mangle", "nat"),
}
# The manip type the nat table decides at each hook (NF_NAT_MANIP_DST / _SRC).
NAT_MANIP = {"PREROUTING": "dst", "OUTPUT": "dst", "INPUT": "src", "POSTROUTING": "src"}


@dataclass
class Journey:
    """What happened to a packet: the verdict, where it ended, its last form, the steps."""

    verdict: Verdict = Verdict.ACCEPT
    where: str = ""                       # "local", "forward", "out", "dropped", "queued", ...
    out_iface: str = ""
    packet: Packet | None = None
    steps: list[Step] = field(default_factory=list)
    events: list = field(default_factory=list)
    note: str = ""

    def key(self) -> tuple:
        """What makes two outcomes the same (for merging enumerated outcomes)."""
        return (self.verdict, self.where, self.out_iface, self.packet,
                tuple(self.steps))


def run_hook(ruleset: Ruleset, hook: str, pkt: Packet, ev: EvalContext, journey: Journey,
             counters: dict | None, skip_nat: bool = False) -> Packet | None:
    """The tables of one hook in priority order; returns the packet, or None when a table
    dropped or queued it (journey says which)."""
    ev.hook = hook
    tables = {t.name: t for t in ruleset.tables}
    for name in HOOK_TABLES[hook]:
        table = tables.get(name)
        if table is None:
            continue
        chain = table.chain_map.get(hook)
        if chain is None or not chain.declared:  # no such base chain in the kernel
            continue
        if name == "nat":
            if skip_nat or not _nat_applies(ev, hook):
                continue
        result = walk_table(table, hook, pkt, ev, counters)
        journey.steps.extend(result.steps)
        pkt = result.packet
        if name == "nat" and ev.ct is not None:
            # a chain that ends without a NAT target still decides: a null binding
            if NAT_MANIP[hook] == "dst":
                ev.ct.dnat_done = True
            else:
                ev.ct.snat_done = True
        if result.verdict is Verdict.DROP:
            journey.verdict, journey.where = Verdict.DROP, f"dropped in {name} {hook}"
            journey.packet = pkt
            return None
        if result.verdict is Verdict.QUEUE:
            journey.verdict, journey.where = Verdict.QUEUE, f"queued in {name} {hook}"
            journey.packet = pkt
            return None
    return pkt


def _nat_applies(ev: EvalContext, hook: str) -> bool:
    ct = ev.ct
    if ct is None or ct.untracked:
        return False
    if not (ct.state & (CtState.NEW | CtState.RELATED)):
        return False
    return not (ct.dnat_done if NAT_MANIP[hook] == "dst" else ct.snat_done)


def arriving(ruleset: Ruleset, pkt: Packet, ev: EvalContext, counters: dict | None,
             from_loopback: bool = False) -> Journey:
    """A packet that arrives on ``pkt.iif``."""
    journey = Journey(packet=pkt, events=ev.events)
    pkt = run_hook(ruleset, "PREROUTING", pkt, ev, journey, counters, skip_nat=from_loopback)
    if pkt is None:
        return journey
    route = ev.host.route_lookup(pkt.dst, pkt.src, pkt.mark, iif=pkt.iif or "lo")
    if not route.ok:
        journey.verdict, journey.where = Verdict.DROP, "dropped by routing"
        journey.note = f"{route.error}: {route.reason}"
        journey.packet = pkt
        return journey
    if route.local:
        pkt = run_hook(ruleset, "INPUT", pkt, ev, journey, counters, skip_nat=from_loopback)
        if pkt is not None:
            journey.verdict, journey.where, journey.packet = Verdict.ACCEPT, "local", pkt
        return journey
    pkt = pkt.replace(oif=route.dev or "")
    pkt = run_hook(ruleset, "FORWARD", pkt, ev, journey, counters)
    if pkt is None:
        return journey
    return _postrouting(ruleset, pkt, ev, journey, counters, route.dev or "", "forward")


def local_out(ruleset: Ruleset, pkt: Packet, ev: EvalContext, counters: dict | None) -> Journey:
    """A packet generated on this host (routing first, then OUTPUT and POSTROUTING; a local
    destination comes back through lo)."""
    journey = Journey(packet=pkt, events=ev.events)
    ev.local = True
    route = ev.host.route_lookup(pkt.dst, pkt.src)
    if not route.ok:
        journey.verdict, journey.where = Verdict.DROP, "no route"
        journey.note = f"{route.error}: {route.reason}"
        return journey
    if not pkt.src:
        # the socket's source comes from this lookup before the packet exists, so conntrack
        # sees it in the original tuple too
        pkt = pkt.replace(src=route.prefsrc or 0)
        if ev.ct is not None:
            ev.ct.orig_src = ev.ct.repl_dst = pkt.src
    pkt = pkt.replace(oif=route.dev or "")
    before = (pkt.dst, pkt.src, pkt.mark, pkt.tos)
    pkt = run_hook(ruleset, "OUTPUT", pkt, ev, journey, counters)
    if pkt is None:
        return journey
    if (pkt.dst, pkt.src, pkt.mark, pkt.tos) != before:
        # ip_route_me_harder(): a changed destination (or mark) is routed again
        route = ev.host.route_lookup(pkt.dst, pkt.src)
        if not route.ok:
            journey.verdict, journey.where = Verdict.DROP, "no route after OUTPUT"
            journey.note = f"{route.error}: {route.reason}"
            journey.packet = pkt
            return journey
        pkt = pkt.replace(oif=route.dev or "")
    journey = _postrouting(ruleset, pkt, ev, journey, counters, route.dev or "", "out")
    if journey.verdict is Verdict.ACCEPT and route.local:
        # loopback: back in through lo; its NAT was decided in OUTPUT/POSTROUTING
        back = journey.packet.replace(iif="lo", oif="")
        ev.local = False
        again = arriving(ruleset, back, ev, counters, from_loopback=True)
        again.steps[:0] = journey.steps
        return again
    return journey


def _postrouting(ruleset, pkt, ev, journey, counters, out_dev, where) -> Journey:
    pkt = run_hook(ruleset, "POSTROUTING", pkt, ev, journey, counters)
    if pkt is None:
        return journey
    journey.verdict, journey.where, journey.out_iface = Verdict.ACCEPT, where, out_dev
    journey.packet = pkt
    return journey


def new_conntrack(pkt: Packet, state: CtState = CtState.NEW) -> CtView:
    """The single-packet conntrack view: the packet's own tuple as the original direction."""
    return CtView(state=state, proto=pkt.proto, orig_src=pkt.src, orig_dst=pkt.dst,
                  orig_sport=pkt.sport, orig_dport=pkt.dport, repl_src=pkt.dst,
                  repl_dst=pkt.src, repl_sport=pkt.dport, repl_dport=pkt.sport,
                  untracked=bool(state & CtState.UNTRACKED))
