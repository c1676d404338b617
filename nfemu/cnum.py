"""C number parsing as iptables does it (glibc on a 64-bit machine, C locale).

One function per distinct semantics:

- ``strtoul(text, start, base)``: libc ``strtoul``/``strtoumax`` (the same on LP64). Reads a
  prefix and gives its end; a minus sign negates modulo 2**64; base 0 (C rules), 8, 10 or 16;
  an overflow gives ULONG_MAX with the ERANGE flag.
- ``strtoui(text, start, lo, hi)``: libxtables ``xtables_strtoui(s, &end, &v, lo, hi)``
  (``xtables_strtoul_base`` with an end pointer, base 0). Reads a prefix and gives its end,
  the caller judges what follows; a minus sign, an overflow or a value outside [lo, hi] fail.
- ``strtoui_all(text, lo, hi)``: ``xtables_strtoui(s, NULL, &v, lo, hi)``: as ``strtoui`` but
  the whole string must be the number.
- ``atol(text)``: libc ``atoi``/``atol``/``atoll`` (``strtol(s, NULL, 10)``): a signed decimal
  prefix, 0 when there is none, clamped to a signed long; never fails.

All skip leading C white space (``isspace``: space, \\t \\n \\v \\f \\r) and allow one ``+``.
Base 0 reads ``0x``/``0X`` as hex only when a hex digit follows (``0x`` alone is the number 0
followed by ``x``), a leading ``0`` as octal, else decimal. ``strtoul`` reports an overflow
(ERANGE, value ULONG_MAX); the xtables functions refuse it, and a value outside [lo, hi].
"""
from __future__ import annotations

import re

ULONG_MAX = (1 << 64) - 1
LONG_MAX = (1 << 63) - 1
LONG_MIN = -(1 << 63)
C_SPACE = " \t\n\v\f\r"
_HEX = "0123456789abcdefABCDEF"
_DIGITS = "0123456789abcdef"
_PLAIN_DECIMAL = re.compile(r"[1-9][0-9]*|0")


def _skip_space(text: str, i: int) -> int:
    n = len(text)
    while i < n and text[i] in C_SPACE:
        i += 1
    return i


def strtoul(text: str, start: int = 0, base: int = 0) -> tuple[int, int, bool]:
    """C ``strtoul(text + start, &end, base)``: (value, end index, ERANGE).

    end == start when no digits were read. Leading white space and a sign are skipped; a
    minus negates modulo 2**64; an overflow gives ULONG_MAX and sets ERANGE."""
    n = len(text)
    i = _skip_space(text, start)
    neg = False
    if i < n and text[i] in "+-":
        neg = text[i] == "-"
        i += 1
    if base in (0, 16) and text[i:i + 2] in ("0x", "0X") and i + 2 < n and text[i + 2] in _HEX:
        base, i = 16, i + 2
    elif base == 0:
        base = 8 if text[i:i + 1] == "0" else 10
    digits = _DIGITS[:base]
    j = i
    while j < n and text[j].lower() in digits:
        j += 1
    if j == i:
        return 0, start, False
    value = int(text[i:j], base)
    if value > ULONG_MAX:
        return ULONG_MAX, j, True
    if neg:
        value = (-value) & ULONG_MAX
    return value, j, False


def strtoui(text: str, start: int = 0, lo: int = 0, hi: int = 0xFFFFFFFF) -> tuple[int, int] | None:
    """``xtables_strtoui(text + start, &end, &v, lo, hi)``: a number within [lo, hi] (a minus
    sign is refused, as is an overflow); (value, end index) or None. The caller checks what
    follows."""
    if text[_skip_space(text, start):][:1] == "-":
        return None
    value, end, erange = strtoul(text, start)
    if end == start or erange or not lo <= value <= hi:
        return None
    return value, end


def strtoui_all(text: str, lo: int = 0, hi: int = 0xFFFFFFFF) -> int | None:
    """``xtables_strtoui(text, NULL, &v, lo, hi)``: the whole string must be the number."""
    if _PLAIN_DECIMAL.fullmatch(text):  # the usual spelling, read without the scanner
        value = int(text)
        return value if lo <= value <= hi and value <= ULONG_MAX else None
    got = strtoui(text, 0, lo, hi)
    if got is None or got[1] != len(text):
        return None
    return got[0]


def atol(text: str) -> int:
    """C ``atol(text)`` (= ``strtol(text, NULL, 10)``): the decimal prefix with its sign, 0
    when there is none, clamped to [LONG_MIN, LONG_MAX]. ``atoi`` is this cut to 32 bits,
    ``atoll`` the same on LP64."""
    n = len(text)
    i = _skip_space(text, 0)
    j = i + 1 if text[i:i + 1] in ("+", "-") else i
    k = j
    while k < n and text[k] in "0123456789":
        k += 1
    if k == j:
        return 0
    return max(min(int(text[i:k]), LONG_MAX), LONG_MIN)
