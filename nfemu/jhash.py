"""The kernel's Jenkins hash (include/linux/jhash.h) and the address choice NAT makes with it
(net/netfilter/nf_nat_core.c ``find_best_ips_proto``).

``jhash2`` works on u32 words exactly as the C code does (all arithmetic modulo 2^32).
NAT hashes ``union nf_inet_addr`` as it lies in memory: the address in network byte order,
read as native u32 words. nfemu models a little-endian machine (x86-64, arm64: what real
nodes run), so each word is the byte-swapped big-endian slice of the address; an IPv4 address
is one such word followed by three zero words (the union is 16 bytes and the tuple is zeroed).
"""
from __future__ import annotations

JHASH_INITVAL = 0xDEADBEEF
_M = 0xFFFFFFFF


def _rol32(w: int, s: int) -> int:
    return ((w << s) | (w >> (32 - s))) & _M


def jhash2(words, initval: int) -> int:
    """jhash2(k, length, initval) of include/linux/jhash.h over the u32 ``words``."""
    length = len(words)
    a = b = c = (JHASH_INITVAL + (length << 2) + initval) & _M
    k = 0
    while length > 3:
        a = (a + words[k]) & _M
        b = (b + words[k + 1]) & _M
        c = (c + words[k + 2]) & _M
        # __jhash_mix(a, b, c)
        a = (a - c) & _M; a ^= _rol32(c, 4); c = (c + b) & _M       # noqa: E702
        b = (b - a) & _M; b ^= _rol32(a, 6); a = (a + c) & _M       # noqa: E702
        c = (c - b) & _M; c ^= _rol32(b, 8); b = (b + a) & _M       # noqa: E702
        a = (a - c) & _M; a ^= _rol32(c, 16); c = (c + b) & _M      # noqa: E702
        b = (b - a) & _M; b ^= _rol32(a, 19); a = (a + c) & _M      # noqa: E702
        c = (c - b) & _M; c ^= _rol32(b, 4); b = (b + a) & _M       # noqa: E702
        length -= 3
        k += 3
    if length == 0:
        return c
    if length == 3:
        c = (c + words[k + 2]) & _M
    if length >= 2:
        b = (b + words[k + 1]) & _M
    a = (a + words[k]) & _M
    # __jhash_final(a, b, c)
    c ^= b; c = (c - _rol32(b, 14)) & _M        # noqa: E702
    a ^= c; a = (a - _rol32(c, 11)) & _M        # noqa: E702
    b ^= a; b = (b - _rol32(a, 25)) & _M        # noqa: E702
    c ^= b; c = (c - _rol32(b, 16)) & _M        # noqa: E702
    a ^= c; a = (a - _rol32(c, 4)) & _M         # noqa: E702
    b ^= a; b = (b - _rol32(a, 14)) & _M        # noqa: E702
    c ^= b; c = (c - _rol32(b, 24)) & _M        # noqa: E702
    return c


def _bswap32(w: int) -> int:
    return int.from_bytes(w.to_bytes(4, "big"), "little")


def addr_words(addr: int, family: int) -> list[int]:
    """``union nf_inet_addr.all[0..3]`` as native (little-endian) u32 values."""
    if family == 4:
        return [_bswap32(addr & _M), 0, 0, 0]
    return [_bswap32((addr >> (96 - 32 * i)) & _M) for i in range(4)]


def _words_addr(words: list[int], family: int) -> int:
    if family == 4:
        return _bswap32(words[0])
    out = 0
    for w in words:
        out = (out << 32) | _bswap32(w)
    return out


def reciprocal_scale(val: int, ep_ro: int) -> int:
    """include/linux/kernel.h: ``(u32)(((u64) val * ep_ro) >> 32)``."""
    return ((val * ep_ro) >> 32) & _M


def find_best_ip(src: int, dst: int, min_addr: int, max_addr: int, family: int,
                 manip_src: bool, persistent: bool, zone: int = 0) -> int:
    """The address part of nf_nat_core.c find_best_ips_proto() (the caller checks
    NF_NAT_RANGE_MAP_IPS): the new source (``manip_src``) or destination for the tuple
    ``src -> dst`` in the range ``min_addr..max_addr``.

    ``j = jhash2(src.u3 (4 words), 4, persistent ? 0 : dst.u3.all[max] ^ zone)``, then per
    word ``min + reciprocal_scale(j, max - min + 1)`` (the full 32-bit span once an earlier
    word is below its maximum), ``j ^= dst.u3.all[i]`` after each word unless persistent - for
    a destination manip that is the word just written, as in the C code."""
    if min_addr == max_addr:                     # fast path: only one choice
        return min_addr
    src_w = addr_words(src, family)
    dst_w = addr_words(dst, family)
    min_w = addr_words(min_addr, family)
    max_w = addr_words(max_addr, family)
    var = src_w if manip_src else dst_w
    last = 0 if family == 4 else 3
    j = jhash2(src_w, 0 if persistent else (dst_w[last] ^ zone) & _M)
    full_range = False
    for i in range(last + 1):
        if not full_range:
            minip = _bswap32(min_w[i])
            maxip = _bswap32(max_w[i])
            dist = (maxip - minip + 1) & _M
        else:
            minip, dist = 0, _M
        var[i] = _bswap32((minip + reciprocal_scale(j, dist)) & _M)
        if var[i] != max_w[i]:
            full_range = True
        if not persistent:
            j ^= dst_w[i]
    return _words_addr(var, family)
