"""The kernel's hooks and tables for IPv4, in order (SEMANTICS.md section 1), as data, and
the walk of one packet through them: arriving packets (PREROUTING, routing, INPUT or FORWARD,
POSTROUTING) and locally generated ones (routing, OUTPUT, POSTROUTING, and back through lo
for local destinations, with the nat chains of PREROUTING and INPUT skipped).

NAT is decided once per connection and manip type (nf_nat_inet_fn): the nat chains run only
for a packet whose conntrack state is NEW or RELATED and whose manip of that hook's type is
not decided yet; a nat chain that ends without a NAT target makes a null binding.

A packet's way through the node is a :class:`Traversal`: a small state machine whose whole
position (phase, hook, table, and inside the table the walk's chain, rule, match and return
stack) lives in its fields, so that it can be copied at a random decision and the copy
resumed later (exact enumeration, :func:`explore`). Trace, outcomes and replay all run it.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field
from fractions import Fraction
from .compile import Program
from .conntrack import ConntrackTable, Entry
from .engine import CtView, EvalContext, Verdict
from .ext.conntrack import CtState
from .interp import Step
from .ir import Ruleset
from .natmanip import icmp_reply_translation, nat_packet, null_binding
from .packet import ICMP, TCP, UDP, Packet
from .walk import compiled_walk, reference_walk

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
    """What happened to a packet (the ``Trace`` of the API): the verdict, where it ended, its
    last form, the path of rules and policies hit (``steps``, also ``path``), the events."""

    verdict: Verdict = Verdict.ACCEPT
    where: str = ""                       # "local", "forward", "out", "dropped ...", ...
    out_iface: str = ""
    packet: Packet | None = None
    steps: list[Step] = field(default_factory=list)
    events: list = field(default_factory=list)
    note: str = ""
    # stateful runs (Node.send / Node.replay): the packet's conntrack entry (None when it
    # has none: INVALID or untracked) and its ctinfo as conntrack gave it
    ct: object = None
    ctinfo: str = ""

    @property
    def path(self) -> list[Step]:
        return self.steps

    def scapy(self):
        """The final packet as a scapy IP packet (None when nothing is left of it)."""
        return None if self.packet is None else self.packet.to_scapy()

    def key(self) -> tuple:
        """What makes two outcomes the same (for merging enumerated outcomes)."""
        return (self.verdict, self.where, self.out_iface, self.packet,
                tuple(self.steps))


Trace = Journey


class Machine:
    """What every traversal of one node shares: the tables each hook runs (only those with a
    base chain the kernel registered), the walk over them, the host."""

    def __init__(self, ruleset: Ruleset, host, compiled: bool = True):
        self.ruleset = ruleset
        self.host = host
        self.compiled = compiled
        if compiled:
            tables = Program.compile(ruleset).tables
            self.walk = compiled_walk
        else:
            tables = {t.name: t for t in ruleset.tables}
            self.walk = reference_walk
        irtables = {t.name: t for t in ruleset.tables}
        nat = irtables.get("nat")
        # the nat hooks are registered at all four hooks as soon as one nat base chain
        # exists (nf_nat_register_fn; iptable_nat likewise): a hook without a nat chain
        # still applies bindings and makes null bindings (stateful nodes only)
        has_nat = nat is not None and any(c.declared for c in nat.chains if c.builtin)
        self.hook_tables = {}
        self.hook_tables_ct = {}
        for hook, names in HOOK_TABLES.items():
            entries, with_nat = [], []
            for name in names:
                table = irtables.get(name)
                chain = table.chain_map.get(hook) if table is not None else None
                if chain is None or not chain.declared:  # no such base chain in the kernel
                    if name == "nat" and has_nat:
                        with_nat.append((name, None))
                    continue
                entries.append((name, tables[name]))
                with_nat.append((name, tables[name]))
            self.hook_tables[hook] = tuple(entries)
            self.hook_tables_ct[hook] = tuple(with_nat)


# phases of a traversal
HOOK, IN_START, ROUTE_IN, POST, SENT, LOOPBACK, DELIVER, OUT_START, REROUTE = range(9)


class Traversal:
    """One packet's way through the node, resumable (see the module docstring)."""

    def __init__(self, machine: Machine, pkt: Packet, ev: EvalContext,
                 counters: dict | None, local: bool, conntrack: ConntrackTable | None = None,
                 csum_bad: bool = False):
        self.machine = machine
        # stateful (Node.send): the node's conntrack table; ev.ct starts as the template
        # the raw table sees (no entry yet: INVALID; CT may make it untracked or zoned)
        self.conntrack = conntrack
        self.csum_bad = csum_bad
        self.ct_pending = False
        self.ev = ev
        self.pkt = pkt
        self.counters = counters
        self.journey = Journey(packet=pkt, events=ev.events)
        self.phase = OUT_START if local else IN_START
        self.hook = ""
        self.table_pos = 0
        self.after = 0
        self.skip_nat = False
        self.from_loopback = False
        self.route = None
        self.where = ""
        self.out_dev = ""
        self.loop_back = False
        self.table_before = None          # (dst, src, mark, tos) before the current table
        # the walk's place inside a table while a random decision may be asked (nfemu/walk.py)
        self.w_chain = None
        self.w_index = 0
        self.w_mi = 0
        self.w_stack = None
        # exact enumeration: this run's probability so far, the answer a resumed copy must
        # give to the decision it was made at, and where new copies go
        self.numerator = 1
        self.denominator = 1
        self.forced: bool | None = None
        self.pending: list | None = None

    # ---- the state machine ---------------------------------------------------------------
    def run(self) -> Journey:
        """Go on until the packet is delivered, sent, dropped or queued."""
        while True:
            phase = self.phase
            if phase == HOOK:
                if not self._run_hook():
                    return self.journey
                self.phase = self.after
            elif phase == IN_START:
                self._enter("PREROUTING", ROUTE_IN, self.from_loopback)
            elif phase == ROUTE_IN:
                if not self._route_in():
                    return self.journey
            elif phase == POST:
                self._enter("POSTROUTING", SENT, False)
            elif phase == SENT:
                if self.conntrack is not None and not self._confirm():
                    return self.journey
                j = self.journey
                j.verdict, j.where, j.out_iface, j.packet = (Verdict.ACCEPT, self.where,
                                                            self.out_dev, self.pkt)
                if not self.loop_back:
                    return j
                self.phase = LOOPBACK
            elif phase == LOOPBACK:
                # back in through lo; its NAT was decided in OUTPUT/POSTROUTING
                self.pkt = self.pkt.replace(iif="lo", oif="")
                self.ev.local = False
                self.from_loopback, self.loop_back = True, False
                self.phase = IN_START
            elif phase == DELIVER:
                if self.conntrack is not None and not self._confirm():
                    return self.journey
                j = self.journey
                j.verdict, j.where, j.out_iface, j.packet = Verdict.ACCEPT, "local", "", self.pkt
                return j
            elif phase == OUT_START:
                if not self._route_out():
                    return self.journey
            elif phase == REROUTE:
                self._reroute()
            else:  # pragma: no cover
                raise AssertionError(f"unknown phase {phase}")

    def _enter(self, hook: str, after: int, skip_nat: bool) -> None:
        self.hook, self.after, self.skip_nat = hook, after, skip_nat
        self.table_pos = 0
        self.phase = HOOK
        # nf_conntrack_in at priority -200 (after raw) on PREROUTING and OUTPUT; a packet
        # back through lo keeps the entry its OUTPUT path gave it
        self.ct_pending = (self.conntrack is not None and hook in _CT_HOOKS
                           and not self.from_loopback)

    def _run_hook(self) -> bool:
        """The tables of the current hook from ``table_pos``; False when one dropped or
        queued the packet (the journey says which)."""
        hook, ev = self.hook, self.ev
        ev.hook = hook
        stateful = self.conntrack is not None
        machine = self.machine
        entries = machine.hook_tables_ct[hook] if stateful else machine.hook_tables[hook]
        walk = machine.walk
        while self.table_pos < len(entries):
            name, table = entries[self.table_pos]
            if self.ct_pending and name != "raw":
                self._conntrack_in()
            nat = name == "nat"
            resuming = self.w_chain is not None
            reroutes = hook == "OUTPUT" and (nat or name == "mangle")
            if reroutes and not resuming:
                pkt = self.pkt
                self.table_before = (pkt.dst, pkt.src, pkt.mark, pkt.tos)
            if nat and stateful:
                if not resuming and not self._nat_chains_run(hook, table):
                    if reroutes and not self._route_me_harder(True):
                        return False
                    self.table_pos += 1
                    continue
            elif nat and not resuming and (self.skip_nat or not _nat_applies(ev, hook)):
                self.table_pos += 1
                continue
            verdict = walk(self, table, hook)
            if verdict is Verdict.DROP or verdict is Verdict.QUEUE:
                j = self.journey
                j.verdict = verdict
                j.where = f"{'dropped' if verdict is Verdict.DROP else 'queued'} in {name} {hook}"
                j.packet = self.pkt
                return False
            if nat and ev.ct is not None:
                if stateful:
                    self._nat_bind_and_apply(hook)
                # a chain that ends without a NAT target still decides: a null binding
                elif NAT_MANIP[hook] == "dst":
                    ev.ct.dnat_done = True
                else:
                    ev.ct.snat_done = True
            if reroutes and not self._route_me_harder(nat):
                return False
            self.table_pos += 1
        if self.ct_pending:
            self._conntrack_in()
        return True

    # ---- connection tracking (stateful nodes) ---------------------------------------------
    def _conntrack_in(self) -> None:
        """nf_conntrack_in(): the packet's entry (found or new; ctinfo set on it), or no
        entry (INVALID: the view stays the template). A transport checksum the capture
        showed bad makes it INVALID in PREROUTING (nf_conntrack_checksum=1)."""
        self.ct_pending = False
        ev, j = self.ev, self.journey
        template = ev.ct
        if template is not None and template.untracked:
            j.ctinfo = "UNTRACKED"
            return
        pkt = self.pkt
        zone = template.zone if template is not None else 0
        if self.csum_bad and self.hook == "PREROUTING" and pkt.proto in _CSUM_PROTOS:
            entry = None
        else:
            entry, _ = self.conntrack.track(pkt, ev.now, zone)
        if entry is None:
            j.ctinfo = "INVALID"
            return
        if template is not None and template.helper and entry.state & CtState.NEW:
            entry.helper = template.helper
        ev.ct = j.ct = entry
        j.ctinfo = ctinfo_name(entry)

    def _confirm(self) -> bool:
        """__nf_conntrack_confirm() at the end of POSTROUTING or INPUT: a new entry goes
        into the table; an insertion clash the kernel cannot resolve drops the packet."""
        ct = self.ev.ct
        if not isinstance(ct, Entry) or ct.confirmed:
            return True
        got = self.conntrack.confirm(ct, self.ev.now)
        if got is None:
            j = self.journey
            j.verdict, j.packet = Verdict.DROP, self.pkt
            j.where = "dropped by conntrack"
            j.note = ("insert clash at confirmation (__nf_conntrack_confirm): another "
                      "connection holds one of this connection's tuples")
            return False
        self.ev.ct = self.journey.ct = got
        return True

    def _nat_chains_run(self, hook: str, table) -> bool:
        """nf_nat_ipv4_fn / nf_nat_inet_fn before the nat chains: True when they must run
        (a NEW or RELATED packet whose manip of this hook's type is not decided yet). Else
        the packet is rewritten here: an ICMP error RELATED to a connection has its quoted
        header and outer addresses translated (the chains never run for it); any other
        tracked packet gets the binding (a null one first when none was decided)."""
        ct = self.ev.ct
        if not isinstance(ct, Entry):
            return False            # no entry, or untracked: NAT has nothing to do
        if int(ct.state) & _RELATED and self.pkt.proto == ICMP:
            self.pkt = icmp_reply_translation(self.pkt, ct, NAT_MANIP[hook])
            return False
        if table is not None and not self.skip_nat and _nat_applies(self.ev, hook):
            return True
        self._nat_bind_and_apply(hook)
        return False

    def _nat_bind_and_apply(self, hook: str) -> None:
        """After the nat chains (or without them): a null binding when this manip is still
        undecided for a NEW/RELATED packet, then nf_nat_packet() from the binding."""
        ev, manip = self.ev, NAT_MANIP[hook]
        ct = ev.ct
        if _nat_applies(ev, hook):
            self.pkt = null_binding(self.pkt, ev, manip).packet
        self.pkt = nat_packet(self.pkt, ct, manip)

    def _route_me_harder(self, nat: bool) -> bool:
        """ip_route_me_harder() inside the OUTPUT hook: right after mangle when it changed
        the source, destination, mark or TOS (ipt_mangle_out; nft's route chains likewise),
        right after nat when DNAT changed the destination (nf_nat_ipv4_local_fn). A failure
        drops the packet there, so the later OUTPUT tables never see it. The new route's
        device is not what the rest of OUTPUT compares ``-o`` with (nf_hook_state->out was
        fixed when the hook started); POSTROUTING gets it (see _reroute)."""
        pkt, before = self.pkt, self.table_before
        if nat:
            changed = pkt.dst != before[0]
        else:
            changed = (pkt.dst, pkt.src, pkt.mark, pkt.tos) != before
        if not changed:
            return True
        route = self.machine.host.route_lookup(pkt.dst, pkt.src)
        if not route.ok:
            self._fail("no route after OUTPUT", route)
            return False
        self.route = route
        return True

    def _route_in(self) -> bool:
        pkt = self.pkt
        if self.from_loopback:
            # back through lo the skb keeps the route it was sent with (loopback_xmit keeps
            # its dst, ip_rcv_finish_core routes only packets without one): no input lookup,
            # local delivery as routed on the way out
            self._enter("INPUT", DELIVER, True)
            return True
        route = self.machine.host.route_lookup(pkt.dst, pkt.src, pkt.mark, iif=pkt.iif or "lo")
        if not route.ok:
            self._fail("dropped by routing", route)
            return False
        if route.local:
            self._enter("INPUT", DELIVER, self.from_loopback)
            return True
        if pkt.ttl <= 1:
            # ip_forward(): too many hops, dropped (with an ICMP time exceeded) before FORWARD
            j = self.journey
            j.verdict, j.where, j.packet = Verdict.DROP, "dropped by ip_forward", pkt
            j.note = "TTL exceeded in transit"
            return False
        # ip_forward() lowers the TTL (ip_decrease_ttl) before the FORWARD hook
        self.pkt = pkt.replace(oif=route.dev or "", ttl=pkt.ttl - 1)
        self.where, self.out_dev = "forward", route.dev or ""
        self._enter("FORWARD", POST, False)
        return True

    def _route_out(self) -> bool:
        """Routing before OUTPUT: the socket's route (and source address)."""
        ev, pkt = self.ev, self.pkt
        ev.local = True
        route = self.machine.host.route_lookup(pkt.dst, pkt.src)
        if not route.ok:
            self._fail("no route", route, keep_packet=False)
            return False
        if not pkt.src:
            # the socket's source comes from this lookup before the packet exists, so
            # conntrack sees it in the original tuple too
            pkt = pkt.replace(src=route.prefsrc or 0)
            if ev.ct is not None:
                ev.ct.orig_src = ev.ct.repl_dst = pkt.src
        self.pkt = pkt.replace(oif=route.dev or "")
        self.route = route
        self._enter("OUTPUT", REROUTE, False)
        return True

    def _reroute(self) -> None:
        """After OUTPUT: the packet leaves by the route it has now (the socket's, or the one
        _route_me_harder found inside OUTPUT), whose device POSTROUTING sees."""
        pkt, route = self.pkt, self.route
        dev = route.dev or ""
        if pkt.oif != dev:
            self.pkt = pkt.replace(oif=dev)
        self.where, self.out_dev = "out", dev
        self.loop_back = bool(route.local)
        self.phase = POST

    def _fail(self, where: str, route, keep_packet: bool = True) -> None:
        j = self.journey
        j.verdict, j.where = Verdict.DROP, where
        j.note = f"{route.error}: {route.reason}"
        if keep_packet:
            j.packet = self.pkt

    # ---- exact enumeration -----------------------------------------------------------------
    def fork(self) -> Traversal:
        """A copy that shares nothing mutable with this traversal: it resumes where this
        one stands (the walk's place included)."""
        twin = copy.copy(self)
        j = self.journey
        twin.journey = Journey(j.verdict, j.where, j.out_iface, j.packet, list(j.steps),
                               list(j.events), j.note)
        ev = twin.ev = copy.copy(self.ev)
        ev.events = twin.journey.events
        if ev.ct is not None:
            ev.ct = copy.copy(ev.ct)
        ev.state = ev.state.fork()
        ev.chooser = twin.choose_exhaustively
        if self.w_stack is not None:
            twin.w_stack = list(self.w_stack)
        return twin

    def choose_exhaustively(self, p: Fraction) -> bool:
        """The chooser of exact enumeration: answer "true" and leave a copy that will
        answer "false" at this same decision; certain decisions do not branch."""
        forced = self.forced
        if forced is not None:
            self.forced = None
            return forced
        num, den = p.numerator, p.denominator
        if num <= 0 or num >= den:
            return num >= den
        twin = self.fork()
        twin.forced = False
        twin.numerator = self.numerator * (den - num)
        twin.denominator = self.denominator * den
        self.pending.append(twin)
        self.numerator *= num
        self.denominator *= den
        return True


_NEW_OR_RELATED = int(CtState.NEW | CtState.RELATED)
_UNTRACKED, _INVALID, _RELATED, _ESTABLISHED = (int(CtState.UNTRACKED), int(CtState.INVALID),
                                                int(CtState.RELATED), int(CtState.ESTABLISHED))
_CT_HOOKS = frozenset({"PREROUTING", "OUTPUT"})
_CSUM_PROTOS = frozenset({TCP, UDP, ICMP})


def ctinfo_name(ct) -> str:
    """enum ip_conntrack_info's name for the packet's view of its entry (the state bits
    tested as plain ints: this runs for every packet of a stateful node)."""
    state = int(ct.state)
    if ct.untracked or state & _UNTRACKED:
        return "UNTRACKED"
    if state & _INVALID:
        return "INVALID"
    if state & _RELATED:
        return "RELATED_REPLY" if ct.reply else "RELATED"
    if state & _ESTABLISHED:
        return "ESTABLISHED_REPLY" if ct.reply else "ESTABLISHED"
    return "NEW"


def _nat_applies(ev: EvalContext, hook: str) -> bool:
    ct = ev.ct
    if ct is None or ct.untracked:
        return False
    if not (int(ct.state) & _NEW_OR_RELATED):
        return False
    return not (ct.dnat_done if NAT_MANIP[hook] == "dst" else ct.snat_done)


def explore_traversals(first: Traversal) -> list[tuple[Fraction, Journey]]:
    """Every outcome of ``first`` with its exact probability, by running it and every copy
    it leaves at a random decision (depth first). The probabilities add up to exactly 1."""
    pending = [first]
    first.pending = pending
    first.ev.chooser = first.choose_exhaustively
    outcomes = []
    while pending:
        t = pending.pop()
        journey = t.run()
        outcomes.append((_fraction(t.numerator, t.denominator), journey))
    return outcomes


def _fraction(numerator: int, denominator: int) -> Fraction:
    """numerator/denominator reduced; a power-of-two denominator (every statistic
    probability is u32 / 2^31) is reduced by shifting, much cheaper than a gcd of
    thousand-digit numbers."""
    if denominator & (denominator - 1) == 0 and numerator:
        shift = min((numerator & -numerator).bit_length() - 1, denominator.bit_length() - 1)
        numerator >>= shift
        denominator >>= shift
        try:
            return Fraction(numerator, denominator, _normalize=False)  # Python 3.11
        except TypeError:
            return Fraction(numerator, denominator)
    return Fraction(numerator, denominator)


def new_conntrack(pkt: Packet, state: CtState = CtState.NEW) -> CtView:
    """The single-packet conntrack view: the packet's own tuple as the original direction."""
    return CtView(state=state, proto=pkt.proto, orig_src=pkt.src, orig_dst=pkt.dst,
                  orig_sport=pkt.sport, orig_dport=pkt.dport, repl_src=pkt.dst,
                  repl_dst=pkt.src, repl_sport=pkt.dport, repl_dport=pkt.sport,
                  untracked=bool(state & CtState.UNTRACKED))
