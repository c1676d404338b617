"""``-m string --algo bm|kmp [!] --string S | [!] --hex-string H [--from N] [--to N]
[--icase]``: a byte pattern in the packet (extensions/libxt_string.c revision 1; kernel
net/netfilter/xt_string.c string_mt / string_mt_check with lib/textsearch.c).

``--hex-string`` mixes plain characters, ``\\x`` literals and ``|hex bytes|`` blocks (spaces
allowed inside a block). The pattern is kept as bytes (at most 128). iptables-save prints
``--hex-string "|..|"`` (lower-case hex, no spaces) when a byte is not printable ASCII or the
last byte is a backslash, else ``--string "..."`` with ``"`` and ``\\`` escaped; then
``--algo``, ``--from`` unless 0, ``--to`` unless 65535, ``--icase``.

Kernel checks: from <= to; the algorithm must exist (bm, kmp, fsm) and accept the pattern
(an empty pattern is refused; for fsm the pattern must be valid ts_fsm tokens and
--icase is refused).

Evaluation (:meth:`String.match`) searches the datagram from its IP header with a port of the
kernel's lib/ts_bm.c or an equivalent of lib/ts_kmp.c, and the kernel's Latin-1 ``toupper``
(lib/ctype.c) for ``--icase``; ``--algo fsm`` is not evaluated.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass

from ..errors import ParseError
from ..ir import Match
from .base import ExtSpec, Given, RuleContext
from .u32 import not_evaluable, skb_view
from .xtopt import XtOpt, parse_uint_opt, xt_fcheck, xt_opts, xt_parse

MAX_PATTERN = 128          # XT_STRING_MAX_PATTERN_SIZE
MAX_ALGO = 16              # XT_STRING_MAX_ALGO_NAME_SIZE
ALGORITHMS = ("bm", "kmp", "fsm")
_HEX = "0123456789abcdefABCDEF"


class StringFlag(enum.IntFlag):
    """XT_STRING_FLAG_* (include/uapi/linux/netfilter/xt_string.h)."""

    INVERT = 0x01
    IGNORECASE = 0x02


def _printable(b: int) -> bool:
    return 0x20 <= b < 0x7F


@dataclass(frozen=True, slots=True)
class String(Match):
    NAME = "string"
    pattern: bytes = b""
    algo: str = ""
    from_offset: int = 0
    to_offset: int = 0xFFFF
    flags: StringFlag = StringFlag(0)

    def match(self, pkt, ev) -> bool:
        """xt_string.c string_mt(): ``skb_find_text(skb, from, to, conf) != UINT_MAX``, xor
        ``!``.

        net/core/skbuff.c skb_find_text() runs the algorithm over the skb from byte ``from``
        (counted from the IP header) and accepts the first occurrence found only when it ends
        within ``to - from`` bytes. The text it is given is not cut at ``to``: skb_seq_read()
        hands out the whole linear part, so the search runs to the end of the datagram and an
        occurrence that straddles ``to`` (the first one found) means no match. The skb is
        taken as linear (one block; small packets are): the kernel's BM misses occurrences
        spread over two blocks of a paged skb, which nfemu cannot know about.

        ``--algo bm``: lib/ts_bm.c bm_find() ported as it is (its shift tables, its
        ``--icase`` with the text byte upper-cased for the comparison but not for the bad-shift
        lookup); ``--algo kmp``: lib/ts_kmp.c finds the first occurrence of the pattern,
        which is what a plain search gives (both upper-cased with ``--icase``).
        ``--algo fsm`` (lib/ts_fsm.c token patterns) raises NotEvaluable."""
        searcher = _searcher(self.algo, self.pattern, bool(self.flags & StringFlag.IGNORECASE))
        view = skb_view(pkt)
        start, stop = self.from_offset, self.to_offset
        end = view.length                       # skb_seq_read: up to the linear end
        if start >= stop or start >= end:
            return bool(self.flags & StringFlag.INVERT)
        known = min(end, len(view.data))
        text = view.data[start:known]
        at = searcher(text)
        if at is None and known < min(end, stop):
            raise not_evaluable(
                f"-m string searches bytes {start}-{min(end, stop) - 1} of the datagram; "
                f"nfemu has only the first {len(view.data)} of its {end}")
        found = at is not None and at + len(self.pattern) <= stop - start
        return found != bool(self.flags & StringFlag.INVERT)

    def save(self) -> str:
        inv = " !" if self.flags & StringFlag.INVERT else ""
        p = self.pattern
        if any(not _printable(b) for b in p) or p[-1:] == b"\\":
            out = f"{inv} --hex-string \"|{p.hex()}|\""
        else:
            text = "".join("\\" + chr(b) if b in b"\"\\" else chr(b) for b in p)
            out = f"{inv} --string \"{text}\""
        out += f" --algo {self.algo}"
        if self.from_offset != 0:
            out += f" --from {self.from_offset}"
        if self.to_offset != 0xFFFF:
            out += f" --to {self.to_offset}"
        if self.flags & StringFlag.IGNORECASE:
            out += " --icase"
        return out


def _encode(text: str) -> bytes:
    return text.encode("utf-8", "surrogateescape")


def parse_hex_string(g: Given) -> bytes:
    """parse_hex_string(): text, ``\\c`` literals and ``|xx xx|`` hex blocks."""
    s = _encode(g.arg)
    n = len(s)
    if n == 0:
        raise g.error("STRING must contain at least one char")
    out = bytearray()
    i = 0
    hex_f = literal = False
    while i < n:
        c = s[i:i + 1]
        if c == b"\\" and not hex_f:
            literal = True
        elif c == b"\\":
            raise g.error("Cannot include literals in hex data")
        elif c == b"|":
            if hex_f:
                hex_f = False
            else:
                hex_f = True
                while s[i + 1:i + 2] == b" ":
                    i += 1
            if i + 1 >= n:
                break
            i += 1
        if literal:
            if i + 1 >= n:
                raise g.error("Bad literal placement at end of string")
            out.append(s[i + 1])
            i += 2
            literal = False
        elif hex_f:
            if i + 1 >= n:
                raise g.error("Odd number of hex digits")
            if i + 2 >= n:
                raise g.error("Invalid hex block")
            for k in (i, i + 1):
                if chr(s[k]) not in _HEX:
                    raise g.error(f"Invalid hex char '{chr(s[k])}'")
            out.append(int(s[i:i + 2], 16))
            i += 3 if s[i + 2:i + 3] == b" " else 2
        else:
            out.append(s[i])
            i += 1
        if len(out) > MAX_PATTERN:
            raise g.error(f"STRING too long \"{g.arg}\"")
    return bytes(out)


O_FROM, O_TO, O_ALGO, O_ICASE, O_STRING, O_HEX = range(6)
OPTIONS = (
    XtOpt("from", O_FROM), XtOpt("to", O_TO), XtOpt("algo", O_ALGO, mand=True),
    XtOpt("string", O_STRING, invert=True, excl=frozenset({O_HEX})),
    XtOpt("hex-string", O_HEX, invert=True, excl=frozenset({O_STRING})),
    XtOpt("icase", O_ICASE, 0),
)


def build(given: list[Given], ctx: RuleContext) -> String:
    seen: dict[int, Given] = {}
    f: dict = {}
    flags = StringFlag(0)
    for g in given:
        e = xt_parse("string", OPTIONS, g, seen)
        if e.id == O_FROM:
            f["from_offset"] = parse_uint_opt(g, "string", 0, 0xFFFF)
        elif e.id == O_TO:
            f["to_offset"] = parse_uint_opt(g, "string", 0, 0xFFFF)
        elif e.id == O_ALGO:
            if len(_encode(g.arg)) >= MAX_ALGO:
                raise g.error(f"string: argument too long for option \"--algo\" "
                              f"(max {MAX_ALGO - 1} characters)")
            f["algo"] = g.arg
        elif e.id == O_STRING:
            data = _encode(g.arg)
            if len(data) > MAX_PATTERN:
                raise g.error(f"STRING too long \"{g.arg}\"")
            f["pattern"] = data
        elif e.id == O_HEX:
            f["pattern"] = parse_hex_string(g)
        else:
            flags |= StringFlag.IGNORECASE
        if g.inv:
            flags |= StringFlag.INVERT
    xt_fcheck("string", OPTIONS, seen, ctx)
    if O_STRING not in seen and O_HEX not in seen:
        raise ParseError("STRING match: You must specify `--string' or `--hex-string'", ctx.loc)
    return String(flags=flags, **f)


def check(value: String, table: str, hooks, rule) -> list[str]:
    out = []
    if value.from_offset > value.to_offset:
        out.append(f"-m string: --from {value.from_offset} is past --to {value.to_offset}")
    if value.algo not in ALGORITHMS:
        out.append(f"-m string: no text search algorithm \"{value.algo}\" in the kernel "
                   "(No such file or directory)")
    elif not value.pattern:
        out.append("-m string: the kernel refuses an empty pattern")
    elif value.algo == "fsm":
        problem = _fsm_problem(value.pattern, value.flags)
        if problem:
            out.append(f"-m string: --algo fsm: {problem}")
    return out


FSM_TYPE_MAX = 13          # TS_FSM_SPACE (include/linux/textsearch_fsm.h)
FSM_RECUR_MAX = 4          # TS_FSM_HEAD_IGNORE


def _fsm_problem(pattern: bytes, flags: StringFlag) -> str | None:
    """lib/ts_fsm.c fsm_init(): the pattern is an array of struct ts_fsm_token (u16 type in
    host order, u8 recur, u8 value)."""
    if len(pattern) % 4:
        return "the pattern is not a whole number of 4-byte tokens"
    if flags & StringFlag.IGNORECASE:
        return "it cannot ignore case"
    n = len(pattern) // 4
    for i in range(n):
        kind = int.from_bytes(pattern[4 * i:4 * i + 2], "little")
        recur = pattern[4 * i + 2]
        if kind > FSM_TYPE_MAX or recur > FSM_RECUR_MAX:
            return f"token {i} has a bad type or recurrence"
        if recur == FSM_RECUR_MAX and (i != 0 or i == n - 1):
            return f"token {i}: HEAD_IGNORE only as the first of several tokens"
    return None


SPEC = ExtSpec("string", "match", xt_opts(OPTIONS), build, check=check)


# ---- the kernel's text search algorithms ------------------------------------------------------

def _ctype_upper(c: int) -> bool:
    """lib/ctype.c _ctype[] has _U for A-Z, 0xC0-0xD6 and 0xD8-0xDE (Latin-1)."""
    return 65 <= c <= 90 or 192 <= c <= 214 or 216 <= c <= 222


def _ctype_lower(c: int) -> bool:
    """_L: a-z, 0xDF-0xF6 and 0xF8-0xFF (0xDF and 0xFF included, without upper partners)."""
    return 97 <= c <= 122 or 223 <= c <= 246 or 248 <= c <= 255


#: include/linux/ctype.h toupper()/tolower() of every byte (``c -= 'a' - 'A'`` when
#: islower: toupper(0xDF) is 0xBF, toupper(0xFF) is 0xDF)
TOUPPER = bytes(c - 32 if _ctype_lower(c) else c for c in range(256))
TOLOWER = bytes(c + 32 if _ctype_upper(c) else c for c in range(256))

_SEARCHERS: dict = {}


def _searcher(algo: str, pattern: bytes, icase: bool):
    """The search function of an algorithm and pattern: text -> offset of the first
    occurrence found, or None (cached: rules are evaluated many times)."""
    key = (algo, pattern, icase)
    found = _SEARCHERS.get(key)
    if found is None:
        if algo == "bm":
            found = BoyerMoore(pattern, icase).find
        elif algo == "kmp":
            found = _kmp(pattern, icase)
        else:
            def found(text, algo=algo):
                raise not_evaluable(f"-m string --algo {algo} is not evaluated by nfemu "
                                    "(only bm and kmp are)")
        _SEARCHERS[key] = found
    return found


def _kmp(pattern: bytes, icase: bool):
    """lib/ts_kmp.c kmp_find(): Knuth-Morris-Pratt returns the occurrence that ends first,
    which for one pattern length is the first one; kmp_init() upper-cases the pattern and
    kmp_find() each text byte with --icase."""
    if icase:
        upper = pattern.translate(TOUPPER)

        def find(text: bytes) -> int | None:
            at = text.translate(TOUPPER).find(upper)
            return None if at < 0 else at
    else:
        def find(text: bytes) -> int | None:
            at = text.find(pattern)
            return None if at < 0 else at
    return find


class BoyerMoore:
    """lib/ts_bm.c: bm_init() / compute_prefix_tbl() / subpattern() and bm_find() over one
    block, step for step (the kernel's tables decide which positions are tried, so a port
    rather than any correct search)."""

    def __init__(self, pattern: bytes, icase: bool):
        self.icase = icase
        p = pattern.translate(TOUPPER) if icase else pattern
        self.pattern = p
        n = self.patlen = len(p)
        bad = [n] * 256
        for i in range(n - 1):
            bad[p[i]] = n - 1 - i
            if icase:
                bad[TOLOWER[p[i]]] = n - 1 - i
        good = [n] * n
        good[0] = 1
        i, g = n - 1, 1
        while i > 0:
            j = i - 1
            while j >= 1 - g:
                if _subpattern(p, i, j, g):
                    good[g] = n - j - g
                    break
                j -= 1
            g += 1
            i -= 1
        self.bad_shift = bad
        self.good_shift = good

    def find(self, text: bytes) -> int | None:
        """bm_find() on one block: the offset of the occurrence found, or None."""
        p, n = self.pattern, self.patlen
        bad, good = self.bad_shift, self.good_shift
        upper = TOUPPER if self.icase else None
        shift = n - 1
        size = len(text)
        while shift < size:
            i = 0                              # matchpat(): bytes matched from the right
            while i < n:
                t = text[shift - i]
                if upper is not None:
                    t = upper[t]
                if t != p[n - 1 - i]:
                    break
                i += 1
            if i == n:
                return shift - (n - 1)
            bs = bad[text[shift - i]]
            shift = max(shift - i + bs, shift + good[i])
        return None


def _subpattern(p: bytes, i: int, j: int, g: int) -> bool:
    """lib/ts_bm.c subpattern(): does the suffix of length g reoccur at j (preceded by a
    different byte, or running off the pattern's start)?"""
    x, y = i + g - 1, j + g - 1
    while p[x] == p[y]:
        x -= 1
        y -= 1
        if y < 0:
            return True
        g -= 1
        if g == 0:
            return p[i - 1] != p[j - 1]
    return False
