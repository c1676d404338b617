"""Packet evaluation of the match extensions (issue 3): match() of each value, built from real
rule text, against packets that match and packets that do not."""
from fractions import Fraction

import pytest

import nfemu
from nfemu.engine import CtView, EvalContext, NodeState
from nfemu.ext.conntrack import CtState
from nfemu.host import Host, ip4
from nfemu.interp import NotEvaluable
from nfemu.packet import TCP_ACK, TCP_SYN, Packet

HOST = Host.from_options(["eth0=192.168.0.2/24"])
A, B = ip4("10.0.0.1"), ip4("10.0.0.2")


def m(text, i=0, chain="INPUT", table="filter", family=4):
    rs = nfemu.loads(f"*{table}\n-A {chain} {text}\nCOMMIT\n",
                     **({} if family == 4 else {"family": 6}))
    return rs.table(table).chain(chain).rules[0].matches[i]


def ctx(**kw):
    kw.setdefault("state", NodeState())
    return EvalContext(host=HOST, **kw)


def tcp(**kw):
    base = dict(family=4, src=A, dst=B, proto=6, sport=40000, dport=80, tcp_flags=TCP_SYN)
    base.update(kw)
    return Packet(**base)


def udp(**kw):
    base = dict(family=4, src=A, dst=B, proto=17, sport=5353, dport=53)
    base.update(kw)
    return Packet(**base)


# ---- comment, tcp, udp -----------------------------------------------------------------------

def test_comment_always():
    assert m('-m comment --comment "x y"').match(tcp(), ctx())


def test_tcp_ports_and_flags():
    v = m("-p tcp --dport 80:90 --syn")
    assert v.match(tcp(), ctx())
    assert v.match(tcp(dport=90), ctx())
    assert not v.match(tcp(dport=91), ctx())
    assert not v.match(tcp(tcp_flags=TCP_SYN | TCP_ACK), ctx())
    inv = m("-p tcp ! --sport 1024:65535")
    assert inv.match(tcp(sport=80), ctx()) and not inv.match(tcp(), ctx())


def test_tcp_non_first_fragment_never_matches():
    v = m("-p tcp ! --dport 22")
    ev = ctx()
    assert not v.match(tcp(frag=100, sport=0, dport=0), ev)
    assert not getattr(ev, "hotdrop", False)   # native (nft payload): NFT_BREAK, no hotdrop


def test_tcp_option_is_xtables_with_hotdrop_on_offset_1():
    v = m("-p tcp --tcp-option 2")
    assert not v.native
    mss = bytes([2, 4, 5, 0xB4])
    assert v.match(tcp(tcp_options=mss), ctx())
    assert not v.match(tcp(), ctx())             # no options: tcp_find_option returns invert
    assert m("-p tcp ! --tcp-option 2").match(tcp(), ctx())
    ev = ctx()
    assert not v.match(tcp(frag=1), ev)
    assert ev.hotdrop and ev.events[-1].kind == "HOTDROP"   # tcp_mt: fragoff == 1


def test_tcp_native_both_ports_inverted_is_one_32bit_neq():
    # iptables-nft 1.8.9: "! --sport 22 ! --dport 22" -> payload 4b @ th+0, cmp neq 0x16001600
    v = m("-p tcp ! --sport 22 ! --dport 22")
    assert v.match(tcp(sport=22, dport=80), ctx())      # xtables would say no
    assert not v.match(tcp(sport=22, dport=22), ctx())
    assert v.match(tcp(sport=1, dport=2), ctx())


def test_tcp_native_reads_any_transport_header_under_negated_proto():
    # "! -p tcp --dport 80" loads: meta l4proto != 6, th dport == 80
    v = m("! -p tcp --dport 80")
    assert v.match(udp(dport=80), ctx())
    assert not v.match(udp(dport=81), ctx())


def test_tcp_full_range_negated_is_gone():
    # iptables-nft 1.8.9 emits no comparison for "! --sport 0:65535": the rule matches all
    rs = nfemu.loads("*filter\n-A INPUT -p tcp ! --sport 0:65535\nCOMMIT\n")
    assert rs.table("filter").chain("INPUT").rules[0].matches == ()


def test_udp():
    v = m("-p udp --dport 53")
    assert v.match(udp(), ctx()) and not v.match(udp(dport=54), ctx())
    assert not v.match(udp(frag=3, sport=0, dport=0), ctx())
    plain = m("-p udp -m udp")            # no port test: an xtables udp match
    assert not plain.native
    assert plain.match(udp(), ctx())
    assert not plain.match(udp(frag=3, sport=0, dport=0), ctx())


# ---- multiport, icmp -------------------------------------------------------------------------

def test_multiport():
    v = m("-p tcp -m multiport --dports 22,80:90,443")
    for port, want in ((22, True), (85, True), (443, True), (23, False), (91, False)):
        assert v.match(tcp(dport=port), ctx()) is want
    either = m("-p udp -m multiport ! --ports 53")
    assert not either.match(udp(sport=53, dport=1), ctx())
    assert either.match(udp(sport=1, dport=2), ctx())
    assert not v.match(tcp(frag=5, sport=0, dport=0), ctx())


def test_icmp():
    echo = Packet(family=4, src=A, dst=B, proto=1, icmp_type=8, icmp_code=0)
    assert m("-p icmp --icmp-type echo-request").match(echo, ctx())
    assert not m("-p icmp --icmp-type 0").match(echo, ctx())
    assert m("-p icmp --icmp-type any").match(echo, ctx())
    assert m("-p icmp ! --icmp-type 3").match(echo, ctx())
    unreach = Packet(family=4, src=A, dst=B, proto=1, icmp_type=3, icmp_code=3)
    assert m("-p icmp --icmp-type destination-unreachable").match(unreach, ctx())
    assert m("-p icmp --icmp-type 3/3").match(unreach, ctx())
    assert not m("-p icmp --icmp-type host-unreachable").match(unreach, ctx())


# ---- mark, connmark, conntrack, state --------------------------------------------------------

def test_mark():
    v = m("-m mark --mark 0x4000/0x4000")
    assert v.match(tcp(mark=0x4001), ctx()) and not v.match(tcp(mark=0x1), ctx())
    assert m("-m mark ! --mark 0x1").match(tcp(mark=0), ctx())


def test_connmark():
    v = m("-m connmark --mark 0x2/0x3")
    assert v.match(tcp(), ctx(ct=CtView(mark=0x6)))
    assert not v.match(tcp(), ctx(ct=CtView(mark=0x1)))
    inv = m("-m connmark ! --mark 0x2")
    # connmark_mt: no conntrack entry -> false, even negated
    assert not inv.match(tcp(), ctx(ct=None))
    assert not inv.match(tcp(), ctx(ct=CtView(untracked=True, state=CtState.UNTRACKED)))


def test_conntrack_state_and_nat_bits():
    new = CtView(state=CtState.NEW)
    assert m("-m conntrack --ctstate NEW").match(tcp(), ctx(ct=new))
    assert not m("-m conntrack --ctstate ESTABLISHED,RELATED").match(tcp(), ctx(ct=new))
    assert m("-m conntrack --ctstate INVALID").match(tcp(), ctx(ct=None))
    assert m("-m conntrack --ctstate UNTRACKED").match(
        tcp(), ctx(ct=CtView(untracked=True, state=CtState.UNTRACKED)))
    dnat = CtView(state=CtState.ESTABLISHED, status=1 << 5)     # IPS_DST_NAT
    assert m("-m conntrack --ctstate DNAT").match(tcp(), ctx(ct=dnat))
    assert not m("-m conntrack ! --ctstate DNAT").match(tcp(), ctx(ct=dnat))


def test_conntrack_without_entry():
    # conntrack_mt: ct NULL -> return (match_flags & XT_CONNTRACK_STATE)
    assert m("-m conntrack --ctstate INVALID --ctproto 17").match(tcp(), ctx(ct=None))
    assert not m("-m conntrack --ctproto 6").match(tcp(), ctx(ct=None))
    assert not m("-m conntrack ! --ctproto 6").match(tcp(), ctx(ct=None))


def test_conntrack_tuples():
    ct = CtView(state=CtState.ESTABLISHED, proto=6, orig_src=A, orig_dst=ip4("10.96.0.10"),
                orig_sport=40000, orig_dport=80, repl_src=ip4("10.244.1.5"), repl_dst=A,
                repl_sport=8080, repl_dport=40000, status=0b110, reply=True)
    ev = ctx(ct=ct)
    assert m("-m conntrack --ctorigdst 10.96.0.0/12 --ctorigdstport 80").match(tcp(), ev)
    assert not m("-m conntrack --ctorigdst 10.96.0.11").match(tcp(), ev)
    assert m("-m conntrack ! --ctreplsrc 10.244.2.0/24").match(tcp(), ev)
    assert m("-m conntrack --ctreplsrcport 8000:9000 --ctproto tcp").match(tcp(), ev)
    assert not m("-m conntrack --ctproto udp").match(tcp(), ev)
    assert m("-m conntrack --ctstatus ASSURED").match(tcp(), ev)
    assert not m("-m conntrack ! --ctstatus SEEN_REPLY,EXPECTED").match(tcp(), ev)
    assert m("-m conntrack --ctdir REPLY").match(tcp(), ev)
    assert not m("-m conntrack --ctdir ORIGINAL").match(tcp(), ev)


def test_state():
    v = m("-m state --state RELATED,ESTABLISHED")
    assert v.match(tcp(), ctx(ct=CtView(state=CtState.ESTABLISHED)))
    assert not v.match(tcp(), ctx(ct=CtView(state=CtState.NEW)))
    assert not v.match(tcp(), ctx(ct=None))
    assert m("-m state ! --state INVALID").match(tcp(), ctx(ct=CtView()))
    assert m("-m state --state INVALID").match(tcp(), ctx(ct=None))


# ---- addrtype, iprange, length, pkttype, mac, owner, physdev ---------------------------------

def test_addrtype():
    here = ip4("192.168.0.2")
    assert m("-m addrtype --dst-type LOCAL").match(tcp(dst=here), ctx())
    assert m("-m addrtype --dst-type LOCAL").match(tcp(dst=ip4("127.0.0.5")), ctx())
    assert not m("-m addrtype --dst-type LOCAL").match(tcp(), ctx())
    assert m("-m addrtype ! --dst-type LOCAL").match(tcp(), ctx())
    assert m("-m addrtype --dst-type BROADCAST").match(tcp(dst=ip4("192.168.0.255")), ctx())
    assert m("-m addrtype --dst-type MULTICAST").match(tcp(dst=ip4("224.0.0.1")), ctx())
    assert m("-m addrtype --src-type UNICAST --dst-type LOCAL").match(tcp(dst=here), ctx())
    # --limit-iface-in: the local route of 192.168.0.2 is on eth0, so on eth1 it is UNICAST
    lim = m("-m addrtype --dst-type LOCAL --limit-iface-in", chain="PREROUTING", table="nat")
    assert lim.match(tcp(dst=here, iif="eth0"), ctx())
    assert not lim.match(tcp(dst=here, iif="eth1"), ctx())


def test_addrtype_ipv6_route_types_not_modelled():
    v = m("-m addrtype --dst-type LOCAL", family=6)
    with pytest.raises(NotEvaluable):
        v.match(Packet(family=6, src=1, dst=2, proto=6), ctx())
    mc = m("-m addrtype --dst-type MULTICAST", family=6)
    assert mc.match(Packet(family=6, src=1, dst=0xFF02 << 112 | 1, proto=6), ctx())


def test_iprange():
    v = m("-m iprange --src-range 10.0.0.1-10.0.0.9 ! --dst-range 10.0.0.3-10.0.0.4")
    assert v.match(tcp(), ctx())
    assert not v.match(tcp(dst=ip4("10.0.0.3")), ctx())
    assert not v.match(tcp(src=ip4("10.0.0.10")), ctx())


def test_length():
    v = m("-m length --length 40:60")
    assert v.match(tcp(), ctx())                                # 20 + 20 bytes
    assert not v.match(tcp(payload=b"x" * 21), ctx())
    assert m("-m length ! --length 41").match(tcp(), ctx())


def test_pkttype():
    assert m("-m pkttype --pkt-type unicast").match(tcp(), ctx())
    assert m("-m pkttype --pkt-type broadcast").match(tcp(pkttype=1), ctx())
    # PACKET_LOOPBACK: multicast for a 224/4 destination, else broadcast
    assert m("-m pkttype --pkt-type multicast").match(tcp(pkttype=5, dst=ip4("224.0.0.9")),
                                                      ctx())
    assert m("-m pkttype --pkt-type broadcast").match(tcp(pkttype=5), ctx())


def test_mac():
    v = m("-m mac --mac-source 00:11:22:33:44:55")
    assert v.match(tcp(in_mac=0x001122334455), ctx())
    assert not v.match(tcp(in_mac=0x001122334456), ctx())
    # no link header: mac_mt returns false, even negated
    assert not m("-m mac ! --mac-source 00:11:22:33:44:55").match(tcp(), ctx())


def test_owner():
    v = m("-m owner --uid-owner 1000-1999", chain="OUTPUT")
    assert v.match(tcp(), ctx(local=True, sock_uid=1000, sock_gid=1000))
    assert not v.match(tcp(), ctx(local=True, sock_uid=0, sock_gid=0))
    assert not v.match(tcp(), ctx(local=True))          # no socket
    # no socket: (match ^ invert) == 0, so an all-negated rule matches
    assert m("-m owner ! --uid-owner 0", chain="OUTPUT").match(tcp(), ctx(local=True))
    assert m("-m owner --socket-exists", chain="OUTPUT").match(tcp(), ctx(sock_uid=5))
    assert not m("-m owner ! --socket-exists", chain="OUTPUT").match(tcp(), ctx(sock_uid=5))
    assert m("-m owner --gid-owner 7", chain="OUTPUT").match(tcp(), ctx(sock_uid=1, sock_gid=7))


def test_physdev_without_bridge():
    assert not m("-m physdev --physdev-in eth0").match(tcp(iif="eth0"), ctx())
    assert not m("-m physdev --physdev-is-bridged").match(tcp(), ctx())
    assert m("-m physdev ! --physdev-is-bridged").match(tcp(), ctx())
    assert not m("-m physdev ! --physdev-is-in --physdev-in x").match(tcp(), ctx())


# ---- statistic, recent, limit ----------------------------------------------------------------

def test_statistic_random_asks_exact_fraction():
    v = m("-m statistic --mode random --probability 0.33333333349")
    asked = []

    def chooser(p):
        asked.append(p)
        return False
    assert not v.match(tcp(), ctx(chooser=chooser))
    assert asked == [Fraction(715827883, 2 ** 31)]
    inv = m("-m statistic --mode random ! --probability 0.5")
    assert inv.match(tcp(), ctx(chooser=lambda p: False))


def test_statistic_nth_counter_per_rule():
    v = m("-m statistic --mode nth --every 3 --packet 1")
    ev = ctx()
    ev.rule = 1
    # counter starts at every-1 - packet = 1: packets 1, 2, 3, ... -> match at 2, 5, 8
    got = [v.match(tcp(), ev) for _ in range(6)]
    assert got == [False, True, False, False, True, False]
    other = ctx(state=ev.state)
    other.rule = 2                               # same value, another rule: its own counter
    assert [v.match(tcp(), other) for _ in range(2)] == [False, True]


def test_recent_set_rcheck_update_seconds_hitcount():
    st = NodeState()
    setter = m("-m recent --set --name SSH")
    check = m("-m recent --rcheck --seconds 60 --hitcount 3 --name SSH")
    update = m("-m recent --update --seconds 10 --name SSH")
    for t in (0.0, 1.0):
        assert setter.match(tcp(), ctx(state=st, now=t))
    assert not check.match(tcp(), ctx(state=st, now=2.0))         # 2 stamps
    assert setter.match(tcp(), ctx(state=st, now=3.0))
    assert check.match(tcp(), ctx(state=st, now=4.0))              # 3 stamps within 60 s
    assert not check.match(tcp(), ctx(state=st, now=61.5))         # stamp 0 and 1 too old
    assert not check.match(tcp(src=B), ctx(state=st, now=4.0))     # unknown address
    assert update.match(tcp(), ctx(state=st, now=12.0))            # stamp 3.0 within 10 s
    assert update.match(tcp(), ctx(state=st, now=21.0))            # refreshed at 12.0
    assert not update.match(tcp(), ctx(state=st, now=40.0))
    assert m("-m recent --remove --name SSH").match(tcp(), ctx(state=st, now=41))
    assert not m("-m recent --rcheck --name SSH").match(tcp(), ctx(state=st, now=42))


def test_recent_mask_of_first_rule_and_lru():
    st = NodeState()
    first = m("-m recent --set --name T --mask 255.255.255.0 --rdest")
    assert first.match(tcp(dst=ip4("10.1.1.7")), ctx(state=st))
    later = m("-m recent --rcheck --name T --rdest")              # mask 255.255.255.255
    assert later.match(tcp(dst=ip4("10.1.1.200")), ctx(state=st))  # table mask decides
    for i in range(100):
        first.match(tcp(dst=ip4("10.2.0.0") + (i << 8)), ctx(state=st))
    assert len(st.recent["T"].entries) == 100
    assert not later.match(tcp(dst=ip4("10.1.1.200")), ctx(state=st))   # evicted (LRU)


def test_recent_reap_removes_only_the_oldest():
    st = NodeState()
    s = m("-m recent --set --name R")
    s.match(tcp(src=A), ctx(state=st, now=0))
    s.match(tcp(src=B), ctx(state=st, now=1))
    reap = m("-m recent --rcheck --seconds 5 --reap --name R")
    assert not reap.match(tcp(src=B), ctx(state=st, now=100))
    assert list(st.recent["R"].entries) == [(4, B)]                # A (LRU head) reaped


def test_limit_token_bucket():
    v = m("-m limit --limit 2/sec --limit-burst 3")
    st = NodeState()
    got = [v.match(tcp(), ctx(state=st, now=10.0)) for _ in range(4)]
    assert got == [True, True, True, False]                       # burst of 3
    assert not v.match(tcp(), ctx(state=st, now=10.4))            # 0.4 s < 0.5 s per token
    assert v.match(tcp(), ctx(state=st, now=10.5))
    assert not v.match(tcp(), ctx(state=st, now=10.5))


# ---- sctp ------------------------------------------------------------------------------------

def _chunk(ctype, flags=0, body=b""):
    length = 4 + len(body)
    return bytes([ctype, flags]) + length.to_bytes(2, "big") + body + bytes(-length % 4)


def sctp(chunks, **kw):
    return Packet(family=4, src=A, dst=B, proto=132, sport=5000, dport=38412,
                  payload=b"".join(chunks), **kw)


def test_sctp_ports_and_chunks():
    data = _chunk(0, 0x03, b"abcd")
    init = _chunk(1, 0, b"x" * 16)
    assert m("-p sctp --dport 38412").match(sctp([data]), ctx())
    assert not m("-p sctp ! --dport 38412").match(sctp([data]), ctx())
    assert m("-p sctp --chunk-types any INIT").match(sctp([data, init]), ctx())
    assert not m("-p sctp --chunk-types only DATA").match(sctp([data, init]), ctx())
    assert m("-p sctp --chunk-types all DATA,INIT").match(sctp([init, data]), ctx())
    assert not m("-p sctp --chunk-types all DATA,INIT").match(sctp([data]), ctx())
    assert m("-p sctp --chunk-types any DATA:BE").match(sctp([data]), ctx())
    assert not m("-p sctp --chunk-types any DATA:bE").match(sctp([data]), ctx())


def test_sctp_zero_length_chunk_is_hotdrop():
    ev = ctx()
    assert not m("-p sctp --chunk-types any INIT").match(sctp([bytes(4)]), ev)
    assert ev.hotdrop
