"""``-j LOG``: kernel log of the packet (extensions/libxt_LOG.c; kernel
net/netfilter/xt_LOG.c). Returns XT_CONTINUE.

``--log-level`` takes a syslog name (alert, crit, debug, emerg, error, info, notice, panic,
warning; exact, lower case) or a number 0-7; iptables-save prints the number and omits the
default 4. ``--log-prefix`` (at least one character) is cut to 29 bytes (``char prefix[30]``)
without an error. Flags print in the order --log-tcp-sequence, --log-tcp-options,
--log-ip-options, --log-uid, --log-macdecode, after the prefix and the level.
No table or hook restriction.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass

from .. import engine as _engine
from ..cnum import strtoui_all
from ..ir import Target
from ..util import int_to_ipv4, save_string
from .base import ExtSpec, Given, Kernel, Opt, RuleContext
from .xtopt import check_once

DEFAULT_LEVEL = 4
PREFIX_SIZE = 30  # sizeof(struct xt_log_info.prefix)

LEVEL_NAMES = {"alert": 1, "crit": 2, "debug": 7, "emerg": 0, "error": 3, "info": 6,
               "notice": 5, "panic": 0, "warning": 4}


class LogFlag(enum.IntFlag):
    """XT_LOG_* (include/uapi/linux/netfilter/xt_LOG.h)."""

    TCPSEQ = 0x01
    TCPOPT = 0x02
    IPOPT = 0x04
    UID = 0x08
    MACDECODE = 0x20


_FLAG_OPTS = (("log-tcp-sequence", LogFlag.TCPSEQ), ("log-tcp-options", LogFlag.TCPOPT),
              ("log-ip-options", LogFlag.IPOPT), ("log-uid", LogFlag.UID),
              ("log-macdecode", LogFlag.MACDECODE))


def truncate_bytes(text: str, size: int) -> str:
    """What fits a NUL-terminated ``char[size]`` (strncpy and a final NUL): at most size-1
    bytes, cut in the middle of a UTF-8 sequence if need be (kept as surrogate escapes)."""
    raw = text.encode("utf-8", "surrogateescape")[:size - 1]
    return raw.decode("utf-8", "surrogateescape")


@dataclass(frozen=True, slots=True)
class Log(Target):
    NAME = "LOG"
    TERMINAL = False
    level: int = DEFAULT_LEVEL
    prefix: str = ""
    flags: LogFlag = LogFlag(0)

    def apply(self, pkt, ev):
        """xt_LOG.c log_tg() -> nf_log_syslog.c nf_log_ip_packet()/nf_log_ip6_packet():
        XT_CONTINUE, and a LOG event with the level, the prefix and the kernel's line
        (``line``, see log_line). The kernel writes the line only in the initial network
        namespace unless net.netfilter.nf_log_all_netns is set; nfemu always records it."""
        ev.record("LOG", level=self.level, prefix=self.prefix,
                  line=self.prefix + log_line(pkt, ev, int(self.flags)))
        return _engine.TargetResult(_engine.Verdict.CONTINUE, pkt)

    def save(self) -> str:
        out = ""
        if self.prefix:
            out += f" --log-prefix {save_string(self.prefix)}"
        if self.level != DEFAULT_LEVEL:
            out += f" --log-level {self.level}"
        for name, flag in _FLAG_OPTS:
            if self.flags & flag:
                out += f" --{name}"
        return out


def build(given: list[Given], ctx: RuleContext) -> Log:
    check_once(given, "LOG")
    level, prefix, flags = DEFAULT_LEVEL, "", LogFlag(0)
    for g in given:
        if g.name == "log-level":
            value = LEVEL_NAMES.get(g.arg)
            if value is None:
                value = strtoui_all(g.arg, 0, 7)
                if value is None:
                    raise g.error(f"log level \"{g.arg}\" unknown")
            level = value
        elif g.name == "log-prefix":
            if not g.arg:
                raise g.error("Argument must have a minimum length of 1 characters")
            if "\n" in g.arg:
                raise g.error("Newlines not allowed in --log-prefix")
            prefix = truncate_bytes(g.arg, PREFIX_SIZE)
        else:
            flags |= dict(_FLAG_OPTS)[g.name]
    return Log(level, prefix, flags)


# ---------------------------------------------------------------------------------------------
# The kernel's log line (net/netfilter/nf_log_syslog.c), after the prefix: every field is
# followed by one space, as nf_log_buf_add writes them.

_ICMP_ERROR_QUOTING = frozenset({3, 4, 5, 11})      # dump_ipv4_packet recurses for these
_IPV6_QUOTING = frozenset({1, 2, 3, 4})


def _mac(value: int) -> str:
    return ":".join(f"{b:02x}" for b in value.to_bytes(6, "big"))


def _ipv6_full(addr: int) -> str:
    """%pI6: eight groups of four hex digits, not compressed."""
    text = f"{addr:032x}"
    return ":".join(text[i:i + 4] for i in range(0, 32, 4))


def _mac_header(pkt, flags: int) -> str:
    """dump_mac_header(), called when there is an input device."""
    proto = 0x0800 if pkt.family == 4 else 0x86DD
    if pkt.in_mac is not None and pkt.out_mac is not None:
        if flags & LogFlag.MACDECODE:
            return f"MACSRC={_mac(pkt.in_mac)} MACDST={_mac(pkt.out_mac)} MACPROTO={proto:04x} "
        raw = pkt.out_mac.to_bytes(6, "big") + pkt.in_mac.to_bytes(6, "big") + \
            proto.to_bytes(2, "big")
        return "MAC=" + ":".join(f"{b:02x}" for b in raw) + " "
    if pkt.iif == "lo":           # loopback frames carry an all-zero Ethernet header
        if flags & LogFlag.MACDECODE:
            zero = _mac(0)
            return f"MACSRC={zero} MACDST={zero} MACPROTO={proto:04x} "
        return "MAC=" + ":".join(["00"] * 12 + [f"{proto >> 8:02x}", f"{proto & 0xFF:02x}"]) + " "
    return "MAC= "                # no link-layer header known


def _tcp(pkt, flags: int, fragment: bool) -> str:
    """nf_log_dump_tcp_header()."""
    out = "PROTO=TCP "
    if fragment:
        return out
    avail = _l4_available(pkt)
    if avail is not None and avail < 20:
        return out + f"INCOMPLETE [{avail} bytes] "
    out += f"SPT={pkt.sport} DPT={pkt.dport} "
    if flags & LogFlag.TCPSEQ:
        out += f"SEQ={pkt.tcp_seq} ACK={pkt.tcp_ack} "
    out += f"WINDOW={pkt.tcp_window} "
    # TCP_RESERVED_BITS is 0x0E000000 of the flag word since AccECN took the AE bit
    out += f"RES=0x{(pkt.tcp_reserved & 0xE) << 2:02x} "
    if pkt.tcp_reserved & 1:
        out += "AE "
    for bit, name in ((0x80, "CWR"), (0x40, "ECE"), (0x20, "URG"), (0x10, "ACK"),
                      (0x08, "PSH"), (0x04, "RST"), (0x02, "SYN"), (0x01, "FIN")):
        if pkt.tcp_flags & bit:
            out += name + " "
    out += f"URGP={pkt.tcp_urgptr} "
    if flags & LogFlag.TCPOPT and pkt.tcp_options:
        out += "OPT (" + pkt.tcp_options.hex().upper() + ") "
    return out


def _udp(pkt, fragment: bool) -> str:
    out = "PROTO=UDP "
    if fragment:
        return out
    avail = _l4_available(pkt)
    if avail is not None and avail < 8:
        return out + f"INCOMPLETE [{avail} bytes] "
    return out + f"SPT={pkt.sport} DPT={pkt.dport} LEN={pkt.udp_len} "


def _l4_available(pkt) -> int | None:
    """Bytes after the IP header in a datagram cut short (``captured``), else None."""
    if pkt.captured:
        return max(pkt.captured - pkt.header_len, 0)
    return None


def _spi(pkt, offset: int) -> str | None:
    data = pkt.payload
    if len(data) < offset + 4:
        return None
    return f"SPI=0x{int.from_bytes(data[offset:offset + 4], 'big'):x} "


def _ipv4(pkt, ev, flags: int, top: bool) -> str:
    """dump_ipv4_packet() (``top``: iphoff == 0, i.e. not the datagram an ICMP error
    quotes)."""
    out = f"SRC={int_to_ipv4(pkt.src)} DST={int_to_ipv4(pkt.dst)} "
    out += (f"LEN={pkt.length} TOS=0x{pkt.tos & 0x1E:02X} PREC=0x{pkt.tos & 0xE0:02X} "
            f"TTL={pkt.ttl} ID={pkt.ip_id} ")
    if pkt.ip_flags & 0x4:
        out += "CE "
    if pkt.ip_flags & 0x2:
        out += "DF "
    if pkt.ip_flags & 0x1:
        out += "MF "
    if pkt.frag:
        out += f"FRAG:{pkt.frag} "
    if flags & LogFlag.IPOPT and pkt.ip_options:
        out += "OPT (" + pkt.ip_options.hex().upper() + ") "
    fragment = pkt.frag != 0
    proto = pkt.proto
    if proto == 6:
        out += _tcp(pkt, flags, fragment)
    elif proto in (17, 136):
        out += _udp(pkt, fragment) if proto == 17 else "PROTO=UDPLITE "
    elif proto == 1:
        out += "PROTO=ICMP "
        if not fragment:
            avail = _l4_available(pkt)
            if avail is not None and avail < 8:
                out += f"INCOMPLETE [{avail} bytes] "
            else:
                out += f"TYPE={pkt.icmp_type} CODE={pkt.icmp_code} "
                t = pkt.icmp_type
                if t in (0, 8):
                    out += f"ID={pkt.icmp_id} SEQ={pkt.icmp_seq} "
                elif t == 12:
                    out += f"PARAMETER={pkt.icmp_rest >> 24} "
                elif t in _ICMP_ERROR_QUOTING:
                    if t == 5:
                        out += f"GATEWAY={int_to_ipv4(pkt.icmp_rest)} "
                    if top and pkt.inner is not None:
                        out += "[" + _ipv4(pkt.inner, ev, flags, False) + "] "
                    if t == 3 and pkt.icmp_code == 4:
                        out += f"MTU={pkt.icmp_rest & 0xFFFF} "
    elif proto == 51:
        if not fragment:
            out += "PROTO=AH " + (_spi(pkt, 4) or f"INCOMPLETE [{len(pkt.payload)} bytes] ")
    elif proto == 50:
        out += "PROTO=ESP "
        if not fragment:
            out += _spi(pkt, 0) or f"INCOMPLETE [{len(pkt.payload)} bytes] "
    else:
        out += f"PROTO={proto} "
    if top:
        out += _owner_and_mark(pkt, ev, flags)
    return out


def _owner_and_mark(pkt, ev, flags: int) -> str:
    out = ""
    if flags & LogFlag.UID and ev is not None and ev.sock_uid is not None:
        out += f"UID={ev.sock_uid} GID={ev.sock_gid if ev.sock_gid is not None else 0} "
    if pkt.mark:
        out += f"MARK=0x{pkt.mark:x} "
    return out


def _ipv6(pkt, ev, flags: int, recurse: bool) -> str:
    """dump_ipv6_packet() for the headers the Packet models (a Fragment header at most)."""
    out = f"SRC={_ipv6_full(pkt.src)} DST={_ipv6_full(pkt.dst)} "
    out += f"LEN={pkt.length} TC={pkt.tos} HOPLIMIT={pkt.ttl} FLOWLBL={pkt.flowlabel} "
    fragment = False
    if pkt.v6_frag:
        if flags & LogFlag.IPOPT:
            out += "OPT ( "
        out += f"FRAG:{pkt.frag << 3} "
        if pkt.ip_flags & 1:
            out += "INCOMPLETE "
        out += f"ID:{pkt.ip_id:08x} "
        fragment = pkt.frag != 0
        if flags & LogFlag.IPOPT:
            out += ") "
    proto = pkt.proto
    if proto == 6:
        out += _tcp(pkt, flags, fragment)
    elif proto in (17, 136):
        out += _udp(pkt, fragment) if proto == 17 else "PROTO=UDPLITE "
    elif proto == 58:
        out += "PROTO=ICMPv6 "
        if not fragment:
            out += f"TYPE={pkt.icmp_type} CODE={pkt.icmp_code} "
            t = pkt.icmp_type
            if t in (128, 129):
                out += f"ID={pkt.icmp_id} SEQ={pkt.icmp_seq} "
            elif t in _IPV6_QUOTING:
                if t == 4:
                    out += f"POINTER={pkt.icmp_rest:08x} "
                if recurse and pkt.inner is not None:
                    out += "[" + _ipv6(pkt.inner, ev, flags, False) + "] "
                if t == 2:
                    out += f"MTU={pkt.icmp_rest} "
    else:
        out += f"PROTO={proto} "
    if recurse:
        out += _owner_and_mark(pkt, ev, flags)
    return out


def log_line(pkt, ev=None, flags: int = 0) -> str:
    """What nf_log_ip_packet()/nf_log_ip6_packet() write after the prefix:
    ``IN=eth0 OUT= MAC=... SRC=... DST=... LEN=... TOS=0x00 PREC=0x00 TTL=64 ID=0 DF
    PROTO=TCP SPT=... DPT=... WINDOW=... RES=0x00 SYN URGP=0 `` (every field ends with a
    space, as in the kernel). The MAC part appears when the packet has an input device; UID
    needs --log-uid and a local socket (``ev.sock_uid``)."""
    out = f"IN={pkt.iif} OUT={pkt.oif} "
    if pkt.iif:
        out += _mac_header(pkt, flags)
    if pkt.family == 4:
        return out + _ipv4(pkt, ev, flags, True)
    return out + _ipv6(pkt, ev, flags, True)


SPEC = ExtSpec("LOG", "target",
               (Opt("log-level"), Opt("log-prefix"), *(Opt(n, 0) for n, _ in _FLAG_OPTS)),
               build, Kernel())
