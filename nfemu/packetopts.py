"""The command line's packet syntax, in iptables style: ``-p tcp -s 10.244.1.5 --sport 40000
-d 10.96.0.10 --dport 53 -i eth0``.

:func:`add_packet_arguments` adds the options to an argparse parser; :func:`packet_from_args`
turns the parsed namespace into a :class:`~nfemu.packet.Packet` and a :class:`PacketContext`
(where the packet comes from, and its conntrack state for the single-packet view). Values are
read as strings and checked here, so that every bad value raises
:class:`nfemu.errors.ParseError` naming the option (the CLI turns it into a usage error, exit 2).

Options and defaults:

=====================================  ==================================================
``-p tcp|udp|icmp|icmpv6|sctp|NUM``    protocol (names as ``iptables -p``); default tcp
``-s ADDR``                            source; default 192.0.2.1 (TEST-NET-1) for an
                                       arriving packet; for ``--local`` without ``-s`` the
                                       source is 0 and ``PacketContext.auto_src`` is set:
                                       the route lookup chooses it, as the kernel does
``-d ADDR``                            destination (required); IPv6 addresses make an IPv6
                                       packet (``-s`` and ``-d`` must be the same family)
``--sport N`` / ``--dport N``          ports (tcp, udp, sctp); default 40000 (inside
                                       Linux's ip_local_port_range 32768-60999) and 80
``-i IFACE`` | ``--local``             arrives on IFACE, or is locally generated; one is
                                       required
``-o IFACE``                           output device hint (``Packet.oif``); normally the
                                       route lookup decides it
``--mark V``                           skb->mark (C number, 32 bits); default 0
``--tcp-flags F,F``                    the flags set (FIN SYN RST PSH ACK URG ECE CWR, ALL,
                                       NONE); default SYN
``--icmp-type NAME|N[/CODE]``          iptables' ICMP (ICMPv6) names; default echo-request
                                       (id 1, sequence 1)
``--length N``                         IP total length (skb->len); the payload is padded
                                       with zero bytes; default: the headers alone (tcp 40,
                                       udp 28, icmp 28, sctp 52 with one INIT chunk,
                                       IPv6 +20)
``--ttl N`` / ``--tos N``              default 64 / 0
``--fragment``                         a non-first fragment (offset 1480 bytes, no
                                       transport header: ports, flags and ICMP type can
                                       not be given)
``--ctstate S[,S]``                    conntrack state for the single-packet view
                                       (INVALID NEW ESTABLISHED RELATED UNTRACKED, plus
                                       SNAT DNAT); default NEW
``--payload TEXT``                     payload bytes (UTF-8), for string/u32 matches
=====================================  ==================================================

A TCP packet has window 64240 and no options; an SCTP packet carries one INIT chunk (zero
initiate tag, the minimum fields);
an echo request or reply gets id 1 and sequence 1.
"""
from __future__ import annotations

import argparse
import struct
from dataclasses import dataclass

from .errors import Location, ParseError
from .ext.base import Given
from .ext.conntrack import STATE_PARSE_ORDER, CtState
from .ext.icmp import ICMP_NAMES, parse_icmp_type
from .ext.icmp6 import ICMPV6_NAMES
from .packet import ICMP, ICMPV6, SCTP, TCP, UDP, Packet
from .protocols import parse_protocol
from .util import ipv4_to_int, ipv6_to_int, parse_uint

__all__ = ["PacketContext", "add_packet_arguments", "packet_from_args", "DEFAULT_SRC",
           "DEFAULT_SPORT", "DEFAULT_DPORT", "FRAGMENT_OFFSET"]

DEFAULT_SRC = "192.0.2.1"
DEFAULT_SRC6 = "2001:db8::1"
DEFAULT_SPORT = 40000
DEFAULT_DPORT = 80
FRAGMENT_OFFSET = 1480 // 8

#: flags --tcp-flags knows: iptables' six, ECE and CWR, ALL (the six, as iptables) and NONE
TCP_FLAG_NAMES = {"FIN": 0x01, "SYN": 0x02, "RST": 0x04, "PSH": 0x08, "ACK": 0x10,
                  "URG": 0x20, "ECE": 0x40, "CWR": 0x80, "ALL": 0x3F, "NONE": 0}

_WHERE = Location("<command line>", 0, 0)
_PORTED = (TCP, UDP, SCTP)
# an INIT chunk: type 1, flags 0, length 20; initiate tag, a_rwnd, streams out/in, initial TSN
_SCTP_INIT = struct.pack("!BBHIIHHI", 1, 0, 20, 0, 0, 1, 1, 0)


@dataclass(frozen=True, slots=True)
class PacketContext:
    """Where a traced packet starts, beside the packet itself.

    ``arrives_on``: the input device for an arriving packet (None for ``--local``);
    ``local``: locally generated (starts at OUTPUT); ``ctstate``: the conntrack state the
    single-packet view gives it (CtState bits, NEW by default); ``leaves_on``: the ``-o``
    hint or None; ``auto_src``: no source was given for a local packet, so the route lookup
    must choose it."""

    arrives_on: str | None
    local: bool
    ctstate: CtState = CtState.NEW
    leaves_on: str | None = None
    auto_src: bool = False


def add_packet_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the packet options to ``parser`` (destinations are prefixed ``pkt_``)."""
    group = parser.add_argument_group("packet", "the packet to trace, in iptables style")
    add = group.add_argument
    add("-p", "--protocol", dest="pkt_proto", metavar="PROTO",
        help="tcp, udp, icmp, icmpv6, sctp or a number (default tcp)")
    add("-s", "--source", dest="pkt_src", metavar="ADDR",
        help=f"source address (default {DEFAULT_SRC}; chosen by routing with --local)")
    add("-d", "--destination", dest="pkt_dst", metavar="ADDR", help="destination address")
    add("--sport", "--source-port", dest="pkt_sport", metavar="N",
        help=f"source port (default {DEFAULT_SPORT})")
    add("--dport", "--destination-port", dest="pkt_dport", metavar="N",
        help=f"destination port (default {DEFAULT_DPORT})")
    add("-i", "--in-interface", dest="pkt_iif", metavar="IFACE", help="arrives on IFACE")
    add("-o", "--out-interface", dest="pkt_oif", metavar="IFACE",
        help="output device hint (normally chosen by routing)")
    add("--local", dest="pkt_local", action="store_true",
        help="locally generated (starts at OUTPUT)")
    add("--mark", dest="pkt_mark", metavar="V", help="packet mark (default 0)")
    add("--tcp-flags", dest="pkt_tcp_flags", metavar="FLAGS",
        help="TCP flags set, comma separated (default SYN)")
    add("--icmp-type", dest="pkt_icmp_type", metavar="TYPE",
        help="NAME or TYPE[/CODE] (default echo-request)")
    add("--length", dest="pkt_length", metavar="N",
        help="IP total length; the payload is zero-padded (default: headers only)")
    add("--ttl", dest="pkt_ttl", metavar="N", help="TTL / hop limit (default 64)")
    add("--tos", dest="pkt_tos", metavar="N", help="TOS / traffic class byte (default 0)")
    add("--fragment", dest="pkt_fragment", action="store_true",
        help="a non-first fragment (offset 1480, no transport header)")
    add("--ctstate", dest="pkt_ctstate", metavar="STATE",
        help="conntrack state: NEW (default), ESTABLISHED, RELATED, INVALID, UNTRACKED; "
             "plus SNAT, DNAT")
    add("--payload", dest="pkt_payload", metavar="TEXT", help="payload bytes (UTF-8)")


def _error(option: str, message: str) -> ParseError:
    return ParseError(f"{option}: {message}", _WHERE)


def _number(args, name: str, option: str, hi: int, default: int) -> int:
    text = getattr(args, name, None)
    if text is None:
        return default
    value = parse_uint(str(text), 0, hi)
    if value is None:
        raise _error(option, f"bad value `{text}' (0-{hi})")
    return value


def _address(text: str, option: str) -> tuple[int, int]:
    """(family, address) of a numeric IPv4 or IPv6 address (no prefix, no names)."""
    if ":" in text:
        value = ipv6_to_int(text)
        if value is not None:
            return 6, value
    else:
        value = ipv4_to_int(text)
        if value is not None and text.count(".") == 3:
            return 4, value
    raise _error(option, f"bad address `{text}' (a numeric IPv4 or IPv6 address)")


def packet_from_args(args: argparse.Namespace) -> tuple[Packet, PacketContext]:
    """The packet and its context from a namespace filled by :func:`add_packet_arguments`.
    Raises ParseError naming the option for any bad or conflicting value."""
    get = lambda name: getattr(args, name, None)  # noqa: E731

    # where it comes from
    iif, local = get("pkt_iif"), bool(get("pkt_local"))
    if iif is not None and local:
        raise _error("-i", "a packet arrives on an interface or is --local, not both")
    if iif is None and not local:
        raise _error("-i", "say where the packet comes from: -i IFACE (arrives on) or --local")
    for option, name in (("-i", iif), ("-o", get("pkt_oif"))):
        if name is not None and (not name or len(name) > 15 or "/" in name or " " in name):
            raise _error(option, f"bad interface name `{name}'")

    # addresses
    if get("pkt_dst") is None:
        raise _error("-d", "a destination address is required")
    family, dst = _address(get("pkt_dst"), "-d")
    auto_src = False
    if get("pkt_src") is not None:
        src_family, src = _address(get("pkt_src"), "-s")
        if src_family != family:
            raise _error("-s", "source and destination are of different families")
    elif local:
        src, auto_src = 0, True
    else:
        src = _address(DEFAULT_SRC if family == 4 else DEFAULT_SRC6, "-s")[1]

    # protocol
    proto_text = get("pkt_proto")
    if proto_text is None:
        proto = TCP
    else:
        proto = parse_protocol(str(proto_text).lower())
        if proto is None:
            raise _error("-p", f"unknown protocol `{proto_text}'")
        if proto == 0:
            raise _error("-p", "a packet needs one protocol, not `all'")
    if family == 6 and proto == ICMP:
        raise _error("-p", "icmp with IPv6 addresses: use -p icmpv6")
    if family == 4 and proto == ICMPV6:
        raise _error("-p", "icmpv6 with IPv4 addresses: use -p icmp")

    fragment = bool(get("pkt_fragment"))

    def only_for(option: str, name: str, protos: tuple[int, ...], what: str) -> bool:
        if get(name) is None:
            return False
        if proto not in protos:
            raise _error(option, f"needs {what}")
        if fragment:
            raise _error(option, "a non-first fragment (--fragment) has no transport header")
        return True

    fields: dict = dict(family=family, src=src, dst=dst, proto=proto)
    only_for("--sport", "pkt_sport", _PORTED, "-p tcp, udp or sctp")
    only_for("--dport", "pkt_dport", _PORTED, "-p tcp, udp or sctp")
    only_for("--tcp-flags", "pkt_tcp_flags", (TCP,), "-p tcp")
    only_for("--icmp-type", "pkt_icmp_type", (ICMP, ICMPV6), "-p icmp or -p icmpv6")

    payload = b""
    if get("pkt_payload") is not None:
        payload = str(get("pkt_payload")).encode()

    if fragment:
        fields.update(frag=FRAGMENT_OFFSET)
        if family == 6:
            fields.update(v6_frag=True, ip_id=1)
    elif proto in _PORTED:
        fields.update(sport=_port(args, "pkt_sport", "--sport", DEFAULT_SPORT),
                      dport=_port(args, "pkt_dport", "--dport", DEFAULT_DPORT))
        if proto == TCP:
            fields["tcp_flags"] = _tcp_flags(get("pkt_tcp_flags"))
            fields["tcp_window"] = 64240
        elif proto == SCTP:
            fields["sctp_vtag"] = 0
            payload = _SCTP_INIT + payload
    elif proto in (ICMP, ICMPV6):
        itype, code = _icmp_type(get("pkt_icmp_type"), proto)
        fields.update(icmp_type=itype, icmp_code=code)
        if (proto, itype) in ((ICMP, 0), (ICMP, 8), (ICMPV6, 128), (ICMPV6, 129)):
            fields["icmp_rest"] = (1 << 16) | 1

    fields["ttl"] = _number(args, "pkt_ttl", "--ttl", 255, 64)
    fields["tos"] = _number(args, "pkt_tos", "--tos", 255, 0)
    fields["mark"] = _number(args, "pkt_mark", "--mark", 0xFFFFFFFF, 0)
    fields["iif"] = iif or ""
    fields["oif"] = get("pkt_oif") or ""
    fields["payload"] = payload
    packet = Packet(**fields)

    if get("pkt_length") is not None:
        length = _number(args, "pkt_length", "--length", 0xFFFF if family == 4 else 0xFFFF + 40,
                         0)
        if length < packet.length:
            raise _error("--length", f"{length} is shorter than the headers and payload "
                                     f"({packet.length} bytes)")
        packet = packet.replace(payload=payload + bytes(length - packet.length))

    ctstate = _ctstate(get("pkt_ctstate"))
    return packet, PacketContext(arrives_on=iif, local=local, ctstate=ctstate,
                                 leaves_on=get("pkt_oif"), auto_src=auto_src)


def _port(args, name: str, option: str, default: int) -> int:
    text = getattr(args, name, None)
    if text is None:
        return default
    value = parse_uint(str(text), 0, 0xFFFF)
    if value is None:
        raise _error(option, f"bad port `{text}' (0-65535)")
    return value


def _tcp_flags(text: str | None) -> int:
    if text is None:
        return TCP_FLAG_NAMES["SYN"]
    value = 0
    for name in str(text).split(","):
        bit = TCP_FLAG_NAMES.get(name.strip().upper())
        if bit is None:
            raise _error("--tcp-flags", f"unknown TCP flag `{name}'")
        value |= bit
    return value


def _icmp_type(text: str | None, proto: int) -> tuple[int, int]:
    if text is None:
        return (8, 0) if proto == ICMP else (128, 0)
    option = "--icmp-type"
    names = ICMP_NAMES if proto == ICMP else ICMPV6_NAMES
    given = Given(option.lstrip("-"), False, (str(text),), _WHERE)
    try:
        itype, code_lo, code_hi = parse_icmp_type(str(text), given, names,
                                                  "ICMP" if proto == ICMP else "ICMPv6")
    except ParseError as exc:
        raise _error(option, exc.message) from None
    if itype == 0xFF and proto == ICMP:
        raise _error(option, "a packet has one type, not `any'")
    if code_lo != code_hi and (code_lo, code_hi) != (0, 0xFF):
        raise _error(option, "a packet has one code, not a range")
    return itype, code_lo if code_lo == code_hi else 0


def _ctstate(text: str | None) -> CtState:
    if text is None:
        return CtState.NEW
    state = CtState(0)
    for word in str(text).split(","):
        name = next((n for n in STATE_PARSE_ORDER
                     if word and n[:len(word)].lower() == word.lower()), None)
        if name is None:
            raise _error("--ctstate", f"unknown state `{word}' (INVALID, NEW, ESTABLISHED, "
                                      "RELATED, UNTRACKED, SNAT, DNAT)")
        state |= CtState[name]
    base = state & ~(CtState.SNAT | CtState.DNAT)
    if bin(int(base)).count("1") != 1:
        raise _error("--ctstate", f"`{text}': give exactly one of INVALID, NEW, ESTABLISHED, "
                                  "RELATED, UNTRACKED (SNAT and DNAT may be added)")
    return state
