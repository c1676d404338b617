"""``-p tcp [-m tcp]``: ports, flags and options (libxt_tcp.c, kernel xt_tcpudp.c tcp_mt).

The kernel requires the rule to say ``-p tcp`` (xt_match.proto = IPPROTO_TCP)."""
from __future__ import annotations

from dataclasses import dataclass

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

    @property
    def native(self) -> bool:
        """iptables-nft turns this match into native nf_tables expressions (see
        nfemu/nftnative.py): it has a port or flag test and no --tcp-option."""
        if self.option or self.option_inv:
            return False
        return bool(self.sport != (0, 0xFFFF) or self.sport_inv or self.dport != (0, 0xFFFF)
                    or self.dport_inv or self.flags_mask or self.flags_inv)

    def match(self, pkt, ev) -> bool:
        """xt_tcpudp.c tcp_mt() for an xtables match (one with --tcp-option); for a native
        one (see nfemu/nftnative.py) the nf_tables expressions iptables-nft 1.8.9 emits
        (iptables/nft.c add_nft_tcp/add_nft_tcpudp, checked with ``nft --debug=netlink``):

        * no protocol test of its own (the rule's ``-p`` is a separate ``meta l4proto``, so
          ``! -p tcp --dport 80`` reads bytes 2-3 of whatever transport header follows);
        * a non-first fragment or a transport header too short makes the rule not match
          (nft_payload: NFT_BREAK), never a hotdrop (tcp_mt drops offset-1 fragments);
        * ``! --sport A ! --dport B`` with single nonzero ports is ONE 32-bit comparison of
          both ports (cmp neq): it matches unless both are equal (iptables < 1.8.11;
          fixed upstream in March 2024), unlike tcp_mt's "neither equal";
        * ``! --sport 0:65535`` emits nothing before iptables 1.8.11 (no test at all), which
          is also what the IR holds after merge_native (the match is gone).
        """
        if self.native:
            return _native_match(self, pkt, True)
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
    raw = th_bytes(pkt, 4)
    if raw is None:
        return None
    return int.from_bytes(raw[:2], "big"), int.from_bytes(raw[2:], "big")


def _native_range(lo: int, hi: int, inv: bool, port: int) -> bool:
    # expr_gen_range_cmp16(): eq/neq, lte/gt, range eq/neq: all equal the negated range
    return (lo <= port <= hi) != inv


def _native_match(m, pkt, tcp: bool) -> bool:
    """iptables-nft 1.8.9 add_nft_tcpudp() (+ the flags test of add_nft_tcp): payload loads
    from the transport header; a failed load (fragment, short header) is NFT_BREAK."""
    full = (0, 0xFFFF)
    if tcp and (m.flags_mask or m.flags_inv):
        raw = th_bytes(pkt, 14)
        if raw is None:
            return False
        if ((raw[13] & m.flags_mask) == m.flags_cmp) == m.flags_inv:
            return False
    test_s = m.sport != full           # 1.8.9: `! --sport 0:65535` emits no test
    test_d = m.dport != full
    if not (test_s or test_d):
        return True
    ports = th_ports(pkt)
    if ports is None:
        return False
    sport, dport = ports
    (slo, shi), (dlo, dhi) = m.sport, m.dport
    if slo and slo == shi and dlo and dlo == dhi and m.sport_inv == m.dport_inv:
        # one 32-bit compare of both ports: cmp eq / cmp neq
        both = sport == slo and dport == dlo
        return both != m.sport_inv
    if test_s and not _native_range(slo, shi, m.sport_inv, sport):
        return False
    if test_d and not _native_range(dlo, dhi, m.dport_inv, dport):
        return False
    return True
