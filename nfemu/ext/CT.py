"""``-j CT`` and ``-j NOTRACK``: conntrack template for the packet (extensions/libxt_CT.c
revision 2, kernel net/netfilter/xt_CT.c). Both return XT_CONTINUE.

CT options: --notrack, --helper NAME, --timeout NAME, --ctevents LIST, --expevents LIST,
--zone/--zone-orig/--zone-reply ID|mark. Printed order: --notrack, --helper, --timeout,
--ctevents, --expevents, zone. The zone prints when its id is non-zero or ``mark`` was given:
``--zone-orig``/``--zone-reply`` when exactly that direction flag is set, else ``--zone``; the
last numeric id wins, direction flags and ``mark`` accumulate (``--zone-orig 5 --zone-reply 6``
is ``--zone 6``, ``--zone mark --zone-orig 5`` is ``--zone-orig mark``, ``--zone-orig 0``
prints nothing).

``-j NOTRACK`` is libxt_CT's alias (XT_CT_NOTRACK | XT_CT_NOTRACK_ALIAS) and iptables-save
prints it as ``-j NOTRACK`` with no options.

Kernel: table raw only (PREROUTING/OUTPUT). Unless --notrack is given, a --helper needs the
rule's protocol (``-p``, not negated) and a helper of that name for it (nfct-helper modules),
and a --timeout needs a timeout policy object, which a fresh namespace has none of.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass

from .. import engine as _engine
from ..cnum import strtoui_all
from ..ir import Target
from ..protocols import TCP, UDP
from .base import OUT, PRE, ExtSpec, Given, Kernel, Opt, RuleContext
from .xtopt import check_once

RAW = Kernel(tables=frozenset({"raw"}), hooks=frozenset({PRE, OUT}))


class CtFlag(enum.IntFlag):
    """XT_CT_* (include/uapi/linux/netfilter/xt_CT.h)."""

    NOTRACK = 0x01
    NOTRACK_ALIAS = 0x02
    ZONE_DIR_ORIG = 0x04
    ZONE_DIR_REPL = 0x08
    ZONE_MARK = 0x10


class CtEvent(enum.IntFlag):
    """enum ip_conntrack_events bits, with libxt_CT's names."""

    NEW = 1 << 0
    RELATED = 1 << 1
    DESTROY = 1 << 2
    REPLY = 1 << 3
    ASSURED = 1 << 4
    PROTOINFO = 1 << 5
    HELPER = 1 << 6
    MARK = 1 << 7
    NATSEQINFO = 1 << 8
    SECMARK = 1 << 9


CT_EVENT_NAMES = (("new", CtEvent.NEW), ("related", CtEvent.RELATED),
                  ("destroy", CtEvent.DESTROY), ("reply", CtEvent.REPLY),
                  ("assured", CtEvent.ASSURED), ("protoinfo", CtEvent.PROTOINFO),
                  ("helper", CtEvent.HELPER), ("mark", CtEvent.MARK),
                  ("natseqinfo", CtEvent.NATSEQINFO), ("secmark", CtEvent.SECMARK))
EXP_EVENT_NAMES = (("new", 1),)  # IPEXP_NEW

# conntrack helpers of Linux 6.x (net/netfilter/nf_conntrack_*.c) and their protocols
HELPERS: dict[str, frozenset[int]] = {
    "ftp": frozenset({TCP}), "irc": frozenset({TCP}), "sip": frozenset({TCP, UDP}),
    "tftp": frozenset({UDP}), "amanda": frozenset({UDP}), "RAS": frozenset({UDP}),
    "Q.931": frozenset({TCP}), "pptp": frozenset({TCP}), "sane": frozenset({TCP}),
    "snmp": frozenset({UDP}), "netbios-ns": frozenset({UDP}),
}
HELPER_NAME_LEN = 16
# xt_ct_target_info_v1.timeout is char[32], yet iptables-nft 1.8.9 on Linux 6.18 reads back only
# the first 4 bytes of a --timeout name (seen: "--timeout aaaaaaaaaa" saves as "--timeout aaaa")
TIMEOUT_SAVED_LEN = 5


def _events_text(mask: int, names) -> str:
    return ",".join(name for name, bit in names if mask & bit)


@dataclass(frozen=True, slots=True)
class Ct(Target):
    """xt_ct_target_info_v1 (revision 2)."""

    NAME = "CT"
    TERMINAL = False
    flags: CtFlag = CtFlag(0)
    helper: str = ""
    timeout: str = ""
    ct_events: CtEvent = CtEvent(0)
    exp_events: int = 0
    zone: int = 0

    @property
    def notrack(self) -> bool:
        return bool(self.flags & CtFlag.NOTRACK)

    def save(self) -> str:
        out = ""
        if self.flags & CtFlag.NOTRACK:
            out += " --notrack"
        if self.helper:
            out += f" --helper {self.helper}"
        if self.timeout:
            out += f" --timeout {self.timeout}"
        if self.ct_events:
            out += f" --ctevents {_events_text(self.ct_events, CT_EVENT_NAMES)}"
        if self.exp_events:
            out += f" --expevents {_events_text(self.exp_events, EXP_EVENT_NAMES)}"
        dirs = self.flags & (CtFlag.ZONE_DIR_ORIG | CtFlag.ZONE_DIR_REPL)
        if self.zone or self.flags & CtFlag.ZONE_MARK:
            if dirs == CtFlag.ZONE_DIR_ORIG:
                out += " --zone-orig"
            elif dirs == CtFlag.ZONE_DIR_REPL:
                out += " --zone-reply"
            else:
                out += " --zone"
            out += " mark" if self.flags & CtFlag.ZONE_MARK else f" {self.zone}"
        return out


    def apply(self, pkt, ev):
        """xt_CT.c xt_ct_target_v1() -> xt_ct_target(); XT_CONTINUE.

        A packet that already has a conntrack reference is left alone ("Previously seen
        (loopback)? Ignore."): in nfemu that is a packet coming back in through lo in
        PREROUTING (its OUTPUT path attached one). --notrack attaches the untracked entry:
        ``ev.ct`` becomes untracked (state UNTRACKED), so conntrack, ctstate and NAT see it
        as such. Otherwise the template's zone (``--zone mark``: the low 16 bits of the
        packet mark, nf_ct_zone_tmpl) and, for a new connection, its helper go to ``ev.ct``;
        timeout policies and event masks are recorded only."""
        return _ct_target(self, pkt, ev)


def _ct_target(value, pkt, ev):
    TargetResult, Verdict = _engine.TargetResult, _engine.Verdict
    if ev.hook == PRE and pkt.iif == "lo":
        return TargetResult(Verdict.CONTINUE, pkt)
    ct = ev.ct
    if value.notrack:
        if ct is not None:
            ct.untracked = True
            ct.state = _engine.CtState.UNTRACKED
        ev.record("NOTRACK")
        return TargetResult(Verdict.CONTINUE, pkt)
    flags = value.flags
    zone = (pkt.mark & 0xFFFF) if flags & CtFlag.ZONE_MARK else value.zone
    detail: dict = {}
    if zone or flags & CtFlag.ZONE_MARK:
        detail["zone"] = zone
        if ct is not None and not ct.untracked:
            ct.zone = zone
    if value.helper:
        detail["helper"] = value.helper
        if ct is not None and not ct.untracked and ct.state & _engine.CtState.NEW:
            ct.helper = value.helper
    if value.timeout:
        detail["timeout"] = value.timeout
    if value.ct_events:
        detail["ctevents"] = _events_text(value.ct_events, CT_EVENT_NAMES)
    if value.exp_events:
        detail["expevents"] = _events_text(value.exp_events, EXP_EVENT_NAMES)
    ev.record("CT", **detail)
    return TargetResult(Verdict.CONTINUE, pkt)


@dataclass(frozen=True, slots=True)
class Notrack(Target):
    """``-j NOTRACK``: CT with --notrack, printed under its own name."""

    NAME = "NOTRACK"
    TERMINAL = False

    @property
    def notrack(self) -> bool:
        return True

    def apply(self, pkt, ev):
        """xt_CT.c notrack_tg(): as CT --notrack (see Ct.apply)."""
        return _ct_target(self, pkt, ev)


def _parse_events(g: Given, names) -> int:
    mask = 0
    lookup = dict(names)
    for word in g.arg.split(","):
        if word not in lookup:
            raise g.error(f"Unknown event type \"{word}\"")
        mask |= lookup[word]
    return mask


def build(given: list[Given], ctx: RuleContext) -> Ct:
    check_once(given, "CT")
    flags, zone = CtFlag(0), 0
    f: dict = {}
    for g in given:
        name = g.name
        if name == "notrack":
            flags |= CtFlag.NOTRACK
        elif name == "helper":
            f["helper"] = g.arg.encode("utf-8", "surrogateescape")[:HELPER_NAME_LEN - 1] \
                .decode("utf-8", "surrogateescape")
        elif name == "timeout":
            f["timeout"] = g.arg.encode("utf-8", "surrogateescape")[:TIMEOUT_SAVED_LEN - 1] \
                .decode("utf-8", "surrogateescape")
        elif name == "ctevents":
            f["ct_events"] = CtEvent(_parse_events(g, CT_EVENT_NAMES))
        elif name == "expevents":
            f["exp_events"] = _parse_events(g, EXP_EVENT_NAMES)
        else:  # zone, zone-orig, zone-reply
            if name == "zone-orig":
                flags |= CtFlag.ZONE_DIR_ORIG
            elif name == "zone-reply":
                flags |= CtFlag.ZONE_DIR_REPL
            if g.arg == "mark":
                flags |= CtFlag.ZONE_MARK
            else:
                value = strtoui_all(g.arg, 0, 0xFFFF)
                if value is None:
                    raise g.error(f"Cannot parse {g.arg} as a zone ID")
                zone = value  # ZONE_MARK, once set, stays
    return Ct(flags=flags, zone=zone, **f)


def check(value: Ct, table: str, hooks, rule) -> list[str]:
    """xt_ct_tg_check(): with --notrack nothing else is looked at."""
    if value.notrack:
        return []
    out = []
    if value.helper:
        proto = 0 if rule.proto_inv else rule.proto
        if not proto:
            out.append(f"-j CT --helper {value.helper}: the helper needs the rule's protocol "
                       "(-p) (kernel: \"Specified helper requires protocol\", ENOENT)")
        elif proto not in HELPERS.get(value.helper, ()):
            out.append(f"-j CT --helper {value.helper}: no such conntrack helper for this "
                       "protocol (ENOENT)")
    if value.timeout:
        out.append(f"-j CT --timeout {value.timeout}: no timeout policy of that name "
                   "(a fresh network namespace has none; EINVAL)")
    return out


def build_notrack(given: list[Given], ctx: RuleContext) -> Notrack:
    return Notrack()


ct_spec = ExtSpec(
    "CT", "target",
    (Opt("notrack", 0), Opt("helper"), Opt("timeout"), Opt("ctevents"), Opt("expevents"),
     Opt("zone-orig"), Opt("zone-reply"), Opt("zone")),
    build, RAW, check=check)
notrack_spec = ExtSpec("NOTRACK", "target", (), build_notrack, RAW)

SPECS = (ct_spec, notrack_spec)
