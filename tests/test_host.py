"""nfemu.host against answers a real 6.x kernel gave (tests/fixtures/host, recorded by
``python3 -m tests.kernel.test_host_vs_kernel --record``)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from nfemu.errors import ParseError
from nfemu.host import Host, RouteType, Scope, fmt4, ip4
from tests.kernel.test_host_vs_kernel import OPTIONS_ARGS, SCENARIOS, nfemu_route_get

FIX = Path(__file__).resolve().parent / "fixtures" / "host"


def load(name: str) -> Host:
    q = json.loads((FIX / f"{name}.queries.json").read_text())
    return Host.from_ip_json((FIX / f"{name}.addrs.json").read_text(),
                             (FIX / f"{name}.routes.json").read_text(),
                             addr_file=f"{name}.addrs.json", route_file=f"{name}.routes.json",
                             ip_forward=q["ip_forward"])


def recorded(name: str) -> list[dict]:
    return json.loads((FIX / f"{name}.queries.json").read_text())["answers"]


CASES = [(name, i) for name in sorted(SCENARIOS) for i in range(len(recorded(name)))]


@pytest.mark.parametrize("name,i", CASES)
def test_route_get_as_recorded(name, i):
    case = recorded(name)[i]
    assert nfemu_route_get(load(name), case["query"]) == case["answer"], case["query"]


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_addr_type_from_local_table(name):
    host = load(name)
    other = "eth0" if name != "basic" else "eth3"
    for line in (FIX / f"{name}.local.txt").read_text().splitlines():
        words = line.split()
        kind, dst, dev = words[0], words[1], words[words.index("dev") + 1]
        if "/" in dst:
            continue
        a = ip4(dst)
        want = RouteType(kind)
        if a == 0xFFFFFFFF:
            continue
        assert host.addr_type(a) is want, line
        assert host.addr_type(a, dev) is want, line
        if dev != other:
            assert host.addr_type(a, other) is RouteType.UNICAST, line
        assert host.is_local(a) == (want is RouteType.LOCAL)


def test_addr_type_specials():
    host = load("basic")
    assert host.addr_type(ip4("127.3.4.5")) is RouteType.LOCAL
    assert host.addr_type(ip4("127.3.4.5"), "lo") is RouteType.LOCAL
    assert host.addr_type(ip4("127.3.4.5"), "eth0") is RouteType.UNICAST
    assert host.addr_type(ip4("10.50.33.1")) is RouteType.LOCAL      # local 10.50.0.0/16
    assert host.addr_type(ip4("8.8.8.8")) is RouteType.UNICAST
    assert host.addr_type(ip4("10.99.1.1")) is RouteType.UNICAST     # blackhole is in main
    assert host.addr_type(ip4("224.0.0.1")) is RouteType.MULTICAST
    assert host.addr_type(ip4("239.255.255.250")) is RouteType.MULTICAST
    # inet_dev_addr_type: 0.0.0.0/8 and the limited broadcast are BROADCAST
    assert host.addr_type(0) is RouteType.BROADCAST
    assert host.addr_type(ip4("0.1.2.3")) is RouteType.BROADCAST
    assert host.addr_type(ip4("255.255.255.255")) is RouteType.BROADCAST
    assert host.addr_type(ip4("192.168.0.255"), "eth0") is RouteType.BROADCAST
    assert host.addr_type(ip4("192.168.0.0")) is RouteType.UNICAST   # 6.x: no network broadcast


def test_parsed_model():
    host = load("basic")
    eth0 = host.interface("eth0")
    assert eth0.up and eth0.mac is not None and eth0.index > 1
    assert [(str(a), a.secondary) for a in eth0.inet()] == [
        ("192.168.0.2/24", False), ("192.168.7.9/24", False), ("192.168.0.3/24", True)]
    assert host.interface("eth2").inet()[0].scope is Scope.LINK
    assert any(a.family == "inet6" for a in host.interface("lo").addresses)
    assert any(r.family == "inet6" for r in host.routes)
    assert {r.type for r in host.routes if r.family == "inet"} >= {
        RouteType.UNICAST, RouteType.LOCAL, RouteType.BROADCAST, RouteType.BLACKHOLE,
        RouteType.UNREACHABLE, RouteType.PROHIBIT, RouteType.THROW}
    default = next(r for r in host.table("main") if r.prefixlen == 0 and r.family == "inet")
    assert (fmt4(default.gateway), default.dev) == ("192.168.0.1", "eth0")


def test_select_source():
    host = load("basic")
    assert fmt4(host.select_source(ip4("8.8.8.8"))) == "192.168.0.2"
    assert fmt4(host.select_source(ip4("198.18.1.1"))) == "10.0.9.9"          # route's src
    assert fmt4(host.select_source(ip4("203.0.113.9"))) == "10.0.9.9"         # link-scope skipped
    assert fmt4(host.select_source(ip4("192.168.0.3"))) == "192.168.0.2"      # local: prefsrc
    assert fmt4(host.select_source(ip4("127.0.0.7"))) == "127.0.0.1"
    assert fmt4(host.select_source(ip4("10.0.77.1"), "eth0")) == "192.168.0.2"  # on-link
    assert host.select_source(ip4("10.99.0.1")) == 0                          # blackhole


def test_masquerade_source():
    host = load("basic")
    # inet_select_addr(out, nexthop, RT_SCOPE_UNIVERSE)
    assert fmt4(host.masquerade_source("eth0", ip4("192.168.0.1"))) == "192.168.0.2"
    assert fmt4(host.masquerade_source("eth0", ip4("192.168.7.1"))) == "192.168.7.9"
    assert fmt4(host.masquerade_source("eth0", ip4("8.8.8.8"))) == "192.168.0.2"
    assert fmt4(host.masquerade_source("eth1", ip4("10.0.0.1"))) == "10.0.0.5"
    # eth2 has only a link-scope address: the kernel falls back to lo's global 10.0.9.9
    assert fmt4(host.masquerade_source("eth2", ip4("169.254.0.1"))) == "10.0.9.9"
    bare = Host.from_options(["eth0=169.254.0.2/16"])
    assert bare.masquerade_source("eth0", ip4("169.254.0.1")) == ip4("169.254.0.2")
    none = Host.from_ip_json('[{"ifindex":1,"ifname":"lo","flags":["LOOPBACK","UP"],'
                             '"addr_info":[{"family":"inet","local":"127.0.0.1","prefixlen":8,'
                             '"scope":"host"}]},{"ifindex":2,"ifname":"eth0","flags":["UP"],'
                             '"addr_info":[]}]', "[]")
    assert none.masquerade_source("eth0", ip4("10.0.0.1")) is None


def test_redirect_address():
    host = load("basic")
    assert fmt4(host.redirect_address(None)) == "127.0.0.1"
    assert fmt4(host.redirect_address("eth0")) == "192.168.0.2"
    assert fmt4(host.redirect_address("eth2")) == "169.254.1.1"
    assert host.redirect_address("eth3") is None


def test_from_options_matches_recorded_kernel():
    real = load("options")
    built = Host.from_options(**OPTIONS_ARGS)
    routes = lambda h: {str(r) for r in h.routes if r.family == "inet"}  # noqa: E731
    assert routes(built) == routes(real)
    for iface in built.interfaces:
        assert iface.inet() == real.interface(iface.name).inet()
    for case in recorded("options"):
        assert nfemu_route_get(built, case["query"]) == case["answer"]


def test_from_options_routes():
    h = Host.from_options(["eth0=192.168.0.2/24"])
    assert {str(r) for r in h.routes} == {
        "192.168.0.0/24 dev eth0 proto kernel scope link src 192.168.0.2",
        "local 192.168.0.2 dev eth0 table local proto kernel scope host src 192.168.0.2",
        "broadcast 192.168.0.255 dev eth0 table local proto kernel scope link src 192.168.0.2",
        "local 127.0.0.0/8 dev lo table local proto kernel scope host src 127.0.0.1",
        "local 127.0.0.1 dev lo table local proto kernel scope host src 127.0.0.1",
        "broadcast 127.255.255.255 dev lo table local proto kernel scope link src 127.0.0.1",
    }
    assert h.ip_forward
    r = h.route_lookup(ip4("8.8.8.8"))
    assert r.error == "ENETUNREACH" and r.type is RouteType.UNREACHABLE
    fwd = h.route_lookup(ip4("192.168.0.9"), src=ip4("192.168.0.8"), iif="eth0")
    assert fwd.ok and fwd.type is RouteType.UNICAST and fwd.dev == "eth0"
    inp = h.route_lookup(ip4("192.168.0.2"), src=ip4("192.168.0.8"), iif="eth0")
    assert inp.local and inp.dev == "lo"


def test_routes_only_main_rebuilds_local_table():
    addrs = (FIX / "basic.addrs.json").read_text()
    main_only = json.dumps([r for r in json.loads((FIX / "basic.routes.json").read_text())
                            if r.get("table", "main") == "main"])
    h = Host.from_ip_json(addrs, main_only)
    full = load("basic")
    assert {str(r) for r in h.table("local") if r.family == "inet"} == {
        str(r) for r in full.table("local") if r.family == "inet"}


@pytest.mark.parametrize("text,where", [
    ('[{"ifname": "eth0",\n "addr_info": [}', (2, 16)),
    ("", (1, 1)),
])
def test_bad_json_has_line_and_column(text, where):
    with pytest.raises(ParseError) as e:
        Host.from_ip_json(text, "[]", addr_file="a.json")
    assert (e.value.file, e.value.line, e.value.column) == ("a.json", *where)
    assert e.value.format().startswith(f"a.json:{where[0]}:{where[1]}: error: ")


@pytest.mark.parametrize("routes", [
    '{"dst": "default"}', '[{"dst": 5}]', '[{"dst": "10.0.0.0/33"}]', '[{"dst": "x.y"}]',
    '[{"dst": "default", "type": "bogus"}]', '[{"dst": "default", "metric": "1"}]',
    '[{"dst": "default", "scope": "galaxy"}]', '[{"gateway": "1.2.3.4"}]',
])
def test_bad_route_fields(routes):
    with pytest.raises(ParseError) as e:
        Host.from_ip_json("[]", routes, route_file="r.json")
    assert e.value.file == "r.json"


@pytest.mark.parametrize("addrs", [
    '[{"ifname": 3}]', '[{"ifname": "eth0", "addr_info": [{"family": "inet", "local": 1}]}]',
    '[{"ifname": "eth0", "addr_info": [{"family": "inet", "local": "1.2.3"}]}]',
    '[{"ifname": "eth0", "addr_info": [{"family": "inet", "local": "1.2.3.4", '
    '"prefixlen": 40}]}]', '[{"ifindex": 1}]', '[[]]',
])
def test_bad_addr_fields(addrs):
    with pytest.raises(ParseError) as e:
        Host.from_ip_json(addrs, "[]", addr_file="a.json")
    assert e.value.file == "a.json"


@pytest.mark.parametrize("opt", ["eth0", "eth0=", "=1.2.3.4/24", "eth0=1.2.3.4",
                                 "eth0=1.2.3.4/33", "eth0=1.2.3/24", "eth0=1.2.3.4/x",
                                 "a very long name=1.2.3.4/24"])
def test_bad_iface_option(opt):
    with pytest.raises(ParseError) as e:
        Host.from_options([opt])
    assert opt in e.value.file


def test_bad_local_ip_and_gateway():
    with pytest.raises(ParseError) as e:
        Host.from_options(local_ips=["1.2.3.400"])
    assert "--local-ip 1.2.3.400" in e.value.file
    with pytest.raises(ParseError):
        Host.from_options(["eth0=10.0.0.2/24"], default_gateway="10.9.9.9")
    with pytest.raises(ParseError):
        Host.from_options(["eth0=10.0.0.2/24"], default_gateway="nope")


def test_frozen():
    h = Host.from_options(["eth0=10.0.0.2/24"])
    with pytest.raises(Exception):
        h.ip_forward = False  # type: ignore[misc]
    with pytest.raises(Exception):
        h.interfaces[0].name = "x"  # type: ignore[misc]
