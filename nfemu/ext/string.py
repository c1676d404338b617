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
"""
from __future__ import annotations

import enum
from dataclasses import dataclass

from ..errors import ParseError
from ..ir import Match
from .base import ExtSpec, Given, RuleContext
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
