"""Small value parsers shared by the extensions, each mirroring a libxtables helper."""
from __future__ import annotations

import re
import socket
import struct

from .cnum import ULONG_MAX, strtoui_all

_PLAIN_QUAD = re.compile(r"(?:(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])\.){3}"
                         r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])\Z")


def parse_c_uint(text: str) -> int | None:
    """An unsigned C number filling the whole string (cnum.strtoui_all), or None.

    Unlike C, leading Unicode white space (Python's str.isspace) is skipped too: kept so that
    behaviour does not change."""
    return strtoui_all(text.lstrip(), 0, ULONG_MAX)


def parse_uint(text: str, lo: int = 0, hi: int = 0xFFFFFFFF) -> int | None:
    """xtables_strtoui(text, NULL, &v, lo, hi), with parse_c_uint's white space."""
    return strtoui_all(text.lstrip(), lo, hi)


def ipv4_to_int(text: str, is_mask: bool = False) -> int | None:
    """A numeric IPv4 address as libxtables' __numeric_to_ipaddr() reads it: up to four parts,
    each a C number 0-255 (so hex and octal parts work); an address (not a mask) with fewer
    parts is completed with zeros ("10.1" is 10.1.0.0). None when it is not numeric."""
    if _PLAIN_QUAD.match(text):  # the usual spelling: four plain decimal parts
        a, b, c, d = text.split(".")
        return (int(a) << 24) | (int(b) << 16) | (int(c) << 8) | int(d)
    parts = text[:19].split(".")
    if len(parts) > 4 or (is_mask and len(parts) != 4):
        return None
    octets = []
    for part in parts:
        octet = parse_uint(part, 0, 255)
        if octet is None:
            return None
        octets.append(octet)
    octets += [0] * (4 - len(octets))
    return (octets[0] << 24) | (octets[1] << 16) | (octets[2] << 8) | octets[3]


def int_to_ipv4(value: int) -> str:
    return socket.inet_ntoa(struct.pack("!I", value))


def ipv6_to_int(text: str) -> int | None:
    try:
        return int.from_bytes(socket.inet_pton(socket.AF_INET6, text), "big")
    except (OSError, ValueError):
        return None


def int_to_ipv6(value: int) -> str:
    return socket.inet_ntop(socket.AF_INET6, value.to_bytes(16, "big"))


def prefix_to_mask(bits: int, width: int = 32) -> int:
    return ((1 << width) - 1) ^ ((1 << (width - bits)) - 1)


def mask_to_prefix(mask: int, width: int = 32) -> int | None:
    """The prefix length of a contiguous mask, or None when the mask is not contiguous."""
    inverted = ((1 << width) - 1) ^ mask
    if inverted & (inverted + 1):
        return None
    return width - inverted.bit_length()


def save_string(value: str) -> str:
    """A string argument as iptables-save prints it (xtables_save_string): bare when non-empty
    and only [A-Za-z0-9_-], else in double quotes with \\" \\\\ \\' escaped."""
    if value and _BARE.fullmatch(value):
        return value
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("'", "\\'")
    return f'"{escaped}"'


_BARE = re.compile(r"[A-Za-z0-9_-]+")
