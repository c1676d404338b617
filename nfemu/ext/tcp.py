"""``-p tcp [-m tcp]``: ports, flags and options (libxt_tcp.c, kernel xt_tcpudp.c tcp_mt).

The kernel requires the rule to say ``-p tcp`` (xt_match.proto = IPPROTO_TCP)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

from ..ir import Match
from ..protocols import TCP
from ..util import parse_uint
from .base import ExtSpec, Given, Opt, RuleContext
from .ports import check_ports_proto, parse_port_range, save_ports

FLAG_NAMES = (("FIN", 0x01), ("SYN", 0x02), ("RST", 0x04), ("PSH", 0x08), ("ACK", 0x10),
              ("URG", 0x20), ("ALL", 0x3F), ("NONE", 0))


@dataclass(frozen=True, slots=True)
class Tcp(Match):
    NAME = "tcp"
    sport: tuple[int, int] = (0, 0xFFFF)
    sport_inv: bool = False
    dport: tuple[int, int] = (0, 0xFFFF)
    dport_inv: bool = False
    option: int = 0
    option_inv: bool = False
    flags_mask: int = 0
    flags_cmp: int = 0
    flags_inv: bool = False
    #: For a native match of a loaded rule (set by nfemu/nftnative.py): the nf_tables
    #: comparisons iptables-nft stored for ALL the rule's tcp matches, which the fields above
    #: (what iptables-nft-save prints) do not always describe. None: not native, or built by
    #: hand (then the comparisons are those the fields above emit on their own).
    nft: tuple | None = None

    @property
    def native(self) -> bool:
        """iptables-nft turns this match into native nf_tables expressions (see
        nfemu/nftnative.py): no --tcp-option, and not all fields at their defaults (1.8.9
        nft.c tcp_all_zero compares the whole struct xt_tcp, so ``--tcp-flags NONE ALL``,
        whose cmp is not zero, is native, and stores nothing: seen with nft --debug)."""
        if self.option or self.option_inv:
            return False
        return bool(self.sport != (0, 0xFFFF) or self.sport_inv or self.dport != (0, 0xFFFF)
                    or self.dport_inv or self.flags_mask or self.flags_cmp or self.flags_inv)

    def match(self, pkt, ev) -> bool:
        """xt_tcpudp.c tcp_mt() for an xtables match (one with --tcp-option, or no test at
        all); for a native one (see nfemu/nftnative.py) the nf_tables comparisons
        iptables-nft 1.8.9 stored (``self.nft``, see :func:`nft_program` and
        :func:`run_nft`): no protocol test of their own, a failed load is NFT_BREAK (the
        rule does not match, never a hotdrop), ``! --sport A ! --dport B`` with single
        nonzero ports one 32-bit "not equal" (matches unless both ports are equal)."""
        prog = self.nft
        if prog is None and self.native:
            prog = nft_program(self)
        if prog is not None:
            return run_nft(prog, pkt)
        # tcp_mt()
        if pkt.frag:
            if pkt.frag == 1:
                # "Don't allow a fragment of TCP 8 bytes in" (tcp_mt: fragoff == 1)
                hotdrop(ev, "tcp: fragment offset 1")
            return False
        if pkt.proto != TCP or l4_avail(pkt) < 20:
            # skb_header_pointer(th) failed: "Dropping evil TCP offset=0 tinygram"
            hotdrop(ev, "tcp: header cut short")
            return False
        if not port_match(*self.sport, pkt.sport, self.sport_inv):
            return False
        if not port_match(*self.dport, pkt.dport, self.dport_inv):
            return False
        if ((pkt.tcp_flags & self.flags_mask) == self.flags_cmp) == self.flags_inv:
            return False
        if self.option:
            optlen = len(pkt.tcp_options)          # th->doff * 4 - sizeof(struct tcphdr)
            if not optlen:
                return self.option_inv             # tcp_find_option: !optlen -> invert
            if l4_avail(pkt) < 20 + optlen:
                hotdrop(ev, "tcp: options cut short")
                return False
            found = bool(pkt.tcp_option_kinds >> self.option & 1)
            return found != self.option_inv
        return True

    def save(self) -> str:
        out = save_ports(self.sport, self.sport_inv, self.dport, self.dport_inv)
        if self.option or self.option_inv:
            out.append(f"{' !' if self.option_inv else ''} --tcp-option {self.option}")
        if self.flags_mask or self.flags_inv:
            out.append(f"{' !' if self.flags_inv else ''} --tcp-flags "
                       f"{flags_text(self.flags_mask)} {flags_text(self.flags_cmp)}")
        return "".join(out)


def flags_text(flags: int) -> str:
    """print_tcpf(): names of the set bits joined by commas, NONE when empty."""
    names = []
    while flags:
        for name, bit in FLAG_NAMES:
            if flags & bit:
                names.append(name)
                flags &= ~bit
                break
    return ",".join(names) if names else "NONE"


def parse_flags(text: str, g: Given) -> int:
    value = 0
    for name in text.split(","):
        for known, bit in FLAG_NAMES:
            if name.upper() == known:
                value |= bit
                break
        else:
            raise g.error(f"Unknown TCP flag `{name}'")
    return value


def build(given: list[Given], ctx: RuleContext) -> Tcp:
    fields: dict = {}
    seen: set[str] = set()
    for g in given:
        key = {"source-port": "sport", "destination-port": "dport"}.get(g.name, g.name)
        key = "tcp-flags" if key == "syn" else key
        if key in seen:
            what = {"sport": "--source-port", "dport": "--destination-port",
                    "tcp-flags": "--tcp-flags", "tcp-option": "--tcp-option"}[key]
            raise g.error(f"Only one `{what}' allowed")
        seen.add(key)
        if key == "sport":
            fields["sport"], fields["sport_inv"] = parse_port_range(g.arg, g), g.inv
        elif key == "dport":
            fields["dport"], fields["dport_inv"] = parse_port_range(g.arg, g), g.inv
        elif g.name == "syn":
            fields.update(flags_mask=0x17, flags_cmp=0x02, flags_inv=g.inv)
        elif key == "tcp-flags":
            fields.update(flags_mask=parse_flags(g.args[0], g), flags_cmp=parse_flags(g.args[1], g),
                          flags_inv=g.inv)
        elif key == "tcp-option":
            option = parse_uint(g.arg, 1, 255)
            if option is None:
                raise g.error(f"Bad TCP option `{g.arg}'")
            fields["option"], fields["option_inv"] = option, g.inv
    return Tcp(**fields)


def check(value: Tcp, table: str, hooks, rule) -> list[str]:
    """A native match only needs the rule's protocol to be tcp (iptables-nft checks it: even
    ``! -p tcp`` passes); an xtables one gets the kernel's check: ``-p tcp``, not negated."""
    return check_ports_proto(value, rule, TCP, "tcp")


SPEC = ExtSpec(
    "tcp", "match",
    (Opt("source-port"), Opt("sport"), Opt("destination-port"), Opt("dport"), Opt("syn", 0),
     Opt("tcp-flags", 2), Opt("tcp-option")),
    build, check=check)


# ---- evaluation helpers shared by udp, icmp, multiport and sctp ------------------------------

def port_match(lo: int, hi: int, port: int, invert: bool) -> bool:
    """xt_tcpudp.c port_match(): inclusive range, xor invert."""
    return (lo <= port <= hi) != invert


def hotdrop(ev, reason: str) -> None:
    """``par->hotdrop = true``: the kernel drops the packet at once (NF_DROP, no further
    rules). EvalContext has no field for it yet: set ``ev.hotdrop`` and record a HOTDROP
    event so the chain walk can honour it."""
    try:
        ev.hotdrop = True
    except AttributeError:
        pass
    ev.record("HOTDROP", reason=reason)


def l4_avail(pkt) -> int:
    """Bytes of the datagram after the IP header(s): what skb_header_pointer(skb, thoff, ...)
    can read (the skb holds the whole tot_len, even when a capture was cut short)."""
    return pkt.length - pkt.header_len


_PORT_PROTOS = frozenset({6, 17, 132})


def th_bytes(pkt, n: int) -> bytes | None:
    """The first ``n`` bytes of the transport header, whatever the protocol, or None when the
    datagram is shorter (non-first fragments have no transport header)."""
    if pkt.frag or l4_avail(pkt) < n:
        return None
    if pkt.proto in _PORT_PROTOS and n <= 4:
        return pkt.sport.to_bytes(2, "big") + pkt.dport.to_bytes(2, "big")
    data = pkt.to_bytes()[pkt.header_len:pkt.header_len + n]
    return data if len(data) == n else None


def th_ports(pkt) -> tuple[int, int] | None:
    """The two 16-bit words at the start of the transport header (source and destination
    port for tcp, udp, udplite, sctp, dccp), or None when they cannot be read."""
    if pkt.proto in _PORT_PROTOS:
        if pkt.frag or pkt.length - pkt.header_len < 4:
            return None
        return pkt.sport, pkt.dport
    raw = th_bytes(pkt, 4)
    if raw is None:
        return None
    return int.from_bytes(raw[:2], "big"), int.from_bytes(raw[2:], "big")


# ---- native matches: what iptables-nft 1.8.9 stores, and how nf_tables evaluates it ----------

class Cmp(NamedTuple):
    """One nf_tables test iptables-nft stores for a tcp/udp match: a payload load from the
    transport header, then a ``cmp`` (or ``range``) expression.

    ``field``: ``"sport"`` (2 bytes @ th+0), ``"dport"`` (2 bytes @ th+2), ``"ports"`` (4
    bytes @ th+0, the value ``sport << 16 | dport``), ``"flags"`` (1 byte @ th+13, ANDed with
    ``mask`` by a ``bitwise`` expression first). ``op``: ``eq``, ``neq``, ``lte``, ``gt``
    (nft_cmp on the big-endian bytes, so numeric order), ``range_eq``, ``range_neq``
    (nft_range, inclusive ``a``..``b``; with ``a > b`` range_eq never holds)."""
    field: str
    op: str
    a: int
    b: int = 0
    mask: int = 0


def _port_cmp(field: str, lo: int, hi: int, inv: bool) -> Cmp:
    """iptables 1.8.9 nft.c expr_gen_range_cmp16(): one port is cmp eq/neq, 0:hi (hi below
    65535) cmp lte/gt hi, any other range an nft_range eq/neq (lo:65535 included)."""
    if lo == hi:
        return Cmp(field, "neq" if inv else "eq", lo)
    if lo == 0 and hi < 0xFFFF:
        return Cmp(field, "gt" if inv else "lte", hi)
    return Cmp(field, "range_neq" if inv else "range_eq", lo, hi)


def nft_program(m) -> tuple[Cmp, ...]:
    """The tests iptables-nft 1.8.9 stores for one native tcp/udp match M on its own
    (nft.c add_nft_tcp: the flags test first, only when the mask is nonzero; then
    add_nft_tcpudp): both ports single, nonzero and negated alike -> one 32-bit cmp of both;
    otherwise a test per port that is not 0:65535 (``! --sport 0:65535`` and
    ``! --tcp-flags NONE NONE`` store nothing at all). Checked with ``nft --debug=netlink``."""
    out = []
    if type(m) is Tcp and m.flags_mask:
        out.append(Cmp("flags", "neq" if m.flags_inv else "eq", m.flags_cmp, 0, m.flags_mask))
    (slo, shi), (dlo, dhi) = m.sport, m.dport
    if slo and slo == shi and dlo and dlo == dhi and m.sport_inv == m.dport_inv:
        out.append(Cmp("ports", "neq" if m.sport_inv else "eq", slo << 16 | dlo))
        return tuple(out)
    if slo or shi < 0xFFFF:
        out.append(_port_cmp("sport", slo, shi, m.sport_inv))
    if dlo or dhi < 0xFFFF:
        out.append(_port_cmp("dport", dlo, dhi, m.dport_inv))
    return tuple(out)


def th_flags(pkt) -> int | None:
    """Byte 13 of the transport header (the TCP flags for tcp), None when it cannot be read."""
    if pkt.proto == TCP:
        return None if pkt.frag or l4_avail(pkt) < 14 else pkt.tcp_flags
    raw = th_bytes(pkt, 14)
    return None if raw is None else raw[13]


def run_nft(prog: tuple, pkt) -> bool:
    """Evaluate stored tests as nf_tables does (nft_do_chain): in order, the rule stops
    matching at the first test that fails or whose payload load fails (nft_payload_eval:
    non-first fragment or transport header too short -> NFT_BREAK)."""
    ports = None
    for field, op, a, b, mask in prog:
        if field == "flags":
            v = th_flags(pkt)
            if v is None:
                return False
            v &= mask
        else:
            if ports is None:
                ports = th_ports(pkt)
                if ports is None:
                    return False
            if field == "dport":
                v = ports[1]
            elif field == "sport":
                v = ports[0]
            else:
                v = ports[0] << 16 | ports[1]
        if op == "eq":
            ok = v == a
        elif op == "neq":
            ok = v != a
        elif op == "lte":
            ok = v <= a
        elif op == "gt":
            ok = v > a
        elif op == "range_eq":
            ok = a <= v <= b
        else:
            ok = not a <= v <= b
        if not ok:
            return False
    return True
