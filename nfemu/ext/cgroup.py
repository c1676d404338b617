"""``-m cgroup [!] --path PATH | [!] --cgroup CLASSID``: the socket's cgroup (v2 path, matched
recursively) or net_cls class id (extensions/libxt_cgroup.c revision 2; kernel
net/netfilter/xt_cgroup.c cgroup_mt_check_v2).

iptables-save prints ``--path "PATH"`` (always quoted, xtables_save_string) then ``--cgroup N``.

Kernel: only reachable from INPUT, OUTPUT and POSTROUTING (``.hooks``); exactly one of path and
class id; the path must name an existing cgroup2 directory below the cgroup namespace root
(cgroup_get_from_path: empty components are skipped). nfemu is offline and knows no cgroup
tree, so it accepts only the root (``/``, ``//``, ``""``), which every fresh namespace has;
any other path is what a machine without that cgroup refuses ("RULE_APPEND failed (Invalid
argument)").
"""
from __future__ import annotations

from dataclasses import dataclass

from ..ir import Match
from ..util import save_string
from .base import IN, OUT, POST, ExtSpec, Given, Kernel, RuleContext
from .xtopt import XtOpt, parse_uint_opt, xt_collect, xt_fcheck, xt_opts

PATH_MAX = 4096


@dataclass(frozen=True, slots=True)
class Cgroup(Match):
    """xt_cgroup_info_v2: a path and/or a class id, each with its own inversion."""

    NAME = "cgroup"
    path: str | None = None
    invert_path: bool = False
    classid: int | None = None
    invert_classid: bool = False

    def save(self) -> str:
        out = ""
        if self.path is not None:
            out += f"{' !' if self.invert_path else ''} --path {save_string(self.path)}"
        if self.classid is not None:
            out += f"{' !' if self.invert_classid else ''} --cgroup {self.classid}"
        return out


OPTIONS = (XtOpt("path", 1, invert=True), XtOpt("cgroup", 0, invert=True))


def build(given: list[Given], ctx: RuleContext) -> Cgroup:
    seen = xt_collect("cgroup", OPTIONS, given)
    xt_fcheck("cgroup", OPTIONS, seen, ctx)
    f: dict = {}
    if 1 in seen:
        g = seen[1]
        f["path"], f["invert_path"] = g.arg, g.inv
    if 0 in seen:
        g = seen[0]
        f["classid"], f["invert_classid"] = parse_uint_opt(g, "cgroup"), g.inv
    return Cgroup(**f)


def check(value: Cgroup, table: str, hooks, rule) -> list[str]:
    if value.path is not None and value.classid is not None:
        return ["-m cgroup: the kernel refuses --path together with --cgroup"]
    if value.path is None and value.classid is None:
        return ["-m cgroup: the kernel needs --path or --cgroup"]
    if value.path is not None and value.path.strip("/"):
        return [f"-m cgroup: --path {value.path}: no such cgroup in a fresh namespace "
                "(only the root cgroup \"/\" is known to exist)"]
    return []


SPEC = ExtSpec("cgroup", "match", xt_opts(OPTIONS), build,
               Kernel(hooks=frozenset({IN, OUT, POST})), check=check)
