"""libxtables' address option types (xtables/xtoptions.c), shared by the extension modules:
XTTYPE_HOST (``parse_host``), XTTYPE_PLEN / XTTYPE_PLENMASK (``parse_plen``) and
XTTYPE_HOSTMASK (``parse_hostmask``). Only numeric addresses: nfemu never resolves names."""
from __future__ import annotations

import socket

from ..cnum import strtoui_all
from ..errors import ParseError
from ..ir import Family
from ..util import mask_to_prefix, prefix_to_mask
from .base import Given


def parse_host(text: str, family: Family, g: Given) -> int:
    """xtopt_parse_host(): getaddrinfo() of a numeric host. For IPv4 that is inet_aton's
    reading: 1-4 parts, hex and octal allowed."""
    if family is Family.IPV4:
        if text and all(c in "0123456789abcdefABCDEFxX." for c in text):
            try:
                return int.from_bytes(socket.inet_aton(text), "big")
            except OSError:
                pass
    else:
        try:
            return int.from_bytes(socket.inet_pton(socket.AF_INET6, text), "big")
        except (OSError, ValueError):
            pass
    raise g.error(f"host/network `{text}' not found (nfemu accepts numeric addresses only)")


def parse_plen(text: str, family: Family, g: Given, ext: str) -> int | None:
    """xtopt_parse_plen(): a prefix length 0-width, or a network mask; None for a mask that
    is not contiguous (libxtables leaves the length at -1)."""
    width = family.width
    plen = strtoui_all(text, 0, width)
    if plen is not None:
        return plen
    try:
        mask = parse_host(text, family, g)
    except ParseError:
        raise g.error(f"{ext}: bad value for option \"--{g.name}\", neither a valid network "
                      f"mask nor valid CIDR (0-{width}).") from None
    return mask_to_prefix(mask, width)


def plen_mask(plen: int | None, width: int) -> int:
    """XTTYPE_PLENMASK's mask of a parse_plen() result: a length of -1 is all ones."""
    return prefix_to_mask(width if plen is None else plen, width)


def parse_hostmask(g: Given, family: Family, ext: str) -> tuple[int, int]:
    """XTTYPE_HOSTMASK: ``host[/len|/mask]`` (address as given, mask)."""
    host, slash, mask_text = g.arg.partition("/")
    addr = parse_host(host, family, g)
    if not slash:
        return addr, (1 << family.width) - 1
    return addr, plen_mask(parse_plen(mask_text, family, g, ext), family.width)
