"""``-m limit [--limit RATE[/UNIT]] [--limit-burst N]``: a token bucket (libxt_limit.c; kernel
net/netfilter/xt_limit.c for legacy, but iptables-nft 1.8.9 turns this match into the native
nf_tables ``limit`` expression, net/netfilter/nft_limit.c).

iptables keeps the rate as ``avg``: the period between packets in 1/XT_LIMIT_SCALE seconds
(``avg = 10000 * seconds_per_unit / rate``, integer division). iptables-nft then stores
``rate``/``unit`` picked the same way iptables-save prints a rate, and reads them back as
``avg = 10000 * unit / rate``: the value kept here, so that ``save()`` prints exactly what
iptables-save prints (``7/minute`` -> ``7/min``, ``3600/hour`` -> ``1/sec``, ``5001/s`` ->
``10000/sec``). A burst of 0 becomes nft_limit's default 5.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..cnum import atol, strtoui
from ..ir import Match
from .base import ExtSpec, Given, Opt, RuleContext
from .xtopt import no_invert, single

XT_LIMIT_SCALE = 10000
DEFAULT_AVG_TEXT = "3/hour"
DEFAULT_BURST = 5
MAX_BURST = 10000

# print_rate()'s table: name and period of one unit in 1/XT_LIMIT_SCALE seconds.
_UNITS = (("day", XT_LIMIT_SCALE * 24 * 60 * 60), ("hour", XT_LIMIT_SCALE * 60 * 60),
          ("min", XT_LIMIT_SCALE * 60), ("sec", XT_LIMIT_SCALE))
_PARSE_UNITS = (("second", 1), ("minute", 60), ("hour", 60 * 60), ("day", 24 * 60 * 60))


def unit_index(avg: int, units: tuple[tuple[str, int], ...]) -> int:
    """print_rate() (libxt_limit.c, libxt_hashlimit.c)/add_nft_limit(): the index into
    ``units`` (name and period, longest first) of the unit used to express ``avg``."""
    i = 1
    while i < len(units):
        mult = units[i][1]
        if avg > mult or mult // avg < mult % avg:
            break
        i += 1
    return i - 1


def _through_nft(avg: int) -> int:
    """The avg iptables-nft reads back after storing ``avg`` as nft limit rate/unit."""
    mult = _UNITS[unit_index(avg, _UNITS)][1]
    rate = mult // avg
    unit = mult // XT_LIMIT_SCALE
    return XT_LIMIT_SCALE * unit // rate


def parse_rate(text: str) -> int | None:
    """parse_rate(): ``N[/second|minute|hour|day]`` (any prefix of the unit, any case) to avg;
    None for a bad rate; -1 when the rate is too fast (avg would be 0)."""
    mult = 1
    slash = text.find("/")
    if slash >= 0:
        unit = text[slash + 1:]
        if not unit:
            return None
        for name, seconds in _PARSE_UNITS:
            if name.startswith(unit.lower()):
                mult = seconds
                break
        else:
            return None
    rate = atol(text) & 0xFFFFFFFF  # (uint32_t)atoi()
    if rate == 0:
        return None
    avg = (XT_LIMIT_SCALE * mult) // rate
    return avg if avg else -1


@dataclass(frozen=True, slots=True)
class Limit(Match):
    """A token bucket: on average one packet per ``avg``/10000 seconds, at most ``burst`` at
    once. Never inverted."""

    NAME = "limit"
    avg: int = _through_nft(XT_LIMIT_SCALE * 60 * 60 // 3)
    burst: int = DEFAULT_BURST

    def match(self, pkt, ev) -> bool:
        """nft_limit.c nft_limit_pkts_eval() / nft_limit_eval(), since iptables-nft 1.8.9
        stores ``-m limit`` as the native ``limit rate R/UNIT burst B packets`` expression
        (seen with ``nft --debug=netlink``), not as xt_limit: tokens are nanoseconds.
        ``rate``/``unit`` are what add_nft_limit() stored (the ones rate_text() prints);
        cost = unit_ns // rate, bucket size = cost * burst. The bucket
        (``ev.state.limit[ev.state_key]`` = [tokens, last_ns]) is full when first used (the
        kernel fills it at load time and caps it at its size, so this equals a rule loaded
        long enough before the first packet). Each packet: tokens += now - last (capped),
        last = now; it matches when tokens >= cost (and pays cost). Time is ``ev.now``
        in nanoseconds (ktime_get_ns), so no HZ rounding is involved."""
        cost, size = self.bucket()
        now = round(ev.now * 1_000_000_000)
        state = ev.state.limit.get(ev.state_key)
        if state is None:
            state = ev.state.limit[ev.state_key] = [size, now]
        tokens = (state[0] + now - state[1]) % (1 << 64)     # u64 arithmetic
        if tokens > size:
            tokens = size
        state[1] = now
        if tokens - cost >= 0:
            state[0] = tokens - cost
            return True
        state[0] = tokens
        return False

    def bucket(self) -> tuple[int, int]:
        """(cost, tokens_max) in nanoseconds, as nft_limit_init()/nft_limit_pkts_init()."""
        name, mult = _UNITS[unit_index(self.avg, _UNITS)]
        rate = mult // self.avg
        nsecs = (mult // XT_LIMIT_SCALE) * 1_000_000_000
        cost = nsecs // rate
        return cost, cost * self.burst

    def rate_text(self) -> str:
        name, mult = _UNITS[unit_index(self.avg, _UNITS)]
        return f"{mult // self.avg}/{name}"

    def save(self) -> str:
        out = f" --limit {self.rate_text()}"
        if self.burst != DEFAULT_BURST:
            out += f" --limit-burst {self.burst}"
        return out


def build(given: list[Given], ctx: RuleContext) -> Limit:
    fields: dict = {}
    for name, g in single(given).items():
        no_invert(g)
        if name == "limit":
            avg = parse_rate(g.arg)
            if avg is None:
                raise g.error(f"bad rate \"{g.arg}\"")
            if avg < 0:
                raise g.error(f"Rate too fast \"{g.arg}\"")
            fields["avg"] = _through_nft(avg)
        else:
            got = strtoui(g.arg, 0, 0, MAX_BURST)
            if got is None or got[1] != len(g.arg):
                raise g.error("limit: bad value for option \"--limit-burst\", or out of range "
                              f"(0-{MAX_BURST}).")
            fields["burst"] = got[0] or DEFAULT_BURST  # nft_limit: burst 0 means the default
    return Limit(**fields)


SPEC = ExtSpec("limit", "match", (Opt("limit"), Opt("limit-burst")), build)
