"""``-m owner``: the local socket that sent the packet (libxt_owner.c revision 1; kernel
net/netfilter/xt_owner.c).

``[!] --uid-owner ID[-ID]``, ``[!] --gid-owner ID[-ID]`` (``:`` works as the range separator
too), ``[!] --socket-exists``, ``--suppl-groups`` (after --gid-owner: the gid range is also
looked up in the supplementary groups). iptables-save prints --socket-exists, --uid-owner,
--gid-owner, --suppl-groups in that order, ids as numbers, ``N`` for a range N-N.

Names: iptables resolves a user or group name with getpwnam(3)/getgrnam(3) on the machine that
loads the rules. nfemu is offline and reads rules meant for other machines, so it resolves no
names except ``root`` (uid and gid 0 everywhere); any other name is refused with a message
saying so. Numbers are always accepted (0 to 4294967294: -1 is reserved).

Kernel: only in rules reached from OUTPUT and POSTROUTING (xt_owner.hooks), any table; a
reversed range (min > max) is refused at load time (owner_check: -EINVAL).
"""
from __future__ import annotations

import enum
import re
from dataclasses import dataclass

from ..cnum import strtoui
from ..ir import Match
from .base import OUT, POST, ExtSpec, Given, Kernel, Opt, RuleContext
from .xtopt import need, single

ID_MAX = 0xFFFFFFFE  # UINT32_MAX - 1: (uid_t)-1 is reserved
KNOWN_NAMES = {"root": 0}
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]*\$?")  # what could be a user or group name


class OwnerFlag(enum.IntFlag):
    """XT_OWNER_* of xt_owner_match_info.match / .invert."""

    UID = 1 << 0
    GID = 1 << 1
    SOCKET = 1 << 2
    SUPPL_GROUPS = 1 << 3


@dataclass(frozen=True, slots=True)
class Owner(Match):
    NAME = "owner"
    match: OwnerFlag = OwnerFlag(0)
    invert: OwnerFlag = OwnerFlag(0)
    uid_min: int = 0
    uid_max: int = 0
    gid_min: int = 0
    gid_max: int = 0

    def _item(self, flag: OwnerFlag, label: str, lo: int = 0, hi: int = 0,
              with_value: bool = False) -> str:
        if not self.match & flag:
            return ""
        out = " !" if self.invert & flag else ""
        out += f" {label}"
        if with_value:
            out += f" {lo}" if lo == hi else f" {lo}-{hi}"
        return out

    def save(self) -> str:
        return (self._item(OwnerFlag.SOCKET, "--socket-exists")
                + self._item(OwnerFlag.UID, "--uid-owner", self.uid_min, self.uid_max, True)
                + self._item(OwnerFlag.GID, "--gid-owner", self.gid_min, self.gid_max, True)
                + self._item(OwnerFlag.SUPPL_GROUPS, "--suppl-groups"))


def _parse_ids(g: Given) -> tuple[int, int]:
    """A name (only root offline), else owner_parse_range(): ``N``, ``N-M`` or ``N:M``."""
    text = g.arg
    if text in KNOWN_NAMES:
        return KNOWN_NAMES[text], KNOWN_NAMES[text]
    bad = g.error(f"owner: Bad value for \"--{g.name}\" option: \"{text}\"")
    got = strtoui(text, 0, 0, ID_MAX)
    if got is None:
        if _NAME.fullmatch(text):
            what = "user" if g.name == "uid-owner" else "group"
            raise g.error(f"owner: cannot resolve {what} name `{text}' offline (nfemu accepts "
                          f"numeric ids and root only)")
        raise bad
    lo, end = got
    hi = lo
    if end < len(text) and text[end] in "-:":
        got = strtoui(text, end + 1, 0, ID_MAX)
        if got is None:
            raise bad
        hi, end = got
    if end != len(text):
        raise bad
    return lo, hi


def build(given: list[Given], ctx: RuleContext) -> Owner:
    match = OwnerFlag(0)
    invert = OwnerFlag(0)
    fields: dict = {}
    for name, g in single(given).items():
        if name == "suppl-groups":
            if g.inv:
                raise g.error("owner: option \"--suppl-groups\" cannot be inverted.")
            if not match & OwnerFlag.GID:
                raise g.error("owner: Bad value for \"--suppl-groups\" option: "
                              "\"you need to use --gid-owner first\"")
            flag = OwnerFlag.SUPPL_GROUPS
        elif name == "socket-exists":
            flag = OwnerFlag.SOCKET
        else:
            flag = OwnerFlag.UID if name == "uid-owner" else OwnerFlag.GID
            prefix = "uid" if flag is OwnerFlag.UID else "gid"
            fields[f"{prefix}_min"], fields[f"{prefix}_max"] = _parse_ids(g)
        match |= flag
        if g.inv:
            invert |= flag
    need(bool(match), ctx, "owner: At least one of --uid-owner, --gid-owner or --socket-exists "
                           "is required")
    return Owner(match=match, invert=invert, **fields)


def check(value: Owner, table: str, hooks, rule) -> list[str]:
    """owner_check(): a range must not be reversed."""
    out = []
    if value.match & OwnerFlag.UID and value.uid_min > value.uid_max:
        out.append(f"-m owner --uid-owner {value.uid_min}-{value.uid_max}: reversed range "
                   "(the kernel refuses it: Invalid argument)")
    if value.match & OwnerFlag.GID and value.gid_min > value.gid_max:
        out.append(f"-m owner --gid-owner {value.gid_min}-{value.gid_max}: reversed range "
                   "(the kernel refuses it: Invalid argument)")
    return out


SPEC = ExtSpec(
    "owner", "match",
    (Opt("uid-owner"), Opt("gid-owner"), Opt("socket-exists", 0), Opt("suppl-groups", 0)),
    build, Kernel(hooks=frozenset({OUT, POST})), check=check)
