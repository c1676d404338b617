"""iptables-nft's native tcp/udp translation, as iptables-nft-save prints it back.
Every expectation below was printed by iptables-nft-save 1.8.9 on Linux 6.18 after
iptables-restore of the rule on the left."""
import pytest

import nfemu

CASES = [
    ("-p tcp -m tcp --dport 1 -m comment --comment x -m tcp --sport 2",
     "-p tcp -m tcp --sport 2 --dport 1 -m comment --comment x"),
    ("-p tcp -m tcp --dport 1 -m mark --mark 1 -m tcp --sport 2",
     "-p tcp -m tcp --sport 2 --dport 1 -m mark --mark 0x1"),
    ("-p udp -m udp --dport 1 -m udp --sport 2", "-p udp -m udp --sport 2 --dport 1"),
    ("-p tcp -m tcp --dport 1 -m tcp --dport 2", "-p tcp -m tcp --dport 2"),
    ("-p tcp -m tcp --syn -m tcp --dport 2",
     "-p tcp -m tcp --dport 2 --tcp-flags FIN,SYN,RST,ACK SYN"),
    ("-p tcp -m tcp ! --sport 1024:65535", "-p tcp -m tcp ! --sport 1024:65535"),
    ("-p tcp -m tcp ! --sport 0", "-p tcp -m tcp ! --sport 0"),
    ("-p tcp -m tcp ! --sport 0:65535", "-p tcp"),
    ("-p udp -m udp ! --dport 0:1023", "-p udp -m udp --dport 1024:65535"),
    ("-p tcp --dport 1 -m tcp --sport 2", "-p tcp -m tcp --sport 2 --dport 1"),
    ("-p tcp -m tcp --tcp-option 2 -m tcp --sport 3",
     "-p tcp -m tcp --tcp-option 2 -m tcp --sport 3"),
    ("-p tcp -m tcp --dport 5 -m multiport --dports 1,2 -m tcp --sport 2",
     "-p tcp -m tcp --sport 2 --dport 5 -m multiport --dports 1,2"),
    ("-p tcp -m tcp --dport 1 -m mark --mark 1 -m tcp --dport 2 -m mark --mark 2",
     "-p tcp -m tcp --dport 2 -m mark --mark 0x1 -m mark --mark 0x2"),
    ("-p udp -m udp ! --dport 0:1 -m udp --sport 5", "-p udp -m udp --sport 5 --dport 2:65535"),
    ("-p udp -m udp --dport 3 -m udp ! --dport 0:1", "-p udp -m udp --dport 2:3"),
    ("-p sctp -m sctp --dport 1 -m sctp --sport 2", "-p sctp -m sctp --dport 1 -m sctp --sport 2"),
    ("-p tcp -m tcp -m tcp --dport 80", "-p tcp -m tcp -m tcp --dport 80"),
    # a negation read back is never cleared by a later test
    ("-p tcp -m tcp ! --dport 1 -m tcp --dport 2", "-p tcp -m tcp ! --dport 2"),
    ("-p tcp -m tcp ! --tcp-flags SYN SYN -m tcp --tcp-flags FIN FIN",
     "-p tcp -m tcp ! --tcp-flags FIN FIN"),
    # lo:65535 is stored as a range (both bounds), not as ">= lo"
    ("-p tcp -m tcp --dport 5 -m tcp ! --dport 100:65535", "-p tcp -m tcp ! --dport 100:65535"),
    ("-p tcp -m tcp --dport 0:10 -m tcp --dport 100:65535", "-p tcp -m tcp --dport 100:65535"),
    ("-p tcp -m tcp --dport 10 -m tcp --dport 0:5", "-p tcp -m tcp --dport 10:5"),
    # no flags test is stored when the mask is NONE; a match storing nothing is not printed
    ("-p tcp -m tcp ! --tcp-flags NONE NONE", "-p tcp"),
    ("-p tcp -m tcp --tcp-flags NONE ALL", "-p tcp"),
    ("-p tcp -m tcp --dport 80 ! --tcp-flags NONE NONE", "-p tcp -m tcp --dport 80"),
    ("-p tcp -m tcp ! --tcp-flags SYN SYN -m tcp ! --tcp-flags NONE NONE",
     "-p tcp -m tcp ! --tcp-flags SYN SYN"),
    ("-p tcp -m tcp --syn -m tcp ! --tcp-flags NONE NONE",
     "-p tcp -m tcp --tcp-flags FIN,SYN,RST,ACK SYN"),
    # the rebuilt match sits where the first test was stored
    ("-p tcp -m tcp ! --sport 0:65535 -m mark --mark 1 -m tcp --dport 3",
     "-p tcp -m mark --mark 0x1 -m tcp --dport 3"),
    ("-p tcp -m mark --mark 1 -m tcp ! --sport 0:65535 -m mark --mark 2 -m tcp --dport 3",
     "-p tcp -m mark --mark 0x1 -m mark --mark 0x2 -m tcp --dport 3"),
]


@pytest.mark.parametrize("rule,saved", CASES)
def test_saved_like_iptables_nft(rule, saved):
    rs = nfemu.loads(f"*filter\n-A INPUT {rule}\nCOMMIT\n")
    assert rs.table("filter").chain("INPUT").rules[0].save() == f"-A INPUT {saved}"
