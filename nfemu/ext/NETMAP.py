"""``-j NETMAP --to ADDR[/MASK]``: map a whole network 1:1 (extensions/libipt_NETMAP.c,
libip6t_NETMAP.c; kernel net/netfilter/xt_NETMAP.c).

``--to`` is an XTTYPE_HOSTMASK: the address as getaddrinfo() reads it (for IPv4 that is
inet_aton: ``10.1`` is 10.0.0.1, parts may be hex or octal; nfemu never resolves names) and
the mask first as a prefix length (a C number, so ``016`` is 14), else as a numeric address.
A mask that is not contiguous ends up as all ones (iptables 1.8.9 stores its length as -1), so
``10.1.2.3/255.0.255.0`` loads as ``10.1.2.3/32``. The range kept is
``min = addr & mask``, ``max = min | ~mask``; iptables-save prints ``min/len``.

Kernel: table nat, any of its hooks (PREROUTING/POSTROUTING map the destination/source,
OUTPUT/INPUT too).
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from ..cnum import strtoui_all
from ..ir import Family, Target
from ..util import int_to_ipv4, int_to_ipv6, ipv6_to_int, mask_to_prefix, prefix_to_mask
from .base import IN, OUT, POST, PRE, ExtSpec, Given, Kernel, Opt, RuleContext
from .NAT import MANIP_DST, NAT_TABLES, NatFlag, NatRange, hook_manip, nat_setup
from .xtopt import check_once, ctx_error

_ATON_PART = re.compile(r"0[xX][0-9a-fA-F]*|0[0-7]*|[1-9][0-9]*")


def inet_aton(text: str) -> int | None:
    """glibc __inet_aton_exact(): 1 to 4 parts (decimal, 0-octal or 0x-hex); the last part
    fills the remaining bytes."""
    parts = text.split(".")
    if not 1 <= len(parts) <= 4:
        return None
    values = []
    for part in parts:
        if not _ATON_PART.fullmatch(part):
            return None
        if part[:2] in ("0x", "0X"):
            values.append(int(part[2:] or "0", 16))
        elif len(part) > 1 and part[0] == "0":
            values.append(int(part, 8))
        else:
            values.append(int(part))
    *head, last = values
    if any(v > 255 for v in head) or last >= 1 << (8 * (4 - len(head))):
        return None
    result = 0
    for i, v in enumerate(head):
        result |= v << (24 - 8 * i)
    return result | last


def _host(text: str, family: Family) -> int | None:
    return inet_aton(text) if family is Family.IPV4 else ipv6_to_int(text)


@dataclass(frozen=True, slots=True)
class Netmap(Target):
    NAME = "NETMAP"
    TERMINAL = True
    range: NatRange = NatRange(NatFlag.MAP_IPS)

    def save(self) -> str:
        r = self.range
        width = r.family.width
        mask = ((1 << width) - 1) ^ (r.min_addr ^ r.max_addr)
        to_text = int_to_ipv4 if r.family is Family.IPV4 else int_to_ipv6
        bits = mask_to_prefix(mask, width)
        return f" --to {to_text(r.min_addr)}/{bits if bits is not None else to_text(mask)}"

    def apply(self, pkt, ev):
        """xt_NETMAP.c netmap_tg4()/netmap_tg6(): ``netmask = ~(min ^ max)``; the new address
        keeps the host part of the packet's destination (PREROUTING, OUTPUT) or source
        (INPUT, POSTROUTING) and takes the network part of ``min``; then nf_nat_setup_info()
        with that single address for the hook's manip (HOOK2MANIP)."""
        r = self.range
        full = (1 << r.family.width) - 1
        netmask = full ^ (r.min_addr ^ r.max_addr)
        manip = hook_manip(ev.hook)
        old = pkt.dst if manip == MANIP_DST else pkt.src
        new = (old & ~netmask & full) | (r.min_addr & netmask)
        newrange = NatRange(NatFlag(int(r.flags) | int(NatFlag.MAP_IPS)), new, new,
                            r.min_port, r.max_port, 0, r.family)
        return nat_setup(pkt, ev, newrange, manip, "DNAT" if manip == MANIP_DST else "SNAT",
                         by="NETMAP")


def build(given: list[Given], ctx: RuleContext) -> Netmap:
    check_once(given, "NETMAP")
    family = ctx.family
    width = family.width
    full = (1 << width) - 1
    result = None
    for g in given:
        host_text, slash, mask_text = g.arg.partition("/")
        mask = full
        if slash:
            bits = strtoui_all(mask_text, 0, width)
            if bits is not None:
                mask = prefix_to_mask(bits, width)
            else:
                as_addr = inet_aton(mask_text) if family is Family.IPV4 else (
                    ipv6_to_int(mask_text))
                if as_addr is None:
                    raise g.error(f"NETMAP: bad value for option \"--to\", neither a valid "
                                  f"network mask nor valid CIDR (0-{width}).")
                mask = as_addr if mask_to_prefix(as_addr, width) is not None else full
        addr = _host(host_text, family)
        if addr is None:
            raise g.error(f"host `{host_text}' not found (nfemu reads numeric addresses only "
                          "and never resolves names)")
        lo = addr & mask
        result = NatRange(NatFlag.MAP_IPS, lo, lo | (full ^ mask), family=family)
    if result is None:
        raise ctx_error(ctx, "NETMAP: option \"--to\" must be specified")
    return Netmap(result)


SPEC = ExtSpec("NETMAP", "target", (Opt("to"),), build,
               Kernel(tables=NAT_TABLES, hooks=frozenset({PRE, IN, OUT, POST})))
