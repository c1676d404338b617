"""Port syntax: libxt_tcp/libxt_sctp read ports with xtables_parse_port (C base 0, names of
the rule's protocol); libxt_udp (1.8.9) with xtopt_parse_mport (decimal, 16-bit wrap, names
of any protocol). Expectations recorded from iptables 1.8.9 nf_tables on Linux 6.18."""
import pytest

import nfemu
from nfemu.errors import RulesetErrors

CASES = [
    ("-p tcp --dport 080", "ERR", "invalid port/service `080'"),
    ("-p tcp --dport 0x50", "-p tcp -m tcp --dport 80", None),
    ("-p tcp --dport 70000", "ERR", "invalid port/service `70000'"),
    ("-p tcp --dport +80", "-p tcp -m tcp --dport 80", None),
    ("-p tcp --dport -1", "ERR", "invalid port/service `-1'"),
    ("-p tcp --dport 5:4", "ERR", "invalid portrange (min > max)"),
    ("-p tcp --sport :", "-p tcp -m tcp", None),
    ("-p tcp --dport ssh:http", "-p tcp -m tcp --dport 22:80", None),
    ("-p sctp --dport 0x50", "-p sctp -m sctp --dport 80", None),
    ("-p sctp --dport http", "ERR", "invalid port/service `http'"),
    ("-p udp --dport 080", "-p udp -m udp --dport 80", None),
    ("-p udp --dport 0x50", "ERR", 'Port "0x50" does not resolve to anything.'),
    ("-p udp --dport 5:4", "-p udp -m udp --dport 5:4", None),
    ("-p udp --dport 1:2:3", "ERR", 'Too many components for option "--destination-port"'),
    ("-p udp --sport :", "-p udp -m udp", None),
    ('-p udp --sport ""', "-p udp -m udp --sport 0", None),
    ('-p udp --dport " 80"', "-p udp -m udp --dport 80", None),
    ("-p udp --dport -1", "ERR", 'Port "-1" does not resolve to anything.'),
    ("-p udp --dport 4294967297", "-p udp -m udp --dport 1", None),
    ("-p udp --sport 65536:65537", "-p udp -m udp --sport 0:1", None),
    ("-p udp --dport http", "-p udp -m udp --dport 80", None),
    ("-p udp --dport bogus", "ERR", 'Port "bogus" does not resolve to anything.'),
    ("-p udp --dport 1 --destination-port 2", "ERR",
     'udp: option "--destination-port" can only be used once.'),
    ("-p tcp --dport 1 --dport 2", "ERR", "Only one `--destination-port' allowed"),
]


@pytest.mark.parametrize("rule,saved,error", CASES)
def test_ports(rule, saved, error):
    text = f"*filter\n-A INPUT {rule}\nCOMMIT\n"
    if saved == "ERR":
        with pytest.raises(RulesetErrors) as info:
            nfemu.loads(text)
        assert error in info.value.errors[0].message
    else:
        rs = nfemu.loads(text)
        assert rs.table("filter").chain("INPUT").rules[0].save() == f"-A INPUT {saved}"
