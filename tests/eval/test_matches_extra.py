"""Packet evaluation of dscp, tos, ttl, ecn, tcpmss, ah, esp, string, u32, helper, time,
quota, hashlimit, connlimit, cpu, devgroup and rpfilter: ``match()`` of values built from rule
text, against packets chosen on both sides of each test. Every expected answer is worked out
by hand from the kernel function the match mirrors (named in each test); none is copied from
nfemu's output. tests/kernel/test_extra_matches_vs_kernel.py compares the same matches with
the running kernel."""
from __future__ import annotations

import struct
from dataclasses import dataclass

import pytest

import nfemu
import nfemu.errors
from nfemu.engine import CtView, EvalContext, NodeState
from nfemu.errors import Location
from nfemu.ext.base import Given
from nfemu.ext.conntrack import CtState, CtStatus
from nfemu.ext.string import BoyerMoore
from nfemu.ext.u32 import U32, parse_u32
from nfemu.host import Host, ip4
from nfemu.interp import NotEvaluable
from nfemu.node import Node
from nfemu.packet import TCP_SYN, Packet

HOST = Host.from_options(["eth0=192.168.0.2/24", "eth1=10.0.0.1/24"])
A, B = ip4("192.168.0.7"), ip4("192.168.0.2")


def m(text, i=0, chain="INPUT", table="filter"):
    rs = nfemu.loads(f"*{table}\n-A {chain} {text}\nCOMMIT\n")
    return rs.table(table).chain(chain).rules[0].matches[i]


def ctx(host=HOST, **kw):
    kw.setdefault("state", NodeState())
    kw.setdefault("ct", CtView())
    return EvalContext(host=host, **kw)


def tcp(**kw):
    base = dict(src=A, dst=B, proto=6, sport=40000, dport=80, tcp_flags=TCP_SYN)
    base.update(kw)
    return Packet(**base)


def udp(payload=b"", **kw):
    base = dict(src=A, dst=B, proto=17, sport=5353, dport=53, payload=payload)
    base.update(kw)
    return Packet(**base)


# ---- dscp, tos, ttl, ecn ---------------------------------------------------------------------

def test_dscp_is_the_top_six_bits():
    """dscp_mt(): ipv4_get_dsfield() >> 2 == dscp; the ECN bits do not count."""
    v = m("-m dscp --dscp 10")
    assert v.match(udp(tos=0x28), ctx()) and v.match(udp(tos=0x2B), ctx())
    assert not v.match(udp(tos=0x2C), ctx()) and not v.match(udp(tos=0x0A), ctx())
    assert m("-m dscp ! --dscp 10").match(udp(tos=0), ctx())
    assert m("-m dscp --dscp-class EF").match(udp(tos=0xB8), ctx())      # 46 << 2


def test_tos_value_under_mask():
    """tos_mt(): (tos & mask) == value; a symbolic name gets mask 0x3f, a number 0xff."""
    sym = m("-m tos --tos Minimize-Delay")
    assert sym.match(udp(tos=0x10), ctx()) and sym.match(udp(tos=0x50), ctx())
    assert not sym.match(udp(tos=0x11), ctx())
    num = m("-m tos --tos 0x10")
    assert num.match(udp(tos=0x10), ctx()) and not num.match(udp(tos=0x50), ctx())
    assert m("-m tos ! --tos 0x3/0x3").match(udp(tos=0x2), ctx())
    assert not m("-m tos ! --tos 0x3/0x3").match(udp(tos=0xFF), ctx())


@pytest.mark.parametrize("rule,hits", [
    ("--ttl-eq 64", {64}), ("! --ttl-eq 64", {0, 63, 65, 255}),
    ("--ttl-lt 64", {0, 63}), ("--ttl-gt 64", {65, 255})])
def test_ttl_modes(rule, hits):
    """ttl_mt(): EQ, NE, LT, GT against iphdr->ttl."""
    v = m(f"-m ttl {rule}")
    for ttl in (0, 63, 64, 65, 255):
        assert v.match(udp(ttl=ttl), ctx()) == (ttl in hits), ttl


def test_ecn_ip_and_tcp_bits():
    """ecn_mt4(): IP codepoint == ip_ect xor its !, then th->ece / th->cwr set (clear with !)."""
    ip = m("-m ecn --ecn-ip-ect 1")
    assert ip.match(udp(tos=0x29), ctx()) and not ip.match(udp(tos=0x2A), ctx())
    assert m("-m ecn ! --ecn-ip-ect 1").match(udp(tos=0x2A), ctx())
    ece = m("-p tcp -m ecn --ecn-tcp-ece")
    assert ece.match(tcp(tcp_flags=TCP_SYN | 0x40), ctx())
    assert not ece.match(tcp(tcp_flags=TCP_SYN | 0x80), ctx())
    both = m("-p tcp -m ecn ! --ecn-tcp-ece --ecn-tcp-cwr --ecn-ip-ect 3")
    assert both.match(tcp(tcp_flags=0x80, tos=3), ctx())
    assert not both.match(tcp(tcp_flags=0xC0, tos=3), ctx())
    assert not both.match(tcp(tcp_flags=0x80, tos=2), ctx())


def test_ecn_tcp_header_cut_short_is_no_match_without_hotdrop():
    """match_tcp(): skb_header_pointer() fails -> false, no hotdrop; no fragment check, so a
    non-first fragment's data is read as the header."""
    v = m("-p tcp -m ecn --ecn-tcp-cwr")
    ev = ctx()
    assert not v.match(tcp(frag=10, payload=bytes(12), sport=0, dport=0), ev)
    assert not ev.hotdrop
    frag = bytes(13) + bytes([0x80]) + bytes(6)       # byte 13: the "flags" of the data
    assert v.match(tcp(frag=10, payload=frag, sport=0, dport=0), ctx())


# ---- tcpmss -----------------------------------------------------------------------------------

def test_tcpmss_walks_the_options():
    """tcpmss_mt(): first kind 2 with length byte 4 decides; EOL/NOP advance one, others by
    their length (0 -> 1); no MSS -> invert."""
    v = m("-p tcp -m tcpmss --mss 1000:1460")
    assert v.match(tcp(tcp_options=bytes([1, 1, 2, 4, 0x05, 0xB4])), ctx())      # 1460
    assert not v.match(tcp(tcp_options=bytes([2, 4, 0x05, 0xB5])), ctx())        # 1461
    assert not v.match(tcp(), ctx())                                             # no options
    assert m("-p tcp -m tcpmss ! --mss 1000:1460").match(tcp(), ctx())
    # a kind 2 with length 3 is skipped by its length: the next option is the MSS
    assert v.match(tcp(tcp_options=bytes([2, 3, 0, 2, 4, 0x03, 0xE8, 0])), ctx())  # 1000
    # a length 0 advances by one byte: the 2 that follows starts an MSS option
    assert v.match(tcp(tcp_options=bytes([8, 0, 2, 4, 0x03, 0xE8, 0, 0])), ctx())
    # EOL does not stop the walk: an MSS after it still counts
    assert v.match(tcp(tcp_options=bytes([0, 2, 4, 0x04, 0x00, 0, 0, 0])), ctx())
    # the MSS option must have 4 bytes left inside the options
    assert not v.match(tcp(tcp_options=bytes([1, 1, 1, 2])), ctx())


def test_tcpmss_hotdrops_short_headers():
    """tcpmss_mt(): no whole 20-byte header, doff < 5, or options past the datagram: drop."""
    v = m("-p tcp -m tcpmss --mss 1:65535")
    ev = ctx()
    assert not v.match(tcp(frag=3, payload=bytes(10), sport=0, dport=0), ev)
    assert ev.hotdrop and ev.events[-1].kind == "HOTDROP"
    ev = ctx()
    hdr = bytes(12) + bytes([0x40]) + bytes(7)        # doff 4
    assert not v.match(tcp(frag=3, payload=hdr, sport=0, dport=0), ev) and ev.hotdrop
    ev = ctx()
    hdr = bytes(12) + bytes([0x80]) + bytes(7) + bytes([2, 4])   # doff 8, 2 option bytes
    assert not v.match(tcp(frag=3, payload=hdr, sport=0, dport=0), ev) and ev.hotdrop


# ---- ah, esp ----------------------------------------------------------------------------------

def test_esp_and_ah_spi():
    """esp_mt(): SPI is the first word of the ESP header; ah_mt(): the second of the AH
    header (12 bytes read); fragments never match; short headers are a hotdrop."""
    esp = m("-p esp -m esp --espspi 256:511")
    body = struct.pack("!II", 300, 1)
    assert esp.match(Packet(src=A, dst=B, proto=50, payload=body), ctx())
    assert not esp.match(Packet(src=A, dst=B, proto=50, payload=struct.pack("!II", 512, 1)),
                         ctx())
    assert m("-p esp -m esp ! --espspi 256:511").match(
        Packet(src=A, dst=B, proto=50, payload=struct.pack("!II", 5, 1)), ctx())
    ev = ctx()
    assert not esp.match(Packet(src=A, dst=B, proto=50, frag=2, payload=body), ev)
    assert not ev.hotdrop
    ev = ctx()
    assert not esp.match(Packet(src=A, dst=B, proto=50, payload=body[:7]), ev) and ev.hotdrop
    ah = m("-p ah -m ah --ahspi 300")
    hdr = struct.pack("!BBHII", 6, 4, 0, 300, 1)
    assert ah.match(Packet(src=A, dst=B, proto=51, payload=hdr), ctx())
    ev = ctx()
    assert not ah.match(Packet(src=A, dst=B, proto=51, payload=hdr[:11]), ev) and ev.hotdrop


# ---- string -----------------------------------------------------------------------------------

def test_string_searches_from_the_ip_header():
    """string_mt(): skb_find_text() from --from to --to, offsets from the IP header (UDP:
    payload at 28)."""
    pkt = udp(b"GET /index.html")
    for algo in ("bm", "kmp"):
        assert m(f'-m string --string "index" --algo {algo}').match(pkt, ctx())
        assert not m(f'-m string --string "INDEX" --algo {algo}').match(pkt, ctx())
        assert m(f'-m string --string "INDEX" --algo {algo} --icase').match(pkt, ctx())
        assert m(f'-m string ! --string "nope" --algo {algo}').match(pkt, ctx())
        # "index" is at 33..37: --to 38 takes it, --to 37 cuts it (the first occurrence
        # must end within to - from), --from 34 starts after its first byte
        assert m(f'-m string --string "index" --algo {algo} --to 38').match(pkt, ctx())
        assert not m(f'-m string --string "index" --algo {algo} --to 37').match(pkt, ctx())
        assert not m(f'-m string --string "index" --algo {algo} --from 34').match(pkt, ctx())
        # the IP header is searched too: protocol 17 at offset 9
        assert m(f'-m string --hex-string "|11|" --algo {algo} --from 9 --to 10').match(
            pkt, ctx())


def test_string_from_equal_to_never_matches():
    """skb_seq_read(): nothing to read when from >= to."""
    assert not m('-m string --string "E" --algo kmp --from 28 --to 28').match(udp(b"E"), ctx())


def test_string_bm_icase_latin1_quirks():
    """lib/ctype.c: toupper(0xDF) is 0xBF ('ß' is lower, 0xBF punctuation), so with --icase
    the pattern 'ß' finds '¿'. lib/ts_bm.c: bad_shift[] is indexed by the raw text byte and
    only holds the pattern's upper-cased bytes and their tolower(); tolower(0xBF) is 0xBF, so a
    text 0xDF gets the default shift (patlen). Worked by hand for pattern 'ßa' (upper-cased
    0xBF 'A'; bad_shift[0xBF] = 1, good_shift = [1, 2]) in text 'xßa': at shift 1 the
    text byte 0xDF (upper 0xBF) is not 'A', shift = max(1 + bad_shift[0xDF] = 3, 1 + 1) = 3,
    past the end: no match, though the upper-cased text holds the pattern."""
    assert BoyerMoore(b"\xdf", True).find(b"\xbf") == 0
    assert BoyerMoore(b"\xdfa", True).find(b"x\xdfa") is None
    assert BoyerMoore(b"\xdfa", True).find(b"\xdfa") == 0
    pkt = udp(b"x\xdfa")
    assert not m('-m string --hex-string "|df|a" --algo bm --icase --from 28').match(pkt, ctx())
    assert m('-m string --hex-string "|df|a" --algo kmp --icase --from 28').match(pkt, ctx())


def test_string_cut_short_capture_is_not_evaluable():
    full = udp(b"A" * 40 + b"needle").to_bytes()
    cut = Packet.from_bytes(full[:40])
    v = m('-m string --string "needle" --algo bm')
    with pytest.raises(NotEvaluable):
        v.match(cut, ctx())
    assert not m('-m string --string "needle" --algo bm --to 30').match(cut, ctx())


def test_string_fsm_not_evaluable():
    v = m('-m string --hex-string "|01000161|" --algo fsm')
    with pytest.raises(NotEvaluable):
        v.match(udp(b"a"), ctx())


# ---- u32 --------------------------------------------------------------------------------------

def test_u32_classic_and_at():
    """u32_match_it(): word at 0, shifts and masks; @ moves the base by the value."""
    # IPv4 with IHL 5: "0>>22&0x3C" is 20; "@0>>16=53" reads the UDP destination port
    assert m('-m u32 --u32 "0>>22&0x3C@0&0xFFFF=53"').match(udp(), ctx())
    assert not m('-m u32 --u32 "0>>22&0x3C@0&0xFFFF=54"').match(udp(), ctx())
    # word at 4: id, flags and offset; word at 6: offset, TTL, protocol
    assert m('-m u32 --u32 "4&0x1FFF=0 && 6&0xFF=17"').match(udp(), ctx())
    assert m('-m u32 --u32 "0>>28=4,6 && 6&0xFF=1:6"').match(tcp(), ctx())
    assert not m('-m u32 --u32 "4&0x1FFF=0 && 6&0xFF=17"').match(udp(frag=3), ctx())


def test_u32_shift_counts_above_31():
    """u32_mt_checkentry() refuses shifts above 31 (xt_u32: reject invalid shift counts);
    a kernel without that check runs ``val <<= number`` with the x86/arm64 shift, which
    takes the count modulo 32: << 32 leaves the word as it is, >> 33 is >> 1."""
    with pytest.raises(nfemu.errors.RulesetErrors, match="shift by 32"):
        m('-m u32 --u32 "0<<32=0"')
    word0 = 0x45000000 | udp().length

    def given(text):
        return Given("u32", False, (text,), Location("t", 1, 1))
    assert U32(parse_u32(given(f"0<<32={word0}"))).match(udp(), ctx())
    assert U32(parse_u32(given(f"0>>33={word0 >> 1}"))).match(udp(), ctx())


def test_u32_reads_outside_the_packet_fail_the_test():
    """pos > skb->len - 4 -> false (so ! makes it true)."""
    pkt = udp()                                       # 28 bytes
    assert m('-m u32 --u32 "24=0:0xFFFFFFFF"').match(pkt, ctx())     # bytes 24..27
    assert not m('-m u32 --u32 "25=0:0xFFFFFFFF"').match(pkt, ctx())
    assert m('-m u32 ! --u32 "25=0:0xFFFFFFFF"').match(pkt, ctx())
    # @ with a base past the end: the whole match is false
    assert not m('-m u32 --u32 "0>>22&0x3C@8=0:0xFFFFFFFF"').match(pkt, ctx())


# ---- helper -----------------------------------------------------------------------------------

def test_helper_looks_at_the_master():
    """helper_mt(): no conntrack or no master -> invert; a new, unexpected connection has no
    master; a RELATED or expected one has, whose helper nfemu does not hold."""
    v, inv = m("-m helper --helper ftp"), m("-m helper ! --helper ftp")
    assert not v.match(tcp(), ctx()) and inv.match(tcp(), ctx())
    assert not v.match(tcp(), ctx(ct=None)) and inv.match(tcp(), ctx(ct=None))
    own = CtView(helper="ftp")          # the connection's own helper is not what counts
    assert not v.match(tcp(), ctx(ct=own))
    assert inv.match(tcp(), ctx(ct=CtView(state=CtState.UNTRACKED, untracked=True)))
    for ct in (CtView(state=CtState.RELATED), CtView(state=CtState.ESTABLISHED,
                                                     status=CtStatus.EXPECTED)):
        with pytest.raises(NotEvaluable):
            v.match(tcp(), ctx(ct=ct))


# ---- time -------------------------------------------------------------------------------------

MON_2024_01_01 = 1704067200      # 2024-01-01T00:00:00Z, a Monday


def test_time_of_day_and_weekday():
    """time_mt(): stamp % 86400 in [start, stop]; weekday (4 + days - 1) % 7 + 1."""
    day = m("-m time --timestart 09:00 --timestop 17:00")

    def at(h, mi=0, d=0, s=0):
        return ctx(now=MON_2024_01_01 + d * 86400 + h * 3600 + mi * 60 + s)
    assert day.match(udp(), at(9)) and day.match(udp(), at(17))
    assert not day.match(udp(), at(8, 59, s=59)) and not day.match(udp(), at(17, s=1))
    assert day.match(udp(), at(16, 59, s=59.9))           # whole seconds: 16:59:59
    mon = m("-m time --weekdays Mon")
    assert mon.match(udp(), at(12)) and not mon.match(udp(), at(12, d=1))
    assert m("-m time --weekdays Sun").match(udp(), at(12, d=6))
    assert m("-m time ! --weekdays Mon,Tue").match(udp(), at(0, d=2))


def test_time_over_midnight_and_contiguous():
    """start > stop: outside (stop, start) matches; --contiguous moves the part after
    midnight to the previous day for the weekday test."""
    night = m("-m time --timestart 22:00 --timestop 02:00 --weekdays Mon")
    cont = m("-m time --timestart 22:00 --timestop 02:00 --weekdays Mon --contiguous")
    tue_1am = ctx(now=MON_2024_01_01 + 86400 + 3600)
    mon_1am = ctx(now=MON_2024_01_01 + 3600)
    assert not night.match(udp(), tue_1am) and night.match(udp(), mon_1am)
    assert cont.match(udp(), tue_1am) and not cont.match(udp(), mon_1am)
    assert not night.match(udp(), ctx(now=MON_2024_01_01 + 12 * 3600))
    assert m("-m time --timestart 05:00 --timestop 05:00").match(
        udp(), ctx(now=MON_2024_01_01 + 12 * 3600))     # start == stop: all day


def test_time_monthdays_and_dates():
    v = m("-m time --monthdays 1,31")
    assert v.match(udp(), ctx(now=MON_2024_01_01))
    assert v.match(udp(), ctx(now=MON_2024_01_01 + 30 * 86400))           # Jan 31
    assert v.match(udp(), ctx(now=MON_2024_01_01 + 31 * 86400))           # Feb 1
    assert not v.match(udp(), ctx(now=MON_2024_01_01 + 32 * 86400))       # Feb 2
    feb29 = MON_2024_01_01 + (31 + 28) * 86400
    assert m("-m time --monthdays 29").match(udp(), ctx(now=feb29))         # leap year
    dates = m("-m time --datestart 2024-01-01 --datestop 2024-01-02T00:00:00")
    assert dates.match(udp(), ctx(now=MON_2024_01_01))
    assert dates.match(udp(), ctx(now=MON_2024_01_01 + 86400))
    assert not dates.match(udp(), ctx(now=MON_2024_01_01 + 86401))
    assert not dates.match(udp(), ctx(now=MON_2024_01_01 - 1))


def test_time_kerneltz_or_no_time_not_evaluable():
    with pytest.raises(NotEvaluable, match="timezone"):
        m("-m time --timestart 09:00 --timestop 17:00 --kerneltz").match(
            udp(), ctx(now=MON_2024_01_01))
    with pytest.raises(NotEvaluable, match="time"):
        m("-m time --weekdays Mon").match(udp(), ctx())                 # ev.now left at 0


# ---- quota ------------------------------------------------------------------------------------

def test_quota_counts_bytes_then_stops_for_good():
    """quota_mt(): quota >= skb->len -> take it, match; else quota = 0, no match."""
    v = m("-m quota --quota 100")
    st = NodeState()
    got = [v.match(udp(bytes(n)), ctx(state=st, rule=1)) for n in (12, 12, 12, 0, 0)]
    # lengths 40, 40, 40 (does not fit in 20: empties), 28 (0 left), 28
    assert got == [True, True, False, False, False]
    inv = m("-m quota ! --quota 100")
    st = NodeState()
    assert [inv.match(udp(bytes(52)), ctx(state=st, rule=1)) for _ in range(3)] == \
        [False, True, True]                              # 80 fits, then 80 does not


def test_quota_is_per_rule():
    st = NodeState()
    v = m("-m quota --quota 40")
    assert v.match(udp(bytes(12)), ctx(state=st, rule=1))
    assert v.match(udp(bytes(12)), ctx(state=st, rule=2))
    assert not v.match(udp(bytes(12)), ctx(state=st, rule=1))


# ---- hashlimit --------------------------------------------------------------------------------

def test_hashlimit_burst_then_one_token_per_period():
    """Packet mode: credit avg * burst * F, cost avg * F (F = HZ * CPJ / 10^6 = 137438953
    at HZ 250, CPJ 2^39), 2^39 credits per jiffy: 1/sec needs 250 jiffies for a token
    (249 * 2^39 < 10^6 * F <= 250 * 2^39)."""
    v = m("-m hashlimit --hashlimit-upto 1/sec --hashlimit-burst 3 --hashlimit-name t")
    st = NodeState()
    assert [v.match(udp(), ctx(state=st)) for _ in range(4)] == [True, True, True, False]
    assert not v.match(udp(), ctx(state=st, now=0.9966))    # jiffy 249
    assert v.match(udp(), ctx(state=st, now=1.001))         # jiffy 250: one more token
    assert not v.match(udp(), ctx(state=st, now=1.001))


def test_hashlimit_keys_masks_and_above():
    v = m("-m hashlimit --hashlimit-upto 1/min --hashlimit-burst 1 --hashlimit-mode srcip "
          "--hashlimit-srcmask 24 --hashlimit-name k")
    st = NodeState()
    assert v.match(udp(src=ip4("10.0.1.1")), ctx(state=st))
    assert not v.match(udp(src=ip4("10.0.1.2")), ctx(state=st))     # same /24
    assert v.match(udp(src=ip4("10.0.2.1")), ctx(state=st))
    above = m("-m hashlimit --hashlimit-above 1/min --hashlimit-burst 1 "
              "--hashlimit-mode dstport --hashlimit-name a")
    st = NodeState()
    assert [above.match(udp(dport=53), ctx(state=st)) for _ in range(2)] == [False, True]
    assert not above.match(udp(dport=54), ctx(state=st))
    assert not above.match(Packet(src=A, dst=B, proto=47), ctx(state=st))   # ports 0, new


def test_hashlimit_rules_share_a_table_by_name():
    one = m("-m hashlimit --hashlimit-upto 1/min --hashlimit-burst 2 --hashlimit-name s")
    two = m("-m hashlimit --hashlimit-upto 1/min --hashlimit-burst 2 --hashlimit-name s")
    st = NodeState()
    assert one.match(udp(), ctx(state=st, rule=1))
    assert two.match(udp(), ctx(state=st, rule=2))
    assert not one.match(udp(), ctx(state=st, rule=1))


def test_hashlimit_ports_cut_short_is_hotdrop():
    v = m("-m hashlimit --hashlimit-upto 1/sec --hashlimit-mode srcport --hashlimit-name p")
    ev = ctx()
    assert not v.match(Packet(src=A, dst=B, proto=17, frag=5, payload=b"ab"), ev)
    assert ev.hotdrop


def test_hashlimit_byte_mode():
    """Byte mode: full bucket of 2^24 * 250 credits; cost per 16-byte chunk
    user2credits_byte(avg); an empty bucket refills ``burst`` times. At 16b/s
    (avg = 0xFFFFFFFF // 2) one chunk costs 2097151999, so a 28-byte packet (2 chunks) costs
    4194303998: one packet empties the bucket, then each refill pays for one more."""
    v = m("-m hashlimit --hashlimit-upto 16b/s --hashlimit-burst 32b --hashlimit-name b")
    assert v.burst == 2
    st = NodeState()
    assert [v.match(udp(), ctx(state=st)) for _ in range(4)] == [True, True, True, False]


def test_hashlimit_expiry_window_and_table_full():
    """Entries expire after htable-expire ms and are collected at the next gc run: before
    expiry kept, more than one gc interval after it gone (full again), in between unknown."""
    v = m("-m hashlimit --hashlimit-upto 1/hour --hashlimit-burst 1 --hashlimit-name e "
          "--hashlimit-htable-expire 1000 --hashlimit-htable-gcinterval 1000")
    st = NodeState()
    assert v.match(udp(), ctx(state=st))
    assert not v.match(udp(), ctx(state=st, now=0.5))     # expires at 0.5 + 1 s now
    with pytest.raises(NotEvaluable):
        v.match(udp(), ctx(state=st, now=2.0))            # expired 0.5 s ago
    assert v.match(udp(), ctx(state=st, now=3.6))         # 2.1 s after expiry: new entry
    full = m("-m hashlimit --hashlimit-upto 1/sec --hashlimit-mode srcip --hashlimit-name f "
             "--hashlimit-htable-size 1 --hashlimit-htable-max 2")
    st = NodeState()
    assert full.match(udp(src=1), ctx(state=st)) and full.match(udp(src=2), ctx(state=st))
    ev = ctx(state=st)
    assert not full.match(udp(src=3), ev) and ev.hotdrop


# ---- connlimit --------------------------------------------------------------------------------

def test_connlimit_single_packet_view():
    """connlimit_mt(): (count > limit) ^ INVERT with count 1 (the packet's own connection)."""
    assert m("-m connlimit --connlimit-above 0").match(tcp(), ctx())
    assert not m("-m connlimit --connlimit-above 1").match(tcp(), ctx())
    assert m("-m connlimit --connlimit-upto 1").match(tcp(), ctx())
    assert not m("-m connlimit --connlimit-upto 0").match(tcp(), ctx())
    assert not m("-m connlimit ! --connlimit-above 0").match(tcp(), ctx())


def test_connlimit_second_connection_of_a_group_is_not_evaluable():
    v = m("-m connlimit --connlimit-above 1 --connlimit-mask 24")
    st = NodeState()
    assert not v.match(tcp(src=ip4("10.0.0.1")), ctx(state=st))
    assert not v.match(tcp(src=ip4("10.0.1.1")), ctx(state=st))        # another /24
    with pytest.raises(NotEvaluable):
        v.match(tcp(src=ip4("10.0.0.2"), sport=1), ctx(state=st))
    d = m("-m connlimit --connlimit-above 1 --connlimit-daddr")
    st = NodeState()
    d.match(tcp(src=1), ctx(state=st))
    with pytest.raises(NotEvaluable):
        d.match(tcp(src=2), ctx(state=st))                             # same destination


# ---- cpu, devgroup ----------------------------------------------------------------------------

def test_cpu_not_evaluable():
    with pytest.raises(NotEvaluable, match="CPU"):
        m("-m cpu --cpu 0").match(udp(), ctx())


@dataclass(frozen=True)
class _GroupIface:
    name: str
    group: int
    is_loopback: bool = False


class _GroupHost:
    """A host whose devices have groups (nfemu's Host does not record them)."""

    def __init__(self, groups):
        self.groups = groups

    def has_interface(self, name):
        return name in self.groups

    def interface(self, name):
        return _GroupIface(name, self.groups[name])


def test_devgroup_with_groups():
    """devgroup_mt(): ((group ^ dev->group) & mask) == 0, xor the option's !."""
    host = _GroupHost({"eth0": 5, "eth1": 0x13})
    pkt = udp(iif="eth0", oif="eth1")
    assert m("-m devgroup --src-group 5", chain="FORWARD").match(pkt, ctx(host))
    assert not m("-m devgroup --src-group 4", chain="FORWARD").match(pkt, ctx(host))
    assert m("-m devgroup ! --src-group 4", chain="FORWARD").match(pkt, ctx(host))
    assert m("-m devgroup --dst-group 0x3/0xf", chain="FORWARD").match(pkt, ctx(host))
    assert not m("-m devgroup --src-group 5 ! --dst-group 0x3/0xf",
                 chain="FORWARD").match(pkt, ctx(host))


def test_devgroup_without_groups_not_evaluable():
    with pytest.raises(NotEvaluable, match="group"):
        m("-m devgroup --src-group 0").match(udp(iif="eth0"), ctx())
    with pytest.raises(NotEvaluable):
        m("-m devgroup --dst-group 0", chain="FORWARD").match(udp(iif="eth0"),
                                                              ctx(_GroupHost({"eth0": 0})))


# ---- rpfilter ---------------------------------------------------------------------------------

def rp(options=""):
    return m(f"-m rpfilter {options}".strip(), chain="PREROUTING", table="mangle")


def test_rpfilter_strict_loose_and_local():
    """rpfilter_mt(): fib_lookup(saddr) must give a unicast route through the input device
    (any device with --loose); a local source only with --accept-local."""
    host = Host.from_options(["eth0=192.168.0.2/24", "eth1=10.0.0.1/24"],
                             default_gateway="10.0.0.254")
    on0 = {"dst": B, "iif": "eth0"}
    assert rp().match(udp(src=ip4("192.168.0.9"), **on0), ctx(host))
    assert not rp().match(udp(src=ip4("10.0.0.9"), **on0), ctx(host))
    assert not rp().match(udp(src=ip4("8.8.8.8"), **on0), ctx(host))       # default via eth1
    assert rp("--loose").match(udp(src=ip4("8.8.8.8"), **on0), ctx(host))
    assert rp().match(udp(src=ip4("8.8.8.8"), dst=B, iif="eth1"), ctx(host))
    assert rp("--invert").match(udp(src=ip4("10.0.0.9"), **on0), ctx(host))
    own = udp(src=B, **on0)                                # our own address, local route eth0
    assert not rp().match(own, ctx(host)) and rp("--accept-local").match(own, ctx(host))
    lo_src = udp(src=ip4("127.0.0.1"), **on0)             # local route 127/8 is on lo
    assert not rp("--accept-local").match(lo_src, ctx(host))
    assert rp("--accept-local --loose").match(lo_src, ctx(host))
    bcast = udp(src=ip4("192.168.0.255"), **on0)          # broadcast route: not unicast
    assert not rp("--loose").match(bcast, ctx(host))


def test_rpfilter_without_route_and_special_cases():
    host = Host.from_options(["eth0=192.168.0.2/24"])
    assert not rp("--loose").match(udp(src=ip4("8.8.8.8"), iif="eth0"), ctx(host))
    dhcp = udp(src=0, dst=0xFFFFFFFF, iif="eth0")
    assert rp().match(dhcp, ctx(host)) and not rp("--invert").match(dhcp, ctx(host))
    assert rp().match(udp(src=0, dst=ip4("224.0.0.22"), iif="eth0"), ctx(host))
    assert rp().match(udp(src=ip4("8.8.8.8"), iif="lo"), ctx(host))         # loopback
    with pytest.raises(NotEvaluable):
        rp().match(udp(src=1, iif="eth9"), ctx(host))


# ---- through a Node ---------------------------------------------------------------------------

def test_node_keeps_quota_and_hashlimit_state_per_rule():
    text = """*filter
:INPUT DROP [0:0]
-A INPUT -p udp -m quota --quota 100 -j ACCEPT
-A INPUT -p udp -m hashlimit --hashlimit-upto 1/min --hashlimit-burst 2 --hashlimit-name n -j ACCEPT
COMMIT
"""
    for engine in ("compiled", "reference"):
        node = Node(nfemu.loads(text), HOST, seed=1, engine=engine)
        verdicts = [node.trace(udp(bytes(32), sport=1000 + i), iface="eth0").verdict.value
                    for i in range(5)]
        # 60-byte packets: quota takes the first; the second empties it; hashlimit takes
        # the second and third; the fourth and fifth fall to the policy
        assert verdicts == ["ACCEPT", "ACCEPT", "ACCEPT", "DROP", "DROP"], engine
        assert node.counters[("filter", "INPUT", 0)] == (1, 60)
        assert node.counters[("filter", "INPUT", 1)] == (2, 120)

