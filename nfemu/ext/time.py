"""``-m time``: time of day, day of the week or month and date range of the packet's arrival
(extensions/libxt_time.c; kernel net/netfilter/xt_time.c time_mt / time_mt_check).

Options: ``--datestart/--datestop YYYY[-MM[-DD[Thh[:mm[:ss]]]]]`` (UTC; 1970 to 2038; month
and day overflow roll over as mktime does), ``--timestart/--timestop hh:mm[:ss]``, ``[!]
--monthdays LIST`` (0-31; items longer than two characters are cut), ``[!] --weekdays LIST``
(1-7 or names told apart by their first two letters, items cut to three characters), ``--kerneltz``
(``--localtz`` is its old name), ``--utc`` (the default), ``--contiguous`` (only when the stop time
is before the start time).

The kernel keeps the dates as u32 seconds: the stop date defaults to INT_MAX, which iptables-save
prints (``--datestop 2038-01-19T03:14:07``); a start date of 0 is not printed. Day sets print as
lists (days 1-31, Mon-Sun), times as ``hh:mm:ss`` (both, when either is not the default).

Evaluation (:meth:`Time.match`) takes ``ev.now`` as the packet's time in seconds since the
Unix epoch, UTC; 0 means that no time was given (what Node.trace passes today), and
``--kerneltz`` needs the kernel's timezone, which nfemu does not know: both NotEvaluable.
"""
from __future__ import annotations

import datetime
import enum
from dataclasses import dataclass

from ..cnum import strtoul
from ..errors import ParseError
from ..ir import Match
from .base import ExtSpec, Given, RuleContext
from .u32 import not_evaluable
from .xtopt import XtOpt, xt_fcheck, xt_opts, xt_parse

ALL_MONTHDAYS = 0xFFFFFFFE
ALL_WEEKDAYS = 0xFE
MAX_DAYTIME = 24 * 60 * 60 - 1
INT_MAX = 0x7FFFFFFF
WEEK_DAYS = (None, "Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_EPOCH = datetime.date(1970, 1, 1).toordinal()


class TimeFlag(enum.IntFlag):
    """XT_TIME_* (include/uapi/linux/netfilter/xt_time.h)."""

    LOCAL_TZ = 1 << 0
    CONTIGUOUS = 1 << 1


@dataclass(frozen=True, slots=True)
class Time(Match):
    """xt_time_info."""

    NAME = "time"
    date_start: int = 0
    date_stop: int = INT_MAX
    daytime_start: int = 0
    daytime_stop: int = MAX_DAYTIME
    monthdays: int = ALL_MONTHDAYS
    weekdays: int = ALL_WEEKDAYS
    flags: TimeFlag = TimeFlag(0)

    def match(self, pkt, ev) -> bool:
        """xt_time.c time_mt(). The kernel takes the time at which the hook runs
        (ktime_get_real_seconds(): whole seconds of the wall clock, UTC); nfemu takes the
        packet's time ``ev.now`` (seconds since the epoch, floored; nfemu never reads the
        wall clock). ``ev.now`` 0 is taken as "no time given" rather than as 1970-01-01
        00:00:00 UTC: NotEvaluable. With ``--kerneltz`` the kernel subtracts
        ``60 * sys_tz.tz_minuteswest``, the timezone the init system gave the kernel:
        unknown offline, so NotEvaluable.

        In order: the time must lie in [date_start, date_stop]; the second of the day (UTC)
        in [daytime_start, daytime_stop] when start < stop, else outside the open interval
        (stop, start) (a range over midnight; start == stop matches all day), and with
        ``--contiguous`` a time at or before the stop counts as the previous day for the day
        tests; then the weekday (1 Monday .. 7 Sunday, from 1970-01-01 being a Thursday)
        must be in the weekday set and, when not all days are, the day of the month in the
        month-day set. (The kernel's month-day tables end in 2039; dates before that agree
        with the calendar computed here.)"""
        if self.flags & TimeFlag.LOCAL_TZ:
            raise not_evaluable(
                "-m time --kerneltz uses the kernel's timezone (sys_tz, set at boot by the "
                f"init system), which nfemu does not know ({ev.table} {ev.chain} rule "
                f"{ev.rule})")
        if not ev.now:
            raise not_evaluable(
                "-m time needs the packet's time, and none was given (nfemu trace --time "
                f"SECONDS, Node.trace(..., now=)) ({ev.table} {ev.chain} rule {ev.rule})")
        stamp = int(ev.now // 1)
        if stamp < self.date_start or stamp > self.date_stop:
            return False
        packet_time = stamp % 86400
        start, stop = self.daytime_start, self.daytime_stop
        if start < stop:
            if packet_time < start or packet_time > stop:
                return False
        else:
            if start > packet_time > stop:
                return False
            if self.flags & TimeFlag.CONTIGUOUS and packet_time <= stop:
                stamp -= 86400
        days = stamp // 86400
        weekday = (4 + days - 1) % 7 + 1
        if not self.weekdays & (1 << weekday):
            return False
        if self.monthdays != ALL_MONTHDAYS:
            monthday = datetime.date.fromordinal(_EPOCH + days).day
            if not self.monthdays & (1 << monthday):
                return False
        return True

    def save(self) -> str:
        out = []
        if self.daytime_start != 0 or self.daytime_stop != MAX_DAYTIME:
            out.append(f" --timestart {_hms(self.daytime_start)} --timestop "
                       f"{_hms(self.daytime_stop)}")
        if self.monthdays != ALL_MONTHDAYS:
            out.append(" --monthdays " + ",".join(str(i) for i in range(1, 32)
                                                  if self.monthdays & (1 << i)))
        if self.weekdays != ALL_WEEKDAYS:
            out.append(" --weekdays " + ",".join(WEEK_DAYS[i] for i in range(1, 8)
                                                 if self.weekdays & (1 << i)))
        for name, value in (("datestart", self.date_start), ("datestop", self.date_stop)):
            if value not in (0, (1 << 63) - 1):
                t = datetime.datetime(1970, 1, 1) + datetime.timedelta(seconds=value)
                out.append(f" --{name} {t:%Y-%m-%dT%H:%M:%S}")
        if self.flags & TimeFlag.LOCAL_TZ:
            out.append(" --kerneltz")
        if self.flags & TimeFlag.CONTIGUOUS:
            out.append(" --contiguous")
        return "".join(out)


def _hms(t: int) -> str:
    return f"{t // 3600:02d}:{t // 60 % 60:02d}:{t % 60:02d}"


def _ul10(text: str, pos: int) -> tuple[int, int]:
    """strtoul(s, &e, 10) as an unsigned int: (value, end)."""
    value, end, _ = strtoul(text, pos, 10)
    return value & 0xFFFFFFFF, end


def parse_date(g: Given, end: bool) -> int:
    """time_parse_date(): seconds since the epoch of a UTC date (mktime with TZ=UTC)."""
    s = g.arg
    bad = g.error(f"Invalid date \"{s}\" specified. Should be YYYY[-MM[-DD[Thh[:mm[:ss]]]]]")
    parts = [1970, 1, 1, 0, 0, 0]
    seps = ("-", "-", "T", ":", ":", "")
    limits = ((1970, 2038), (0, 12), (0, 31), (0, 23), (0, 59), (0, 59))
    pos = 0
    for i in range(6):
        value, e = _ul10(s, pos)
        nxt = s[e:e + 1]
        lo, hi = limits[i]
        if (nxt not in (seps[i], "") if seps[i] else nxt != "") or not lo <= value <= hi:
            raise bad
        parts[i] = value
        if nxt == "":
            break
        pos = e + 1
    year, month, day, hour, minute, second = parts
    # mktime(): a month or day out of range rolls over
    y, m = year + (month - 1) // 12, (month - 1) % 12 + 1
    days = datetime.date(y, m, 1).toordinal() + day - 1 - _EPOCH
    return (days * 86400 + hour * 3600 + minute * 60 + second) & 0xFFFFFFFF


def parse_daytime(g: Given) -> int:
    """time_parse_minutes(): ``hh:mm[:ss]`` to seconds of the day."""
    s = g.arg

    def bad(rest: str) -> ParseError:
        return g.error(f"invalid time \"{rest}\" specified, should be hh:mm[:ss] format and "
                       "within the boundaries")
    hour, e = _ul10(s, 0)
    if s[e:e + 1] != ":" or hour > 23:
        raise bad(s)
    start = e + 1
    minute, e = _ul10(s, start)
    if s[e:e + 1] not in (":", "") or minute > 59:
        raise bad(s[start:])
    second = 0
    if s[e:e + 1] == ":":
        start = e + 1
        second, e = _ul10(s, start)
        if e != len(s) or second > 59:
            raise bad(s[start:])
    return 3600 * hour + 60 * minute + second


def _segments(text: str, size: int) -> list[str]:
    """my_strseg(): comma-separated items, each cut to ``size - 1`` characters; a trailing
    comma ends the list."""
    out = []
    rest: str | None = text
    while rest:
        item, comma, after = rest.partition(",")
        out.append(item[:size - 1])
        rest = after if comma else None
    return out


def parse_monthdays(g: Given) -> int:
    ret = 0
    for day in _segments(g.arg, 3):
        value, end, _ = strtoul(day, 0, 0)
        value &= 0xFFFFFFFF
        if end != len(day) or value > 31:
            raise g.error(f"{day} is not a valid day for --monthdays")
        ret |= 1 << value
    return ret & 0xFFFFFFFF


def parse_weekdays(g: Given) -> int:
    ret = 0
    for day in _segments(g.arg, 4):
        value, end, _ = strtoul(day, 0, 0)
        if end == len(day):
            value &= 0xFFFFFFFF
            if value == 0:
                raise g.error("No, the week does NOT begin with Sunday.")
            ret |= 1 << (value % 32)
            continue
        valid = False
        for i in range(1, 8):
            if day[:2] == WEEK_DAYS[i][:2] and len(day) >= 2:
                ret |= 1 << i
                valid = True
        if not valid:
            raise g.error(f"{day} is not a valid day specifier")
    return ret & 0xFF


O_DSTART, O_DSTOP, O_TSTART, O_TSTOP, O_CONTIG, O_MDAYS, O_WDAYS, O_LOCAL, O_UTC, O_KTZ = \
    range(10)
OPTIONS = (
    XtOpt("datestart", O_DSTART), XtOpt("datestop", O_DSTOP),
    XtOpt("timestart", O_TSTART), XtOpt("timestop", O_TSTOP),
    XtOpt("contiguous", O_CONTIG, 0),
    XtOpt("weekdays", O_WDAYS, invert=True), XtOpt("monthdays", O_MDAYS, invert=True),
    XtOpt("localtz", O_LOCAL, 0, excl=frozenset({O_UTC})),
    XtOpt("utc", O_UTC, 0, excl=frozenset({O_LOCAL, O_KTZ})),
    XtOpt("kerneltz", O_KTZ, 0, excl=frozenset({O_UTC})),
)


def build(given: list[Given], ctx: RuleContext) -> Time:
    seen: dict[int, Given] = {}
    f: dict = {}
    flags = TimeFlag(0)
    for g in given:
        e = xt_parse("time", OPTIONS, g, seen)
        if e.id == O_DSTART:
            f["date_start"] = parse_date(g, False)
        elif e.id == O_DSTOP:
            f["date_stop"] = parse_date(g, True)
        elif e.id == O_TSTART:
            f["daytime_start"] = parse_daytime(g)
        elif e.id == O_TSTOP:
            f["daytime_stop"] = parse_daytime(g)
        elif e.id == O_CONTIG:
            flags |= TimeFlag.CONTIGUOUS
        elif e.id in (O_LOCAL, O_KTZ):
            flags |= TimeFlag.LOCAL_TZ
        elif e.id == O_MDAYS:
            f["monthdays"] = parse_monthdays(g) ^ (ALL_MONTHDAYS if g.inv else 0)
        elif e.id == O_WDAYS:
            f["weekdays"] = parse_weekdays(g) ^ (ALL_WEEKDAYS if g.inv else 0)
    xt_fcheck("time", OPTIONS, seen, ctx)
    value = Time(flags=flags, **f)
    if O_CONTIG in seen and value.daytime_start < value.daytime_stop:
        raise ParseError("time: --contiguous only makes sense when stoptime is smaller than "
                         "starttime", ctx.loc)
    return value


SPEC = ExtSpec("time", "match", xt_opts(OPTIONS), build)
