"""``-p sctp [-m sctp]``: ports and chunk types (extensions/libxt_sctp.c, kernel
net/netfilter/xt_sctp.c sctp_mt / sctp_mt_check).

The kernel requires ``-p sctp`` not inverted (xt_match.proto = IPPROTO_SCTP). A port option
prints when given, even as 0:65535. ``--chunk-types {all|any|only} LIST`` sets a 256-bit chunk
map (``ALL``/``NONE`` as the whole list set or clear it) and per-chunk flag tests
(``DATA:IubE``: upper case must be set, lower case must be clear); at most 4 chunk types may
carry flags (XT_NUM_SCTP_FLAGS)."""
from __future__ import annotations

import enum
from dataclasses import dataclass

from ..ir import Match
from .base import ExtSpec, Given, Kernel, Opt, RuleContext
from .ports import parse_port_range, save_range
from .tcp import hotdrop, l4_avail

IPPROTO_SCTP = 132
XT_NUM_SCTP_FLAGS = 4

# name, chunk type, valid flag letters (bit 7 first): libxt_sctp.c sctp_chunk_names[]
CHUNKS: tuple[tuple[str, int, str], ...] = (
    ("DATA", 0, "----IUBE"), ("INIT", 1, "--------"), ("INIT_ACK", 2, "--------"),
    ("SACK", 3, "--------"), ("HEARTBEAT", 4, "--------"), ("HEARTBEAT_ACK", 5, "--------"),
    ("ABORT", 6, "-------T"), ("SHUTDOWN", 7, "--------"), ("SHUTDOWN_ACK", 8, "--------"),
    ("ERROR", 9, "--------"), ("COOKIE_ECHO", 10, "--------"), ("COOKIE_ACK", 11, "--------"),
    ("ECN_ECNE", 12, "--------"), ("ECN_CWR", 13, "--------"),
    ("SHUTDOWN_COMPLETE", 14, "-------T"), ("ASCONF", 193, "--------"),
    ("ASCONF_ACK", 128, "--------"), ("FORWARD_TSN", 192, "--------"),
)
ALL_CHUNKS = (1 << 256) - 1


class ChunkMatch(enum.IntEnum):
    """SCTP_CHUNK_MATCH_*."""
    ANY = 1
    ALL = 2
    ONLY = 4


@dataclass(frozen=True, slots=True)
class ChunkFlags:
    """One xt_sctp_flag_info: ``chunk`` is the index in CHUNKS that iptables stores (equal to
    the chunk type for the chunk types that have flags)."""
    chunk: int
    flag: int
    mask: int


@dataclass(frozen=True, slots=True)
class Sctp(Match):
    NAME = "sctp"
    sport: tuple[int, int] | None = None
    sport_inv: bool = False
    dport: tuple[int, int] | None = None
    dport_inv: bool = False
    chunk_match: ChunkMatch | None = None      # None: no --chunk-types
    chunkmap: int = 0                          # bit N set: chunk type N listed
    chunk_flags: tuple[ChunkFlags, ...] = ()
    chunks_inv: bool = False

    def match(self, pkt, ev) -> bool:
        """xt_sctp.c sctp_mt(): non-first fragments never match; a common header that cannot
        be read (12 bytes) is a hotdrop; then the port ranges and the chunk test, each xor
        its ``!`` (SCCHECK), in that order, stopping at the first that fails."""
        if pkt.frag:
            return False
        if pkt.proto != IPPROTO_SCTP or l4_avail(pkt) < 12:
            hotdrop(ev, "sctp: header cut short")
            return False
        if self.sport is not None and \
                (self.sport[0] <= pkt.sport <= self.sport[1]) == self.sport_inv:
            return False
        if self.dport is not None and \
                (self.dport[0] <= pkt.dport <= self.dport[1]) == self.dport_inv:
            return False
        if self.chunk_match is not None:
            got = self._match_packet(pkt, ev)
            if got is None:
                return False                # hotdrop: match_packet returned false
            if got == self.chunks_inv:
                return False
        return True

    def _match_packet(self, pkt, ev) -> bool | None:
        """match_packet(): walk the chunks (``offset += SCTP_PAD4(length)``) while the offset
        is inside the packet; a chunk header that cannot be read or has length 0 is a
        hotdrop (None here). ANY: true at the first listed chunk whose flags pass; ALL: every
        listed type seen with passing flags; ONLY: false at an unlisted chunk or a listed one
        whose flags fail."""
        data = pkt.payload
        end = l4_avail(pkt) - 12            # skb->len - (thoff + sizeof(sctphdr))
        kind = self.chunk_match
        left = self.chunkmap                # chunkmapcopy for ALL
        off = 0
        while True:
            if off + 4 > end or off + 4 > len(data):
                hotdrop(ev, "sctp: chunk header cut short")
                return None
            ctype, cflags = data[off], data[off + 1]
            length = int.from_bytes(data[off + 2:off + 4], "big")
            if length == 0:
                hotdrop(ev, "sctp: chunk of length 0")
                return None
            off += (length + 3) & ~3
            if self.chunkmap >> ctype & 1:
                ok = self._flags_ok(ctype, cflags)
                if kind is ChunkMatch.ANY:
                    if ok:
                        return True
                elif kind is ChunkMatch.ALL:
                    if ok:
                        left &= ~(1 << ctype)
                elif not ok:
                    return False
            elif kind is ChunkMatch.ONLY:
                return False
            if off >= end:
                break
        if kind is ChunkMatch.ALL:
            return left == 0
        return kind is ChunkMatch.ONLY

    def _flags_ok(self, ctype: int, cflags: int) -> bool:
        """match_flags(): the first flag test for this chunk type decides; none: true."""
        for f in self.chunk_flags:
            if f.chunk == ctype:
                return (cflags & f.mask) == f.flag
        return True

    def save(self) -> str:
        out = []
        if self.sport is not None:
            out.append(f"{' !' if self.sport_inv else ''} --sport {save_range(*self.sport)}")
        if self.dport is not None:
            out.append(f"{' !' if self.dport_inv else ''} --dport {save_range(*self.dport)}")
        if self.chunk_match is not None:
            out.append(f"{' !' if self.chunks_inv else ''} --chunk-types "
                       f"{self.chunk_match.name.lower()} {self._chunks_text()}")
        return "".join(out)

    def _chunks_text(self) -> str:
        if self.chunkmap == 0:
            return "NONE"
        if self.chunkmap == ALL_CHUNKS:
            return "ALL"
        parts = []
        for ctype in range(256):
            if not self.chunkmap >> ctype & 1:
                continue
            text = "".join(name for name, t, _ in CHUNKS if t == ctype)
            for info in self.chunk_flags:
                if info.chunk == ctype and info.mask:
                    valid = CHUNKS[ctype][2]
                    text += ":" + "".join(
                        (valid[7 - bit] if info.flag >> bit & 1 else valid[7 - bit].lower())
                        for bit in range(7, -1, -1) if info.mask >> bit & 1)
            parts.append(text)
        return ",".join(parts)


def parse_chunks(kind: str, chunks: str, g: Given) -> tuple[ChunkMatch, int, tuple[ChunkFlags, ...]]:
    """parse_sctp_chunks()/parse_sctp_chunk()."""
    match = {"ANY": ChunkMatch.ANY, "ALL": ChunkMatch.ALL, "ONLY": ChunkMatch.ONLY}.get(kind.upper())
    if match is None:
        raise g.error('Match type has to be one of "ALL", "ANY" or "ONLY"')
    if chunks.upper() == "ALL":
        return match, ALL_CHUNKS, ()
    if chunks.upper() == "NONE":
        return match, 0, ()
    chunkmap = 0
    flags: list[list[int]] = []   # [chunk index, flag, mask]
    for item in (part for part in chunks.split(",") if part):   # strtok skips empty fields
        name, colon, letters = item.partition(":")
        index = next((i for i, c in enumerate(CHUNKS) if c[0].lower() == name.lower()), None)
        if index is None:
            raise g.error(f"Unknown sctp chunk `{name}'")
        chunkmap |= 1 << CHUNKS[index][1]
        valid = CHUNKS[index][2]
        for letter in letters:
            pos = valid.find(letter.upper())
            if pos < 0:
                raise g.error(f"Invalid flags for chunk type {index}")
            bit = 7 - pos
            entry = next((f for f in flags if f[0] == index), None)
            if entry is None:
                if len(flags) == XT_NUM_SCTP_FLAGS:
                    raise g.error("Number of chunk types with flags exceeds currently allowed "
                                  "limit. Increasing this limit involves changing "
                                  "IPT_NUM_SCTP_FLAGS and recompiling both the kernel space "
                                  "and user space modules")
                entry = [index, 0, 0]
                flags.append(entry)
            entry[2] |= 1 << bit
            if letter.isupper():
                entry[1] |= 1 << bit
    return match, chunkmap, tuple(ChunkFlags(i, f, m) for i, f, m in flags)


def build(given: list[Given], ctx: RuleContext) -> Sctp:
    fields: dict = {}
    seen: set[str] = set()
    for g in given:
        key = {"source-port": "sport", "destination-port": "dport"}.get(g.name, g.name)
        if key in seen:
            what = {"sport": "--source-port", "dport": "--destination-port",
                    "chunk-types": "--chunk-types"}[key]
            raise g.error(f"Only one `{what}' allowed")
        seen.add(key)
        if key in ("sport", "dport"):
            fields[key], fields[key + "_inv"] = parse_port_range(g.arg, g, "sctp"), g.inv
        else:
            match, chunkmap, flags = parse_chunks(g.args[0], g.args[1], g)
            fields.update(chunk_match=match, chunkmap=chunkmap, chunk_flags=flags,
                          chunks_inv=g.inv)
    return Sctp(**fields)


SPEC = ExtSpec(
    "sctp", "match",
    (Opt("source-port"), Opt("sport"), Opt("destination-port"), Opt("dport"),
     Opt("chunk-types", 2)),
    build, Kernel(proto=IPPROTO_SCTP))
