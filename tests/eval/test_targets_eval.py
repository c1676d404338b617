"""Target evaluation (``apply(pkt, ev)``): NAT (nf_nat_core.c address and port choice), MARK,
CONNMARK, REJECT, LOG/NFLOG lines, CT/NOTRACK, the mangle targets, and the recorders.

Reference numbers for jhash2 and find_best_ips_proto come from compiling the kernel's C code
(include/linux/jhash.h and the body of find_best_ips_proto, copied verbatim) with gcc on
x86-64 and running it on the same inputs."""
import pytest

import nfemu
from nfemu.engine import CtView, EvalContext, NodeState, Verdict
from nfemu.ext.conntrack import CtState
from nfemu.ext.TPROXY import Tproxy
from nfemu.host import Host
from nfemu.interp import NotEvaluable, walk_table
from nfemu.ir import Family
from nfemu.jhash import find_best_ip, jhash2
from nfemu.packet import Packet, PacketType
from nfemu.util import ipv4_to_int, ipv6_to_int

HOST = Host.from_options(["eth0=192.168.0.2/24", "eth1=10.0.0.1/24"],
                         default_gateway="192.168.0.1")
BARE = Host.from_options([])          # only lo (host scope): nothing to masquerade to


def ip(text: str) -> int:
    return ipv6_to_int(text) if ":" in text else ipv4_to_int(text)


def rule_target(line: str, table: str = "filter", family=None):
    text = f"*{table}\n{line}\nCOMMIT\n"
    rs = nfemu.loads(text, family=family) if family else nfemu.loads(text)
    chain = line.split()[1]
    return rs.table(table).chain(chain).rules[0].target


def ctx(hook: str = "INPUT", table: str = "filter", ct=None, host=HOST, **kw) -> EvalContext:
    return EvalContext(host, NodeState(), hook=hook, table=table, chain=hook, rule=1, ct=ct,
                       **kw)


def new_ct(pkt: Packet) -> CtView:
    return CtView(state=CtState.NEW, proto=pkt.proto, orig_src=pkt.src, orig_dst=pkt.dst,
                  orig_sport=pkt.sport, orig_dport=pkt.dport, repl_src=pkt.dst,
                  repl_dst=pkt.src, repl_sport=pkt.dport, repl_dport=pkt.sport)


def tcp(src="10.0.0.1", dst="192.168.0.10", sport=40000, dport=80, flags=0x02, **kw):
    return Packet(family=4, src=ip(src), dst=ip(dst), proto=6, sport=sport, dport=dport,
                  tcp_flags=flags, **kw)


# ---------------------------------------------------------------------------------- jhash


def test_jhash2_matches_the_kernel():
    # values printed by the C jhash2() of include/linux/jhash.h
    assert jhash2([], 0) == 0xDEADBEEF
    assert jhash2([1, 2, 3, 4], 0) == 1716064838
    assert jhash2([1, 2, 3, 4], 7) == 3166055193
    assert jhash2([1, 2, 3], 0) == 2757843189
    assert jhash2([1], 0) == 1923623579
    assert jhash2([0xDEADBEEF, 0xFFFFFFFF, 0, 0x80000000, 42], 0x12345678) == 35425732


@pytest.mark.parametrize("family,src,dst,lo,hi,persistent,manip_src,zone,want", [
    (4, "10.0.0.1", "192.168.0.10", "10.1.0.1", "10.1.0.4", False, False, 0, "10.1.0.2"),
    (4, "10.0.0.1", "192.168.0.10", "10.1.0.1", "10.1.0.4", False, True, 0, "10.1.0.2"),
    (4, "10.0.0.2", "192.168.0.10", "10.1.0.1", "10.1.0.4", False, False, 0, "10.1.0.4"),
    (4, "10.0.0.1", "192.168.0.11", "10.1.0.1", "10.1.0.4", False, False, 0, "10.1.0.3"),
    (4, "10.0.0.1", "192.168.0.10", "10.1.0.1", "10.1.0.4", False, False, 5, "10.1.0.2"),
    (4, "10.0.0.1", "192.168.0.10", "10.1.0.1", "10.1.0.4", True, True, 0, "10.1.0.2"),
    (4, "172.16.5.9", "8.8.8.8", "10.0.0.0", "10.255.255.255", False, False, 0, "10.166.66.60"),
    # min > max: the u32 distance wraps (the kernel takes the range as given)
    (4, "172.16.5.9", "8.8.8.8", "10.0.0.10", "10.0.0.1", False, False, 0, "176.66.60.148"),
    (6, "2001:db8::1", "2001:db8:1::10", "2001:db8:ffff::1", "2001:db8:ffff::ff", False, False,
     0, "2001:db8:ffff::36"),
    (6, "2001:db8::1", "2001:db8:1::10", "2001:db8:ffff::1", "2001:db8:ffff::ff", False, True,
     0, "2001:db8:ffff::36"),
    # a destination manip XORs the word it just wrote into j (tuple->dst.u3.all[i])
    (6, "2001:db8::1", "2001:db8:1::10", "2001:db8::", "2001:db9::ffff", False, False, 0,
     "2001:db9::3719"),
    # persistent: j never changes; once below the maximum every word spans 2^32 (can leave
    # the range, as in the kernel)
    (6, "2001:db8::1", "2001:db8:1::10", "2001:db8::", "2001:db9::ffff", True, True, 0,
     "2001:db8:e5b:ada:e5b:ada:e5b:ada"),
])
def test_find_best_ips_proto_matches_the_kernel(family, src, dst, lo, hi, persistent,
                                                manip_src, zone, want):
    assert find_best_ip(ip(src), ip(dst), ip(lo), ip(hi), family, manip_src, persistent,
                        zone) == ip(want)


# ------------------------------------------------------------------------------------ NAT


def test_dnat_address_from_range_and_port():
    t = rule_target("-A PREROUTING -p tcp -j DNAT --to-destination 10.1.0.1-10.1.0.4:8080",
                    "nat")
    pkt = tcp(iif="eth0")
    ct = new_ct(pkt)
    ev = ctx("PREROUTING", "nat", ct)
    r = t.apply(pkt, ev)
    assert r.verdict is Verdict.ACCEPT          # NAT targets return NF_ACCEPT
    assert (r.packet.dst, r.packet.dport) == (ip("10.1.0.2"), 8080)
    assert (r.packet.src, r.packet.sport) == (pkt.src, pkt.sport)
    assert ct.dnat_done and not ct.snat_done
    assert ct.state & CtState.DNAT and not ct.state & CtState.SNAT
    assert ct.status & (1 << 5) and ct.status & (1 << 8)     # IPS_DST_NAT, IPS_DST_NAT_DONE
    assert (ct.repl_src, ct.repl_sport) == (ip("10.1.0.2"), 8080)
    assert ct.orig_dst == pkt.dst
    [e] = ev.events
    assert e.kind == "DNAT" and e.detail["to"] == "10.1.0.2:8080"
    assert "random_port" not in e.detail


def test_dnat_zone_and_persistent_feed_the_hash():
    t = rule_target("-A PREROUTING -j DNAT --to-destination 10.1.0.1-10.1.0.4 --persistent",
                    "nat")
    # persistent: initval 0, so only the source decides
    for dst in ("192.168.0.10", "192.168.0.11"):
        r = t.apply(tcp(dst=dst), ctx("PREROUTING", "nat"))
        assert r.packet.dst == ip("10.1.0.2")
    t2 = rule_target("-A PREROUTING -j DNAT --to-destination 10.1.0.1-10.1.0.4", "nat")
    assert t2.apply(tcp(dst="192.168.0.11"), ctx("PREROUTING", "nat")).packet.dst == \
        ip("10.1.0.3")


def test_dnat_without_ports_keeps_the_port_and_needs_no_choice():
    t = rule_target("-A OUTPUT -p tcp -j DNAT --to-destination 10.9.9.9", "nat")
    ev = ctx("OUTPUT", "nat")                       # no chooser: a choice would raise
    r = t.apply(tcp(dport=443), ev)
    assert (r.packet.dst, r.packet.dport) == (ip("10.9.9.9"), 443)


def test_dnat_port_range_out_of_range_takes_the_first_port():
    t = rule_target("-A PREROUTING -p tcp -j DNAT --to-destination 10.9.9.9:8000-8010", "nat")
    ev = ctx("PREROUTING", "nat")
    r = t.apply(tcp(dport=80), ev)
    # kernel >= 6.8: a destination manip without --random starts at offset 0 (the first
    # port), no random choice (tests/kernel/test_nat_vs_kernel.py checks it)
    assert r.packet.dport == 8000 and "random_port" not in ev.events[0].detail
    ev = ctx("PREROUTING", "nat")
    assert t.apply(tcp(dport=8005), ev).packet.dport == 8005     # in range: kept
    assert "random_port" not in ev.events[0].detail


def test_dnat_shifted_port_range_is_exact():
    t = rule_target("-A PREROUTING -p tcp -j DNAT --to-destination 10.9.9.9:1000-1999/500",
                    "nat")
    # off = port - base; port = min + off % size (no "keep when in range" with an offset)
    assert t.apply(tcp(dport=600), ctx("PREROUTING", "nat")).packet.dport == 1100
    assert t.apply(tcp(dport=1500), ctx("PREROUTING", "nat")).packet.dport == 1000
    assert t.apply(tcp(dport=400), ctx("PREROUTING", "nat")).packet.dport == 1000 + 65436 % 1000


def test_snat_keeps_a_source_already_in_range():
    t = rule_target("-A POSTROUTING -j SNAT --to-source 10.1.0.1-10.1.0.4", "nat")
    pkt = tcp(src="10.1.0.3", oif="eth0")
    ct = new_ct(pkt)
    ev = ctx("POSTROUTING", "nat", ct)
    r = t.apply(pkt, ev)
    assert r.verdict is Verdict.ACCEPT and r.packet == pkt
    # decided (IPS_SRC_NAT_DONE) but not a translation: no SNAT ctstate bit
    assert ct.snat_done and not ct.state & CtState.SNAT and ev.events[0].detail["unchanged"]
    r = t.apply(tcp(src="10.0.0.1", oif="eth0"), ctx("POSTROUTING", "nat"))
    assert r.packet.src == ip("10.1.0.2") and r.packet.sport == 40000


def test_snat_ports():
    t = rule_target("-A POSTROUTING -p tcp -j SNAT --to-source 1.2.3.4:2000-3000", "nat")
    assert t.apply(tcp(sport=2500), ctx("POSTROUTING", "nat")).packet.sport == 2500
    ev = ctx("POSTROUTING", "nat")
    r = t.apply(tcp(sport=40000), ev)
    assert (r.packet.src, r.packet.sport) == (ip("1.2.3.4"), 2000)
    assert "2000-3000" in ev.events[0].detail["random_port"]


def test_snat_random_skips_the_keep_steps():
    t = rule_target("-A POSTROUTING -p udp -j SNAT --to-source 1.2.3.4 --random", "nat")
    pkt = Packet(src=ip("10.0.0.1"), dst=ip("8.8.8.8"), proto=17, sport=300, dport=53)
    ev = ctx("POSTROUTING", "nat")
    r = t.apply(pkt, ev)
    # no --to-source ports: the class of port 300 is 1-511
    assert r.packet.sport == 300 and ev.events[0].detail["random_port"].startswith("1-511")


def test_nat_manip_twice_is_a_kernel_drop():
    t = rule_target("-A PREROUTING -j DNAT --to-destination 10.9.9.9", "nat")
    pkt = tcp()
    ct = new_ct(pkt)
    ct.dnat_done = True
    assert t.apply(pkt, ctx("PREROUTING", "nat", ct)).verdict is Verdict.DROP


def test_dnat_icmp_echo_id_range():
    t = rule_target("-A PREROUTING -p icmp -j DNAT --to-destination 10.9.9.9:100-200", "nat")
    pkt = Packet(src=ip("10.0.0.1"), dst=ip("192.168.0.2"), proto=1, icmp_type=8,
                 icmp_rest=(150 << 16) | 7)
    r = t.apply(pkt, ctx("PREROUTING", "nat"))
    assert r.packet.dst == ip("10.9.9.9") and r.packet.icmp_rest == (150 << 16) | 7
    r = t.apply(pkt.replace(icmp_rest=(5 << 16) | 7), ctx("PREROUTING", "nat"))
    assert r.packet.icmp_id == 100 and r.packet.icmp_seq == 7


def test_dnat_ipv6():
    t = rule_target("-A PREROUTING -j DNAT --to-destination 2001:db8:ffff::1-2001:db8:ffff::ff",
                    "nat", Family.IPV6)
    pkt = Packet(family=6, src=ip("2001:db8::1"), dst=ip("2001:db8:1::10"), proto=6,
                 sport=1, dport=2)
    assert t.apply(pkt, ctx("PREROUTING", "nat")).packet.dst == ip("2001:db8:ffff::36")


def test_masquerade():
    t = rule_target("-A POSTROUTING -o eth0 -j MASQUERADE", "nat")
    pkt = tcp(src="10.0.0.5", dst="8.8.8.8", iif="eth1", oif="eth0")
    ct = new_ct(pkt)
    ev = ctx("POSTROUTING", "nat", ct)
    r = t.apply(pkt, ev)
    assert r.verdict is Verdict.ACCEPT
    assert (r.packet.src, r.packet.sport) == (ip("192.168.0.2"), 40000)
    assert ct.snat_done and ct.state & CtState.SNAT and ct.repl_dst == ip("192.168.0.2")
    assert ev.events[0].kind == "SNAT" and ev.events[0].detail["by"] == "MASQUERADE"


def test_masquerade_random_fully_and_ports():
    t = rule_target("-A POSTROUTING -j MASQUERADE --random-fully", "nat")
    ev = ctx("POSTROUTING", "nat")
    r = t.apply(tcp(src="10.0.0.5", dst="8.8.8.8", oif="eth0"), ev)
    assert r.packet.sport == 40000 and "1024-65535" in ev.events[0].detail["random_port"]
    t = rule_target("-A POSTROUTING -p tcp -j MASQUERADE --to-ports 1024-2000", "nat")
    r = t.apply(tcp(src="10.0.0.5", dst="8.8.8.8", oif="eth0", sport=5000),
                ctx("POSTROUTING", "nat"))
    assert (r.packet.src, r.packet.sport) == (ip("192.168.0.2"), 1024)


def test_masquerade_edge_cases():
    t = rule_target("-A POSTROUTING -j MASQUERADE", "nat")
    # original source 0.0.0.0: NF_ACCEPT, no binding, packet untouched
    pkt = tcp(src="0.0.0.0", dst="8.8.8.8", oif="eth0")
    r = t.apply(pkt, ctx("POSTROUTING", "nat"))
    assert r.verdict is Verdict.ACCEPT and r.packet == pkt
    # no usable address anywhere: "eth0 ate my IP address" -> NF_DROP
    ev = ctx("POSTROUTING", "nat", host=BARE)
    r = t.apply(tcp(src="10.0.0.5", dst="8.8.8.8", oif="eth0"), ev)
    assert r.verdict is Verdict.DROP and "ate my IP address" in ev.events[0].detail["error"]
    t6 = rule_target("-A POSTROUTING -j MASQUERADE", "nat", Family.IPV6)
    with pytest.raises(NotEvaluable):
        t6.apply(Packet(family=6, src=1, dst=2, proto=6), ctx("POSTROUTING", "nat"))


def test_redirect():
    t = rule_target("-A PREROUTING -p tcp --dport 80 -j REDIRECT --to-ports 3128", "nat")
    r = t.apply(tcp(dst="1.1.1.1", iif="eth0"), ctx("PREROUTING", "nat"))
    assert (r.packet.dst, r.packet.dport) == (ip("192.168.0.2"), 3128)
    # OUTPUT: 127.0.0.1 (nf_nat_redirect_ipv4 decides by hook)
    r = t.apply(tcp(src="192.168.0.2", dst="1.1.1.1"), ctx("OUTPUT", "nat"))
    assert (r.packet.dst, r.packet.dport) == (ip("127.0.0.1"), 3128)
    # an incoming device without an address: NF_DROP
    r = t.apply(tcp(dst="1.1.1.1", iif="eth9"), ctx("PREROUTING", "nat"))
    assert r.verdict is Verdict.DROP


def test_netmap():
    t = rule_target("-A PREROUTING -d 1.2.3.0/24 -j NETMAP --to 10.5.6.0/24", "nat")
    ev = ctx("PREROUTING", "nat")
    r = t.apply(tcp(dst="1.2.3.77"), ev)
    assert r.packet.dst == ip("10.5.6.77") and ev.events[0].kind == "DNAT"
    t = rule_target("-A POSTROUTING -s 10.0.0.0/16 -j NETMAP --to 172.16.0.0/16", "nat")
    ev = ctx("POSTROUTING", "nat")
    r = t.apply(tcp(src="10.0.3.4"), ev)
    assert r.packet.src == ip("172.16.3.4") and ev.events[0].kind == "SNAT"


def test_nat_through_the_chain_walk():
    rs = nfemu.loads("*nat\n:PREROUTING ACCEPT [0:0]\n:SVC - [0:0]\n"
                     "-A PREROUTING -d 10.96.0.1/32 -p tcp --dport 443 -j SVC\n"
                     "-A SVC -p tcp -j DNAT --to-destination 192.168.0.50:6443\nCOMMIT\n")
    pkt = tcp(dst="10.96.0.1", dport=443, iif="eth0")
    ct = new_ct(pkt)
    ev = ctx("PREROUTING", "nat", ct)
    res = walk_table(rs.table("nat"), "PREROUTING", pkt, ev)
    assert res.verdict is Verdict.ACCEPT
    assert (res.packet.dst, res.packet.dport) == (ip("192.168.0.50"), 6443)
    assert ev.events[0].chain == "SVC" and ev.events[0].rule == 1


# ------------------------------------------------------------------------- MARK, CONNMARK


@pytest.mark.parametrize("opts,before,after", [
    ("--set-xmark 0x4000/0x4000", 0x1, 0x4001),
    ("--set-mark 0x5", 0xFFFF, 0x5),
    ("--and-mark 0xff", 0x1234, 0x34),
    ("--or-mark 0x100", 0x1, 0x101),
    ("--xor-mark 0x3", 0x1, 0x2),
    ("--set-xmark 0x1/0x0", 0x1, 0x0),        # mask 0: (mark & ~0) ^ 1
])
def test_mark(opts, before, after):
    t = rule_target(f"-A PREROUTING -j MARK {opts}", "mangle")
    r = t.apply(tcp(mark=before), ctx("PREROUTING", "mangle"))
    assert r.verdict is Verdict.CONTINUE and r.packet.mark == after
    assert t.apply(before) == after            # the int form stays


def test_connmark_set_save_restore():
    pkt = tcp(mark=0x12)
    ct = new_ct(pkt)
    ct.mark = 0xF0
    set_ = rule_target("-A PREROUTING -j CONNMARK --set-xmark 0x1/0xf", "mangle")
    r = set_.apply(pkt, ctx("PREROUTING", "mangle", ct))
    assert r.verdict is Verdict.CONTINUE and ct.mark == 0xF1 and r.packet.mark == 0x12
    save = rule_target("-A PREROUTING -j CONNMARK --save-mark --nfmask 0xf --ctmask 0xff",
                       "mangle")
    save.apply(pkt, ctx("PREROUTING", "mangle", ct))
    assert ct.mark == 0x02                   # (0xF1 & ~0xff) ^ (0x12 & 0xf)
    ct.mark = 0xAB
    restore = rule_target("-A PREROUTING -j CONNMARK --restore-mark --mask 0xf0", "mangle")
    r = restore.apply(pkt, ctx("PREROUTING", "mangle", ct))
    assert r.packet.mark == 0xA2             # (0x12 & ~0xf0) ^ (0xAB & 0xf0)


def test_connmark_shift_and_no_conntrack():
    pkt = tcp(mark=0x3)
    ct = new_ct(pkt)
    t = rule_target("-A PREROUTING -j CONNMARK --save-mark --left-shift-mark 8", "mangle")
    t.apply(pkt, ctx("PREROUTING", "mangle", ct))
    assert ct.mark == 0x300
    restore = rule_target("-A PREROUTING -j CONNMARK --restore-mark --right-shift-mark 8",
                          "mangle")
    assert restore.apply(tcp(), ctx("PREROUTING", "mangle", ct)).packet.mark == 0x3
    # nf_ct_get() is NULL: nothing happens
    r = restore.apply(pkt, ctx("PREROUTING", "mangle", None))
    assert r.packet is pkt
    ct.untracked = True
    assert restore.apply(tcp(), ctx("PREROUTING", "mangle", ct)).packet.mark == 0


# -------------------------------------------------------------------------------- REJECT


def _reject(opts="", pkt=None, hook="INPUT", proto="-p tcp "):
    t = rule_target(f"-A {hook} {proto}-j REJECT {opts}".rstrip())
    ev = ctx(hook)
    r = t.apply(pkt if pkt is not None else tcp(dst="192.168.0.2", iif="eth0"), ev)
    assert r.verdict is Verdict.DROP
    [e] = ev.events
    assert e.kind == "REJECT"
    return e.detail


def test_reject_port_unreachable():
    d = _reject()
    assert d["with"] == "icmp-port-unreachable"
    assert d["reply"] == ("ICMP destination-unreachable (type 3 code 3, port-unreachable) "
                          "192.168.0.2 > 10.0.0.1")
    d = _reject("--reject-with icmp-admin-prohibited")
    assert "code 13" in d["reply"]


def test_reject_never_answers_some_packets():
    frag = Packet(src=ip("10.0.0.1"), dst=ip("192.168.0.2"), proto=6, frag=10, iif="eth0")
    assert _reject(pkt=frag)["reply"].startswith("none: not the first fragment")
    icmp_err = Packet(src=ip("10.0.0.1"), dst=ip("192.168.0.2"), proto=1, icmp_type=3,
                      icmp_code=1)
    assert "ICMP error about an ICMP error" in _reject(pkt=icmp_err, proto="")["reply"]
    unknown = icmp_err.replace(icmp_type=40)            # > NR_ICMP_TYPES counts as an error
    assert _reject(pkt=unknown, proto="")["reply"].startswith("none")
    echo = icmp_err.replace(icmp_type=8, icmp_code=0)
    assert _reject(pkt=echo, proto="")["reply"].startswith("ICMP destination-unreachable")
    bcast = tcp(dst="255.255.255.255")
    assert "broadcast" in _reject(pkt=bcast)["reply"]
    subnet_bcast = tcp(dst="192.168.0.255")
    assert "broadcast" in _reject(pkt=subnet_bcast)["reply"]
    other = tcp(dst="192.168.0.2", pkttype=PacketType.OTHERHOST)
    assert "pkt_type" in _reject(pkt=other)["reply"]


def test_reject_tcp_reset():
    syn = tcp(dst="192.168.0.2", sport=1234, dport=22, flags=0x02, tcp_seq=1000)
    assert _reject("--reject-with tcp-reset", syn)["reply"] == \
        "TCP RST [R.] 192.168.0.2:22 > 10.0.0.1:1234 seq 0 ack 1001"
    data = tcp(dst="192.168.0.2", sport=1234, dport=22, flags=0x18, tcp_seq=5, tcp_ack=77,
               payload=b"hello")
    assert _reject("--reject-with tcp-reset", data)["reply"] == \
        "TCP RST [R] 192.168.0.2:22 > 10.0.0.1:1234 seq 77"
    fin = tcp(dst="192.168.0.2", flags=0x01, tcp_seq=5, payload=b"abc")
    assert _reject("--reject-with tcp-reset", fin)["reply"].endswith("ack 9")
    rst = tcp(dst="192.168.0.2", flags=0x04)
    assert _reject("--reject-with tcp-reset", rst)["reply"] == "none: no RST for a RST"


def test_reject_ipv6():
    t = rule_target("-A INPUT -j REJECT", family=Family.IPV6)
    ev = ctx("INPUT")
    pkt = Packet(family=6, src=ip("2001:db8::1"), dst=ip("2001:db8::2"), proto=17, sport=1,
                 dport=2)
    assert t.apply(pkt, ev).verdict is Verdict.DROP
    assert ev.events[0].detail["reply"].startswith("ICMPv6 destination-unreachable (type 1 "
                                                   "code 4")
    ev = ctx("INPUT")
    t.apply(Packet(family=6, src=ip("2001:db8::1"), dst=ip("ff02::1"), proto=17), ev)
    assert ev.events[0].detail["reply"].startswith("none")


# ---------------------------------------------------------------------------- LOG, NFLOG


def test_log_line_tcp_syn():
    t = rule_target('-A INPUT -p tcp -j LOG --log-prefix "drop: " --log-level 6')
    pkt = tcp(src="10.0.0.1", dst="192.168.0.2", sport=1234, dport=22, iif="eth0",
              ip_flags=2, ip_id=54321, ttl=63, tos=0xB8, tcp_window=64240,
              in_mac=0x020000000001, out_mac=0x020000000002, mark=0x4000)
    ev = ctx("INPUT")
    r = t.apply(pkt, ev)
    assert r.verdict is Verdict.CONTINUE and r.packet is pkt
    [e] = ev.events
    assert e.kind == "LOG" and e.detail["level"] == 6 and e.detail["prefix"] == "drop: "
    assert e.detail["line"] == (
        "drop: IN=eth0 OUT= MAC=02:00:00:00:00:02:02:00:00:00:00:01:08:00 "
        "SRC=10.0.0.1 DST=192.168.0.2 LEN=40 TOS=0x18 PREC=0xA0 TTL=63 ID=54321 DF "
        "PROTO=TCP SPT=1234 DPT=22 WINDOW=64240 RES=0x00 SYN URGP=0 MARK=0x4000 ")


def test_log_line_flags_and_output_hook():
    t = rule_target("-A OUTPUT -j LOG --log-tcp-sequence --log-tcp-options --log-uid")
    pkt = tcp(src="192.168.0.2", dst="8.8.8.8", oif="eth0", flags=0x12, tcp_seq=1,
              tcp_ack=2, tcp_options=bytes([2, 4, 5, 0xB4]))
    ev = ctx("OUTPUT", sock_uid=1000, sock_gid=100)
    t.apply(pkt, ev)
    # no input device: no MAC part
    assert ev.events[0].detail["line"] == (
        "IN= OUT=eth0 SRC=192.168.0.2 DST=8.8.8.8 LEN=44 TOS=0x00 PREC=0x00 TTL=64 ID=0 "
        "PROTO=TCP SPT=40000 DPT=80 SEQ=1 ACK=2 WINDOW=0 RES=0x00 ACK SYN URGP=0 "
        "OPT (020405B4) UID=1000 GID=100 ")


def test_log_line_udp_icmp_and_quoted_datagram():
    from nfemu.ext.LOG import log_line
    udp = Packet(src=ip("10.0.0.1"), dst=ip("10.0.0.2"), proto=17, sport=5353, dport=53,
                 payload=b"xy")
    assert log_line(udp).endswith("PROTO=UDP SPT=5353 DPT=53 LEN=10 ")
    echo = Packet(src=ip("10.0.0.1"), dst=ip("10.0.0.2"), proto=1, icmp_type=8,
                  icmp_rest=(7 << 16) | 9)
    assert log_line(echo).endswith("PROTO=ICMP TYPE=8 CODE=0 ID=7 SEQ=9 ")
    err = Packet(src=ip("10.0.0.2"), dst=ip("10.0.0.1"), proto=1, icmp_type=3, icmp_code=4,
                 icmp_rest=1400, inner=udp, mark=1)
    line = log_line(err)
    assert "PROTO=ICMP TYPE=3 CODE=4 [SRC=10.0.0.1 DST=10.0.0.2 LEN=30 " in line
    assert line.endswith("PROTO=UDP SPT=5353 DPT=53 LEN=10 ] MTU=1400 MARK=0x1 ")
    frag = Packet(src=ip("10.0.0.1"), dst=ip("10.0.0.2"), proto=6, frag=185, ip_flags=1,
                  payload=b"z" * 8)
    assert log_line(frag).endswith("MF FRAG:185 PROTO=TCP ")


def test_log_line_ipv6():
    from nfemu.ext.LOG import log_line
    pkt = Packet(family=6, src=ip("2001:db8::1"), dst=ip("2001:db8::2"), proto=58,
                 icmp_type=128, icmp_rest=(1 << 16) | 2, ttl=64, flowlabel=5, iif="eth0")
    assert log_line(pkt) == (
        "IN=eth0 OUT= MAC= SRC=2001:0db8:0000:0000:0000:0000:0000:0001 "
        "DST=2001:0db8:0000:0000:0000:0000:0000:0002 LEN=48 TC=0 HOPLIMIT=64 FLOWLBL=5 "
        "PROTO=ICMPv6 TYPE=128 CODE=0 ID=1 SEQ=2 ")


def test_nflog():
    t = rule_target('-A INPUT -j NFLOG --nflog-group 5 --nflog-prefix "in" --nflog-size 128')
    ev = ctx("INPUT")
    pkt = tcp(iif="eth0")
    r = t.apply(pkt, ev)
    assert r.verdict is Verdict.CONTINUE and r.packet is pkt
    d = ev.events[0].detail
    assert ev.events[0].kind == "NFLOG" and d["group"] == 5 and d["prefix"] == "in"
    assert d["size"] == 128 and d["line"].startswith("inIN=eth0 OUT= ")


# ---------------------------------------------------------------------------- CT, NOTRACK


def test_ct_notrack_and_notrack():
    for line in ("-A PREROUTING -j CT --notrack", "-A PREROUTING -j NOTRACK"):
        t = rule_target(line, "raw")
        pkt = tcp(iif="eth0")
        ct = new_ct(pkt)
        ev = ctx("PREROUTING", "raw", ct)
        r = t.apply(pkt, ev)
        assert r.verdict is Verdict.CONTINUE and r.packet is pkt
        assert ct.untracked and ct.state == CtState.UNTRACKED
        assert ev.events[0].kind == "NOTRACK"


def test_ct_zone_helper_and_loopback():
    t = rule_target("-A PREROUTING -p tcp -j CT --zone 5", "raw")
    pkt = tcp(iif="eth0", mark=0x10007)
    ct = new_ct(pkt)
    t.apply(pkt, ctx("PREROUTING", "raw", ct))
    assert ct.zone == 5 and not ct.untracked
    t = rule_target("-A PREROUTING -j CT --zone mark", "raw")
    t.apply(pkt, ctx("PREROUTING", "raw", ct))
    assert ct.zone == 7                           # u16 of the packet mark
    t = rule_target("-A OUTPUT -p tcp -j CT --helper ftp", "raw")
    t.apply(pkt, ctx("OUTPUT", "raw", ct))
    assert ct.helper == "ftp"
    # a packet back in through lo already has its conntrack entry: CT does nothing
    t = rule_target("-A PREROUTING -j CT --notrack", "raw")
    ct2 = new_ct(pkt)
    ev = ctx("PREROUTING", "raw", ct2)
    t.apply(pkt.replace(iif="lo"), ev)
    assert not ct2.untracked and not ev.events


# ------------------------------------------------------------------------ mangle targets


def test_tos_dscp_ttl():
    t = rule_target("-A PREROUTING -j TOS --set-tos 0x10/0x3f", "mangle")
    r = t.apply(tcp(tos=0xC3), ctx("PREROUTING", "mangle"))
    assert r.packet.tos == 0xD0 and r.verdict is Verdict.CONTINUE
    t = rule_target("-A PREROUTING -j DSCP --set-dscp-class EF", "mangle")
    assert t.apply(tcp(tos=0x03), ctx("PREROUTING", "mangle")).packet.tos == (46 << 2) | 3
    for opts, before, after in (("--ttl-set 5", 64, 5), ("--ttl-dec 10", 3, 0),
                                ("--ttl-inc 10", 250, 255)):
        t = rule_target(f"-A PREROUTING -j TTL {opts}", "mangle")
        assert t.apply(tcp(ttl=before), ctx("PREROUTING", "mangle")).packet.ttl == after
        assert t.apply(before) == after


def test_classify_records_the_priority():
    t = rule_target("-A POSTROUTING -j CLASSIFY --set-class 1:10", "mangle")
    ev = ctx("POSTROUTING", "mangle")
    pkt = tcp()
    r = t.apply(pkt, ev)
    assert r.verdict is Verdict.CONTINUE and r.packet is pkt
    assert ev.events[0].kind == "CLASSIFY" and ev.events[0].detail["priority"] == "1:10"


def test_tcpmss():
    setmss = rule_target("-A FORWARD -p tcp --tcp-flags SYN,RST SYN -j TCPMSS --set-mss 1200",
                         "mangle")
    mss1460 = bytes([1, 1, 2, 4, 0x05, 0xB4])    # NOP NOP MSS 1460 (padded to 8)
    r = setmss.apply(tcp(tcp_options=mss1460), ctx("FORWARD", "mangle"))
    assert r.packet.tcp_mss == 1200 and r.verdict is Verdict.CONTINUE
    small = bytes([2, 4, 0x03, 0xE8])             # MSS 1000: never raised
    assert setmss.apply(tcp(tcp_options=small), ctx("FORWARD", "mangle")).packet.tcp_mss == 1000
    # no MSS option: one is added first, with min(mss, 536)
    r = setmss.apply(tcp(tcp_options=bytes([1, 1, 1, 1])), ctx("FORWARD", "mangle"))
    assert r.packet.tcp_options == bytes([2, 4, 0x02, 0x18, 1, 1, 1, 1])
    assert r.packet.length == 48
    # data after the header: left alone
    pkt = tcp(payload=b"x")
    assert setmss.apply(pkt, ctx("FORWARD", "mangle")).packet is pkt
    clamp = rule_target("-A FORWARD -p tcp --tcp-flags SYN,RST SYN -j TCPMSS "
                        "--clamp-mss-to-pmtu", "mangle")
    r = clamp.apply(tcp(tcp_options=bytes([2, 4, 0x23, 0x28]), oif="eth0"),
                    ctx("FORWARD", "mangle"))
    assert r.packet.tcp_mss == 1460              # MTU 1500 (assumed) - 40
    frag = Packet(src=1, dst=2, proto=6, frag=3)
    assert clamp.apply(frag, ctx("FORWARD", "mangle")).packet is frag


# ------------------------------------------------------------- TRACE, NFQUEUE, AUDIT, ...


def test_trace_nfqueue_audit_checksum():
    pkt = tcp(mark=0x10)
    ev = ctx("PREROUTING", "raw")
    r = rule_target("-A PREROUTING -j TRACE", "raw").apply(pkt, ev)
    assert r.verdict is Verdict.CONTINUE and ev.events[0].kind == "TRACE"

    ev = ctx("INPUT")
    r = rule_target("-A INPUT -j NFQUEUE --queue-num 3 --queue-bypass").apply(pkt, ev)
    assert r.verdict is Verdict.QUEUE and r.packet is pkt
    assert ev.events[0].detail["queue"] == 3 and "bypass" in ev.events[0].detail["no_listener"]
    ev = ctx("INPUT")
    rule_target("-A INPUT -j NFQUEUE --queue-balance 2:5").apply(pkt, ev)
    assert ev.events[0].detail["queue"] == "2-5" and ev.events[0].detail["no_listener"] == \
        "dropped"

    ev = ctx("INPUT")
    r = rule_target("-A INPUT -j AUDIT --type drop").apply(pkt, ev)
    assert r.verdict is Verdict.CONTINUE
    assert ev.events[0].detail == {"type": "drop", "record":
                                   "mark=0x10 saddr=10.0.0.1 daddr=192.168.0.10 proto=6"}

    ev = ctx("POSTROUTING", "mangle")
    r = rule_target("-A POSTROUTING -p udp -j CHECKSUM --checksum-fill", "mangle").apply(pkt, ev)
    assert r.verdict is Verdict.CONTINUE and r.packet is pkt and not ev.events


def test_tproxy_is_not_evaluated_yet():
    assert not hasattr(Tproxy, "apply")
