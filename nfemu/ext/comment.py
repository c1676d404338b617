"""``-m comment --comment TEXT``: always matches (libxt_comment.c, xt_comment.c)."""
from __future__ import annotations

from dataclasses import dataclass

from ..ir import Match
from ..util import save_string
from .base import ExtSpec, Given, Opt, RuleContext
from .xtopt import no_invert, single

XT_MAX_COMMENT_LEN = 256


@dataclass(frozen=True, slots=True)
class Comment(Match):
    NAME = "comment"
    comment: str = ""

    def match(self, pkt, ev) -> bool:
        """xt_comment.c comment_mt(): always true."""
        return True

    def save(self) -> str:
        return f" --comment {save_string(self.comment)}"


def build(given: list[Given], ctx: RuleContext) -> Comment:
    opts = single(given)
    g = opts.get("comment")
    if g is None:
        return Comment("")
    no_invert(g)
    # libxt_comment copies at most XT_MAX_COMMENT_LEN - 1 bytes: a longer comment is cut,
    # silently (seen with iptables 1.8.9: a 1023-byte comment saves as its first 255 bytes).
    raw = g.arg.encode("utf-8", "surrogateescape")
    if len(raw) > XT_MAX_COMMENT_LEN - 1:
        return Comment(raw[:XT_MAX_COMMENT_LEN - 1].decode("utf-8", "surrogateescape"))
    return Comment(g.arg)


SPEC = ExtSpec("comment", "match", (Opt("comment"),), build)
