"""A node's network configuration as the kernel sees it: interfaces, addresses, routing tables.

The packet pipeline asks this model the questions the kernel asks its FIB and its in_device
lists: where does a packet go (``route_lookup``), which type has an address (``addr_type``, for
``-m addrtype``), which source does a locally generated packet get (``select_source``), which
address do MASQUERADE and REDIRECT pick (``masquerade_source``, ``redirect_address``).

Three ways to build a :class:`Host`:

* ``Host.from_ip_json(addrs, routes)``: the output of ``ip -j addr show`` and
  ``ip -j route show table all`` (IPv6 entries are kept in the model, only IPv4 is queried).
  When the route dump holds no IPv4 ``local`` table (``ip -j route show`` without
  ``table all``), the kernel's local table is rebuilt from the addresses.
* ``Host.from_options(["eth0=192.168.0.2/24"], local_ips=[...], default_gateway=...)``: the CLI
  short form; the routes are the ones the kernel creates for those addresses (fib_add_ifaddr).
* Python: ``Host(interfaces=(...), routes=(...))``.

Verified against a real 6.x kernel (tests/test_host.py on recorded dumps,
tests/kernel/test_host_vs_kernel.py live): the routes fib_add_ifaddr creates (local /32 per
address with the primary as prefsrc, the subnet broadcast for prefixes shorter than /31, no
network-address broadcast, the connected route with prefsrc, a loopback prefix as a ``local``
route), the primary/secondary order of addresses, and ``ip route get`` answers (type, device,
gateway, source, errno) for output lookups (with ``from``/``oif``) and input lookups (``iif``).

Approximate or missing, said plainly:

* Policy routing is not modelled: ``ip rule`` is not read; the default rules are assumed
  (local and main merged into one trie, then table ``default``); other tables are kept but
  never consulted, so ``mark`` does not change the result.
* Multipath routes: only the first nexthop is used (no hash-based selection); ``nhid`` objects
  are not resolved. TOS/DSCP-keyed routes are not distinguished.
* rp_filter is taken as 0, accept_local 0, bc_forwarding 0, ignore_routes_with_linkdown 0;
  ``route_localnet`` and ``ip_forward`` are Host fields, each one switch for all devices.
* Multicast input: only 224.0.0.1 (all-hosts, joined on every device) is taken as joined;
  other groups are refused like a non-member's (no IGMP membership, no multicast routing).
* ``addr_type`` follows inet_dev_addr_type: 0.0.0.0/8 and 255.255.255.255 are BROADCAST (the
  kernel never answers UNSPEC for IPv4). Only checked against the source, since checking it
  live needs packets.
* IPv6 routes and addresses are parsed but no query answers for IPv6.
"""
from __future__ import annotations

import enum
import ipaddress
import json
import re
from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence

from .errors import Location, ParseError

__all__ = [
    "Scope", "RouteType", "AddrType", "IfAddr", "Interface", "Route", "RouteResult", "Host",
    "LOOPBACK", "ip4", "fmt4",
]

LOOPBACK = 0x7F000001
_LBCAST = 0xFFFFFFFF


class Scope(enum.IntEnum):
    """rtnetlink scopes (RT_SCOPE_*): a smaller number is a wider scope."""

    UNIVERSE = 0
    SITE = 200
    LINK = 253
    HOST = 254
    NOWHERE = 255

    @property
    def ip_name(self) -> str:
        return "global" if self is Scope.UNIVERSE else self.name.lower()


class RouteType(str, enum.Enum):
    """Route types (RTN_*), as ``ip route`` names them; also the answers of inet_addr_type."""

    UNSPEC = "unspec"
    UNICAST = "unicast"
    LOCAL = "local"
    BROADCAST = "broadcast"
    ANYCAST = "anycast"
    MULTICAST = "multicast"
    BLACKHOLE = "blackhole"
    UNREACHABLE = "unreachable"
    PROHIBIT = "prohibit"
    THROW = "throw"
    NAT = "nat"
    XRESOLVE = "xresolve"


AddrType = RouteType

# fib_props[type].error: the errno a lookup returns when it lands on such a route.
_TYPE_ERROR = {
    RouteType.BLACKHOLE: "EINVAL",
    RouteType.UNREACHABLE: "EHOSTUNREACH",
    RouteType.PROHIBIT: "EACCES",
    RouteType.THROW: "EAGAIN",
    RouteType.NAT: "EINVAL",
    RouteType.XRESOLVE: "EINVAL",
}

_SCOPE_NAMES = {"global": Scope.UNIVERSE, "universe": Scope.UNIVERSE, "site": Scope.SITE,
                "link": Scope.LINK, "host": Scope.HOST, "nowhere": Scope.NOWHERE}


def ip4(text: str) -> int:
    """A dotted quad as an int (raises ValueError)."""
    return int(ipaddress.IPv4Address(text))


def fmt4(value: int | None) -> str | None:
    return None if value is None else str(ipaddress.IPv4Address(value))


def _mask(prefixlen: int, width: int = 32) -> int:
    return ((1 << width) - 1) ^ ((1 << (width - prefixlen)) - 1)


def _is_multicast(a: int) -> bool:
    return (a & 0xF0000000) == 0xE0000000


def _is_zeronet(a: int) -> bool:
    return (a & 0xFF000000) == 0


def _is_loopback(a: int) -> bool:
    return (a & 0xFF000000) == 0x7F000000


@dataclass(frozen=True, slots=True)
class IfAddr:
    """One address of an interface (struct in_ifaddr / IFA_* attributes)."""

    family: str                 # "inet" or "inet6"
    addr: int                   # IFA_LOCAL
    prefixlen: int
    broadcast: int | None = None
    scope: Scope = Scope.UNIVERSE
    secondary: bool = False
    label: str | None = None

    @property
    def width(self) -> int:
        return 32 if self.family == "inet" else 128

    @property
    def network(self) -> int:
        return self.addr & _mask(self.prefixlen, self.width)

    def contains(self, other: int) -> bool:
        """inet_ifa_match(): same subnet as this address."""
        m = _mask(self.prefixlen, self.width)
        return (other & m) == (self.addr & m)

    def __str__(self) -> str:
        text = fmt4(self.addr) if self.family == "inet" else str(ipaddress.IPv6Address(self.addr))
        return f"{text}/{self.prefixlen}"


@dataclass(frozen=True, slots=True)
class Interface:
    """A network device with its addresses in the kernel's ifa_list order."""

    name: str
    index: int
    addresses: tuple[IfAddr, ...] = ()
    up: bool = True
    mac: int | None = None
    flags: tuple[str, ...] = ()

    @property
    def is_loopback(self) -> bool:
        return "LOOPBACK" in self.flags or self.name == "lo"

    def inet(self) -> tuple[IfAddr, ...]:
        return tuple(a for a in self.addresses if a.family == "inet")


@dataclass(frozen=True, slots=True)
class Route:
    """One route of one table (struct fib_alias + fib_info, first nexthop only)."""

    table: str                  # "main", "local", "default" or a number as text
    type: RouteType
    dst: int
    prefixlen: int
    dev: str | None = None
    gateway: int | None = None
    prefsrc: int | None = None
    scope: Scope = Scope.UNIVERSE
    metric: int = 0
    protocol: str = "boot"
    family: str = "inet"
    flags: tuple[str, ...] = ()

    def contains(self, addr: int) -> bool:
        m = _mask(self.prefixlen, 32 if self.family == "inet" else 128)
        return (addr & m) == self.dst

    def __str__(self) -> str:
        dst = "default" if self.prefixlen == 0 else (
            fmt4(self.dst) + ("" if self.prefixlen == 32 else f"/{self.prefixlen}"))
        out = [] if self.type is RouteType.UNICAST else [self.type.value]
        out.append(dst)
        if self.gateway is not None:
            out += ["via", fmt4(self.gateway)]
        if self.dev:
            out += ["dev", self.dev]
        if self.table != "main":
            out += ["table", self.table]
        if self.protocol != "boot":
            out += ["proto", self.protocol]
        if self.scope is not Scope.UNIVERSE:
            out += ["scope", self.scope.ip_name]
        if self.prefsrc is not None:
            out += ["src", fmt4(self.prefsrc)]
        if self.metric:
            out += ["metric", str(self.metric)]
        return " ".join(out)


@dataclass(frozen=True, slots=True)
class RouteResult:
    """The answer of a route lookup, as ``ip route get`` reports it.

    ``error`` is None on success, else the errno name the kernel returns (ENETUNREACH "Network
    is unreachable", EHOSTUNREACH "No route to host", EINVAL "Invalid argument" for blackhole
    routes and martians, EACCES "Permission denied" for prohibit); ``type`` is then the type of
    the route that refused (UNREACHABLE when no route matched)."""

    type: RouteType
    dev: str | None = None
    gateway: int | None = None
    prefsrc: int | None = None      # chosen source (output lookups); None for input lookups
    error: str | None = None
    route: Route | None = None
    reason: str = ""

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def local(self) -> bool:
        """Delivered to this host: a LOCAL result, or an input broadcast/multicast result."""
        return self.ok and (self.type is RouteType.LOCAL or self.dev == "lo")

    @property
    def nexthop(self) -> int | None:
        return self.gateway


#: route_lookup answers kept per Host (cleared when full)
_FIB_CACHE_MAX = 1 << 16


def _fail(type_: RouteType, error: str, reason: str, route: Route | None = None) -> RouteResult:
    return RouteResult(type=type_, error=error, reason=reason, route=route)


def _prepare(routes: Iterable[Route]) -> tuple[tuple, ...]:
    """A table's routes, in lookup order, as (mask, prefix, errno or None, device, route)
    for Host._table_lookup: ``dst & mask == prefix`` is Route.contains (IPv4 routes only
    reach the FIB)."""
    return tuple((_mask(r.prefixlen, 32 if r.family == "inet" else 128), r.dst,
                  _TYPE_ERROR.get(r.type), r.dev, r) for r in routes)


@dataclass(frozen=True)
class Host:
    """Interfaces, routing tables, ip_forward and route_localnet of one network namespace.

    ``route_localnet`` is ``net.ipv4.conf.all.route_localnet`` (kube-proxy sets it for
    NodePorts on 127.0.0.1): 127/8 sources and destinations are then routed like any other
    instead of being martians (ip_route_input_slow, __mkroute_output). The kernel ORs the
    ``all`` and per-device settings; nfemu models the one switch for every device."""

    interfaces: tuple[Interface, ...] = ()
    routes: tuple[Route, ...] = ()
    ip_forward: bool = True
    route_localnet: bool = False
    _by_name: dict = field(default=None, init=False, repr=False, compare=False)  # type: ignore
    _fib: tuple = field(default=None, init=False, repr=False, compare=False)     # type: ignore
    # derived once (a Host never changes: frozen, and every part of it frozen too): the
    # interface addresses, and the answers of route_lookup already given
    _ifaddrs: frozenset = field(default=None, init=False, repr=False, compare=False)  # type: ignore
    _fib_cache: dict = field(default=None, init=False, repr=False, compare=False)    # type: ignore

    def __post_init__(self) -> None:
        object.__setattr__(self, "interfaces", tuple(self.interfaces))
        object.__setattr__(self, "routes", tuple(self.routes))
        object.__setattr__(self, "_by_name", {i.name: i for i in self.interfaces})
        up = {i.name for i in self.interfaces if i.up}
        known = set(self._by_name)

        def alive(r: Route) -> bool:
            # Routes through an administratively down device are flushed by the kernel.
            return r.family == "inet" and (r.dev is None or r.dev not in known or r.dev in up)

        # Without custom rules the kernel keeps local and main merged in one trie; for one
        # prefix the local table's aliases come first (fib_find_alias orders by tb_id
        # descending), then by metric in insertion order.
        order = {"local": 0, "main": 1}
        merged = sorted((r for r in self.routes if r.table in order and alive(r)),
                        key=lambda r: (-r.prefixlen, order[r.table], r.metric))
        default = sorted((r for r in self.routes if r.table == "default" and alive(r)),
                         key=lambda r: (-r.prefixlen, r.metric))
        local = sorted((r for r in self.routes if r.table == "local" and alive(r)),
                       key=lambda r: (-r.prefixlen, r.metric))
        has_default = any(r.table == "default" for r in self.routes)
        object.__setattr__(self, "_ifaddrs", frozenset(a.addr for _, a in self._iface_addrs()))
        object.__setattr__(self, "_fib_cache", {})
        # each table as prepared aliases for _table_lookup: (mask, prefix, errno of the
        # route's type, device, route)
        object.__setattr__(self, "_fib", (_prepare(merged),
                                          _prepare(default) if has_default else None,
                                          _prepare(local)))

    # ------------------------------------------------------------------ access
    def interface(self, name: str) -> Interface:
        try:
            return self._by_name[name]
        except KeyError:
            raise KeyError(f"no interface {name!r}") from None

    def has_interface(self, name: str) -> bool:
        return name in self._by_name

    def table(self, name: str) -> tuple[Route, ...]:
        return tuple(r for r in self.routes if r.table == name)

    def _iface_addrs(self) -> Iterable[tuple[Interface, IfAddr]]:
        for iface in self.interfaces:
            for a in iface.inet():
                yield iface, a

    # ------------------------------------------------------------------ FIB
    @staticmethod
    def _table_lookup(routes: Sequence[tuple], dst: int, oif: str | None,
                      ) -> tuple[str | None, Route | None]:
        """fib_table_lookup(): longest prefix first; within a prefix the first alias in order
        whose nexthop is usable (and on ``oif`` when given); a route of an error type answers
        at once with its errno; nothing -> EAGAIN. ``routes``: a table as :func:`_prepare`
        gives it (``Route.contains`` with the mask computed once)."""
        for mask, prefix, err, dev, r in routes:
            if dst & mask != prefix:
                continue
            if err:
                return err, r
            if oif is not None and dev != oif:
                continue
            return None, r
        return "EAGAIN", None

    def _fib_lookup(self, dst: int, oif: str | None = None) -> tuple[str | None, Route | None]:
        """fib_lookup() with the default rules: the merged local+main trie, then table default
        (only when it exists) if that failed; EAGAIN (throw / no match) becomes ENETUNREACH."""
        merged, default, _ = self._fib
        err, route = self._table_lookup(merged, dst, oif)
        if err and default is not None:
            err, route = self._table_lookup(default, dst, oif)
        if err == "EAGAIN":
            err = "ENETUNREACH"
        return err, route

    def inet_select_addr(self, dev: str | None, dst: int, scope: Scope | int) -> int | None:
        """inet_select_addr(dev, dst, scope): the first primary address of ``dev`` whose scope
        is at least as wide as ``scope`` and whose subnet holds ``dst`` (any such address when
        ``dst`` is 0 or none matches); failing that, the first primary non-link-scope address
        in scope on any device, lo first (in_dev_select_addr). None when there is none."""
        scope = int(scope)
        if dev is not None and dev in self._by_name:
            addr = None
            for a in self._by_name[dev].inet():
                if a.secondary or min(int(a.scope), int(Scope.HOST)) > scope:
                    continue
                if not dst or a.contains(dst):
                    return a.addr
                if addr is None:
                    addr = a.addr
            if addr is not None:
                return addr
        for iface in sorted(self.interfaces, key=lambda i: i.index):
            for a in iface.inet():
                if a.secondary:
                    continue
                if a.scope != Scope.LINK and int(a.scope) <= scope:
                    return a.addr
        return None

    def _route_prefsrc(self, route: Route) -> int | None:
        """fib_result_prefsrc(): the route's prefsrc, else inet_select_addr(nexthop device,
        gateway, the route's own scope)."""
        if route.prefsrc is not None:
            return route.prefsrc
        return self.inet_select_addr(route.dev, route.gateway or 0, route.scope)

    def route_lookup(self, dst: int, src: int = 0, mark: int = 0, iif: str | None = None,
                     oif: str | None = None) -> RouteResult:
        """Route a packet to ``dst`` as the kernel does.

        Without ``iif`` (a locally generated packet) this mirrors ip_route_output_key_hash_rcu()
        (``ip route get DST [from SRC] [oif DEV]``): the chosen source is in ``prefsrc``.
        With ``iif`` (a packet arriving on that device) it mirrors ip_route_input_slow()
        (``ip route get DST from SRC iif DEV``): LOCAL means local delivery (dev "lo"),
        UNICAST means forwarding out of ``dev``. Lookups go through fib_lookup() with the
        default rules; ``mark`` is accepted for the day rules are modelled and ignored now.

        A Host never changes, so each answer is kept (keyed by all five arguments) and
        given again for the same question."""
        key = (dst, src, mark, iif, oif)
        cache = self._fib_cache
        result = cache.get(key)
        if result is not None:
            return result
        if iif is not None:
            result = self._route_input(dst, src, iif)
        else:
            result = self._route_output(dst, src, oif)
        if len(cache) >= _FIB_CACHE_MAX:
            cache.clear()
        cache[key] = result
        return result

    def _route_output(self, dst: int, src: int, oif: str | None) -> RouteResult:
        if oif is not None and oif not in self._by_name:
            return _fail(RouteType.UNREACHABLE, "ENODEV", f"no device {oif}")
        if src:
            if _is_multicast(src) or src == _LBCAST or _is_zeronet(src):
                return _fail(RouteType.UNSPEC, "EINVAL", "invalid source address")
            if oif is None and (_is_multicast(dst) or dst == _LBCAST):
                dev = self._dev_of_local(src)
                if dev is None:
                    return _fail(RouteType.UNREACHABLE, "ENETUNREACH", "source is not local")
                t = RouteType.MULTICAST if _is_multicast(dst) else RouteType.BROADCAST
                return RouteResult(type=t, dev=dev, prefsrc=src)
            if not self.is_local(src):
                return _fail(RouteType.UNREACHABLE, "ENETUNREACH", "source is not local")
        if oif is not None:
            local_mc = (dst & 0xFFFFFF00) == 0xE0000000
            if local_mc or dst == _LBCAST:
                saddr = src or self.inet_select_addr(oif, 0, Scope.LINK) or 0
                t = RouteType.MULTICAST if local_mc else RouteType.BROADCAST
                return RouteResult(type=t, dev=oif, prefsrc=saddr)
            if not src and _is_multicast(dst):
                src = self.inet_select_addr(oif, 0, Scope.UNIVERSE) or 0
        if not dst:
            saddr = src or LOOPBACK
            return RouteResult(type=RouteType.LOCAL, dev="lo", prefsrc=saddr)
        err, route = self._fib_lookup(dst, oif)
        if err:
            if oif is not None:
                # "Apparently, routing tables are wrong. Assume, that the destination is on link."
                saddr = src or self.inet_select_addr(oif, 0, Scope.LINK) or 0
                return self._mkroute_output(dst, saddr, RouteType.UNICAST, oif, None, None)
            rtype = route.type if route is not None and route.type is not RouteType.THROW \
                else RouteType.UNREACHABLE
            return _fail(rtype, err, "no route" if route is None else f"{route.type.value} route",
                         route)
        assert route is not None
        if route.type is RouteType.LOCAL:
            saddr = src or route.prefsrc or dst
            return RouteResult(type=RouteType.LOCAL, dev="lo", prefsrc=saddr, route=route)
        saddr = src or self._route_prefsrc(route) or 0
        return self._mkroute_output(dst, saddr, route.type, route.dev, route.gateway, route)

    def _mkroute_output(self, dst: int, saddr: int, rtype: RouteType, dev: str | None,
                        gw: int | None, route: Route | None) -> RouteResult:
        """__mkroute_output(): a loopback source may only leave through lo; 255.255.255.255 is
        BROADCAST and 224/4 MULTICAST whatever route carried them (the gateway is dropped for
        broadcasts and for multicast through a route shorter than /4)."""
        iface = self._by_name.get(dev) if dev else None
        if (not self.route_localnet and _is_loopback(saddr)
                and not (iface is not None and iface.is_loopback)):
            return _fail(RouteType.UNSPEC, "EINVAL", "loopback source leaving a non-loopback "
                         "device", route)
        if dst == _LBCAST:
            rtype = RouteType.BROADCAST
        elif _is_multicast(dst):
            rtype = RouteType.MULTICAST
        if rtype is RouteType.BROADCAST:
            gw = None
        elif rtype is RouteType.MULTICAST and (route is None or route.prefixlen < 4):
            gw = None
        return RouteResult(type=rtype, dev=dev, gateway=gw, prefsrc=saddr, route=route)

    def _dev_of_local(self, addr: int) -> str | None:
        """__ip_dev_find(): the device holding ``addr``, or the device of its local route."""
        for iface, a in self._iface_addrs():
            if a.addr == addr:
                return iface.name
        err, r = self._table_lookup(self._fib[2], addr, None)
        if not err and r is not None and r.type is RouteType.LOCAL:
            return r.dev
        return None

    def _is_ifaddr(self, addr: int) -> bool:
        return addr in self._ifaddrs

    def _route_input(self, dst: int, src: int, iif: str) -> RouteResult:
        if iif not in self._by_name:
            return _fail(RouteType.UNREACHABLE, "ENODEV", f"no device {iif}")
        if _is_multicast(src) or src == _LBCAST:
            return _fail(RouteType.UNSPEC, "EINVAL", "martian source")
        if _is_multicast(dst):
            if dst == 0xE0000001:
                return RouteResult(type=RouteType.MULTICAST, dev="lo")
            return _fail(RouteType.UNSPEC, "EINVAL", "not a member of the group")
        if dst == _LBCAST or (src == 0 and dst == 0):
            return self._brd_input(src)
        # 6.x takes 0.0.0.0/8 as ordinary unicast; only 0.0.0.0 itself is martian
        if src == 0:
            return _fail(RouteType.UNSPEC, "EINVAL", "martian source")
        if dst == 0:
            return _fail(RouteType.UNSPEC, "EINVAL", "martian destination")
        if _is_loopback(dst) and not self.route_localnet:
            return _fail(RouteType.UNSPEC, "EINVAL", "martian destination")
        if _is_loopback(src) and not self.route_localnet:
            return _fail(RouteType.UNSPEC, "EINVAL", "martian source")
        err, route = self._fib_lookup(dst)
        if err:
            if not self.ip_forward:
                err = "EHOSTUNREACH"
            return _fail(RouteType.UNREACHABLE, err,
                         "no route" if route is None else f"{route.type.value} route", route)
        assert route is not None
        if route.type is RouteType.BROADCAST:
            return self._brd_input(src, route)
        if route.type is RouteType.LOCAL:
            if self._is_ifaddr(src):
                return _fail(RouteType.UNSPEC, "EINVAL", "martian source (local address)", route)
            return RouteResult(type=RouteType.LOCAL, dev="lo", route=route)
        if not self.ip_forward:
            return _fail(RouteType.UNREACHABLE, "EHOSTUNREACH", "forwarding disabled", route)
        if route.type is not RouteType.UNICAST:
            return _fail(RouteType.UNSPEC, "EINVAL", "martian destination", route)
        if self._is_ifaddr(src):
            return _fail(RouteType.UNSPEC, "EINVAL", "martian source (local address)", route)
        return RouteResult(type=RouteType.UNICAST, dev=route.dev, gateway=route.gateway,
                           route=route)

    def _brd_input(self, src: int, route: Route | None = None) -> RouteResult:
        if src and self._is_ifaddr(src):
            return _fail(RouteType.UNSPEC, "EINVAL", "martian source (local address)", route)
        return RouteResult(type=RouteType.BROADCAST, dev="lo", route=route)

    # ------------------------------------------------------------------ addrtype & NAT
    def addr_type(self, addr: int, dev: str | None = None) -> RouteType:
        """inet_addr_type() / inet_dev_addr_type() (xt_addrtype, --limit-iface-in/out with
        ``dev``): 0.0.0.0/8 and 255.255.255.255 are BROADCAST, 224/4 MULTICAST; otherwise the
        type of the local table's longest match (only when that route is on ``dev``, if given),
        else UNICAST (a blackhole/unreachable/prohibit/throw route in the local table fails the
        lookup and so also answers UNICAST)."""
        if _is_zeronet(addr) or addr == _LBCAST:
            return RouteType.BROADCAST
        if _is_multicast(addr):
            return RouteType.MULTICAST
        err, route = self._table_lookup(self._fib[2], addr, None)
        if err or route is None:
            return RouteType.UNICAST
        if dev is None or route.dev == dev:
            return route.type
        return RouteType.UNICAST

    def is_local(self, addr: int) -> bool:
        """inet_addr_type(addr) == RTN_LOCAL: an interface address or inside a local route
        (all of 127.0.0.0/8)."""
        return self.addr_type(addr) is RouteType.LOCAL

    def select_source(self, dst: int, out_dev: str | None = None) -> int:
        """The source address the kernel gives a locally generated packet to ``dst``
        (ip_route_output_key_hash_rcu -> fib_result_prefsrc / inet_select_addr): the route's
        prefsrc, else the first primary address in scope on the output device (preferring the
        gateway's subnet), else one from any device; with ``out_dev`` the lookup is bound to
        that device (as a socket bound to it). 0 when the kernel would find no route."""
        r = self.route_lookup(dst, oif=out_dev)
        return r.prefsrc or 0 if r.ok else 0

    def masquerade_source(self, out_dev: str, nexthop: int) -> int | None:
        """nf_nat_masquerade_ipv4(): inet_select_addr(out, nexthop, RT_SCOPE_UNIVERSE) - the
        first primary global address of ``out_dev`` whose subnet holds the next hop, else its
        first primary global address, else (like the kernel) one of another device; None when
        there is none (the kernel drops: "... ate my IP address")."""
        return self.inet_select_addr(out_dev, nexthop, Scope.UNIVERSE)

    def redirect_address(self, in_dev: str | None) -> int | None:
        """nf_nat_redirect_ipv4(): 127.0.0.1 for locally generated packets (``in_dev`` None),
        else the first address of the incoming device's ifa_list (primary or not); None when it
        has none (the kernel drops)."""
        if in_dev is None:
            return LOOPBACK
        iface = self._by_name.get(in_dev)
        if iface is None:
            return None
        addrs = iface.inet()
        return addrs[0].addr if addrs else None

    # ------------------------------------------------------------------ readers
    @classmethod
    def from_ip_json(cls, addr_json_text: str, route_json_text: str, *,
                     addr_file: str = "<addrs>", route_file: str = "<routes>",
                     ip_forward: bool = True, route_localnet: bool = False) -> "Host":
        """Read ``ip -j addr show`` and ``ip -j route show table all`` output."""
        links = _load_json(addr_json_text, addr_file)
        routes_raw = _load_json(route_json_text, route_file)
        ifaces = tuple(_parse_link(x, f"[{i}]", addr_file) for i, x in
                       enumerate(_expect(links, list, "", addr_file)))
        routes = tuple(_parse_route(x, f"[{i}]", route_file) for i, x in
                       enumerate(_expect(routes_raw, list, "", route_file)))
        if not any(r.table == "local" and r.family == "inet" for r in routes):
            routes = _kernel_local_routes(ifaces) + routes
        return cls(ifaces, routes, ip_forward, route_localnet)

    @classmethod
    def from_files(cls, addrs_path: str, routes_path: str, ip_forward: bool = True,
                   route_localnet: bool = False) -> "Host":
        """``--addrs FILE --routes FILE``."""
        texts = []
        for p in (addrs_path, routes_path):
            try:
                with open(p, encoding="utf-8") as f:
                    texts.append(f.read())
            except (OSError, UnicodeDecodeError) as e:
                raise ParseError(f"cannot read: {e}", Location(p, 0, 0)) from None
        return cls.from_ip_json(texts[0], texts[1], addr_file=addrs_path, route_file=routes_path,
                                ip_forward=ip_forward, route_localnet=route_localnet)

    @classmethod
    def from_options(cls, ifaces: Sequence[str] = (), local_ips: Sequence[str] = (),
                     default_gateway: str | None = None, ip_forward: bool = True,
                     route_localnet: bool = False) -> "Host":
        """The CLI short form: ``--iface NAME=ADDR/LEN[,ADDR/LEN...]`` (repeatable; the same
        NAME may repeat to add addresses), ``--local-ip ADDR[/LEN]`` (an address on lo, /32 by
        default), ``--default-gateway ADDR``. Interfaces are up, lo (index 1) holds 127.0.0.1/8,
        and the routes are those the kernel creates for the addresses (fib_add_ifaddr)."""
        order: list[str] = ["lo"]
        addrs: dict[str, list[IfAddr]] = {"lo": []}
        _add_addr(addrs["lo"], IfAddr("inet", LOOPBACK, 8, None, Scope.HOST, False, "lo"), True)
        for opt in ifaces:
            name, sep, rest = opt.partition("=")
            if not sep or not re.fullmatch(r"[^\s/=:]{1,15}", name) or not rest:
                raise ParseError(f"bad --iface {opt!r}: expected NAME=ADDR/LEN",
                                 Location(f"--iface {opt}", 0, 0))
            if name not in addrs:
                order.append(name)
                addrs[name] = []
            for spec in rest.split(","):
                addr, plen = _parse_cidr(spec, f"--iface {opt}", need_len=True)
                scope = Scope.HOST if _is_loopback(addr) else Scope.UNIVERSE
                _add_addr(addrs[name], IfAddr("inet", addr, plen, None, scope, False, name),
                          name == "lo")
        for opt in local_ips:
            addr, plen = _parse_cidr(opt, f"--local-ip {opt}", need_len=False)
            scope = Scope.HOST if _is_loopback(addr) else Scope.UNIVERSE
            _add_addr(addrs["lo"], IfAddr("inet", addr, plen, None, scope, False, "lo"), True)
        interfaces = tuple(
            Interface(name, idx + 1, tuple(addrs[name]), True,
                      None if name == "lo" else 0x020000000000 + idx,
                      ("LOOPBACK", "UP", "LOWER_UP") if name == "lo"
                      else ("BROADCAST", "MULTICAST", "UP", "LOWER_UP"))
            for idx, name in enumerate(order))
        routes = list(_kernel_routes(interfaces))
        if default_gateway is not None:
            loc = Location(f"--default-gateway {default_gateway}", 0, 0)
            try:
                gw = ip4(default_gateway)
            except ValueError:
                raise ParseError(f"bad gateway address {default_gateway!r}", loc) from None
            dev = next((r.dev for r in sorted(routes, key=lambda r: -r.prefixlen)
                        if r.table == "main" and r.gateway is None and r.contains(gw)), None)
            if dev is None:
                raise ParseError(f"gateway {default_gateway} is not on any interface's subnet "
                                 "(the kernel answers: Nexthop has invalid gateway)", loc)
            routes.append(Route("main", RouteType.UNICAST, 0, 0, dev, gw, None, Scope.UNIVERSE,
                                0, "boot"))
        return cls(interfaces, tuple(routes), ip_forward, route_localnet)


# ---------------------------------------------------------------------- kernel-made routes
def _add_addr(lst: list[IfAddr], new: IfAddr, loopback: bool) -> None:
    """__inet_insert_ifa(): an address in the subnet (same mask) of an existing primary becomes
    secondary and goes last; a primary is inserted after the last primary of a scope at least
    as narrow as its own."""
    del loopback
    secondary = False
    last_primary = 0
    for i, old in enumerate(lst):
        if not old.secondary and new.scope <= old.scope:
            last_primary = i + 1
        if old.prefixlen == new.prefixlen and old.contains(new.addr):
            if old.addr == new.addr:
                return
            secondary = True
    if secondary:
        lst.append(IfAddr(new.family, new.addr, new.prefixlen, new.broadcast, new.scope, True,
                          new.label))
    else:
        lst.insert(last_primary, new)


def _kernel_routes(interfaces: Sequence[Interface]) -> Iterable[Route]:
    """fib_add_ifaddr() for every IPv4 address, as the kernel runs it."""
    for iface in interfaces:
        prims = [a for a in iface.inet() if not a.secondary]
        for a in iface.inet():
            prim = a
            if a.secondary:
                prim = next((p for p in prims if p.prefixlen == a.prefixlen and p.contains(a.addr)),
                            a)
            src = prim.addr
            yield Route("local", RouteType.LOCAL, a.addr, 32, iface.name, None, src, Scope.HOST,
                        0, "kernel")
            if a.broadcast and a.broadcast != _LBCAST:
                yield Route("local", RouteType.BROADCAST, a.broadcast, 32, iface.name, None, src,
                            Scope.LINK, 0, "kernel")
            net = a.network
            if not _is_zeronet(net) and not a.secondary and (net != a.addr or a.prefixlen < 32):
                if iface.is_loopback:
                    yield Route("local", RouteType.LOCAL, net, a.prefixlen, iface.name, None,
                                src, Scope.HOST, 0, "kernel")
                else:
                    yield Route("main", RouteType.UNICAST, net, a.prefixlen, iface.name, None,
                                src, Scope.LINK, 0, "kernel")
                if a.prefixlen < 31:
                    bcast = net | (~_mask(a.prefixlen) & 0xFFFFFFFF)
                    if bcast != a.broadcast:
                        yield Route("local", RouteType.BROADCAST, bcast, 32, iface.name, None,
                                    src, Scope.LINK, 0, "kernel")


def _kernel_local_routes(interfaces: Sequence[Interface]) -> tuple[Route, ...]:
    return tuple(r for r in _kernel_routes(interfaces) if r.table == "local")


# ---------------------------------------------------------------------- JSON readers
def _load_json(text: str, file: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise ParseError(f"not valid JSON: {e.msg}", Location(file, e.lineno, e.colno)) from None


def _expect(value: Any, typ: type | tuple, path: str, file: str) -> Any:
    if not isinstance(value, typ) or (typ is int and isinstance(value, bool)):
        want = typ.__name__ if isinstance(typ, type) else "/".join(t.__name__ for t in typ)
        raise ParseError(f"{path or 'top level'}: expected {want}, got {type(value).__name__}"
                         f" {json.dumps(value)[:40]}", Location(file, 1, 1))
    return value


def _get(obj: dict, key: str, typ: type | tuple, path: str, file: str, default: Any = None) -> Any:
    if key not in obj or obj[key] is None:
        return default
    return _expect(obj[key], typ, f"{path}.{key}", file)


def _bad(msg: str, path: str, file: str) -> ParseError:
    return ParseError(f"{path}: {msg}", Location(file, 1, 1))


def _addr(text: str, family: str, path: str, file: str) -> int:
    try:
        if family == "inet":
            return int(ipaddress.IPv4Address(text))
        return int(ipaddress.IPv6Address(text.split("%")[0]))
    except ValueError:
        raise _bad(f"bad {family} address {text!r}", path, file) from None


def _scope(value: Any, path: str, file: str) -> Scope:
    if isinstance(value, int) and not isinstance(value, bool):
        try:
            return Scope(value)
        except ValueError:
            raise _bad(f"unknown scope {value}", path, file) from None
    if isinstance(value, str):
        if value in _SCOPE_NAMES:
            return _SCOPE_NAMES[value]
        if value.isdigit() and int(value) in Scope._value2member_map_:
            return Scope(int(value))
    raise _bad(f"unknown scope {value!r}", path, file)


def _parse_mac(text: str | None) -> int | None:
    if text and re.fullmatch(r"[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}", text):
        return int(text.replace(":", ""), 16)
    return None


def _parse_link(obj: Any, path: str, file: str) -> Interface:
    obj = _expect(obj, dict, path, file)
    name = _get(obj, "ifname", str, path, file)
    if name is None:
        raise _bad("missing ifname", path, file)
    index = _get(obj, "ifindex", int, path, file, 0)
    flags = tuple(_expect(f, str, f"{path}.flags", file)
                  for f in _get(obj, "flags", list, path, file, []))
    mac = _parse_mac(_get(obj, "address", str, path, file))
    addrs: list[IfAddr] = []
    for j, ai in enumerate(_get(obj, "addr_info", list, path, file, [])):
        p = f"{path}.addr_info[{j}]"
        ai = _expect(ai, dict, p, file)
        family = _get(ai, "family", str, p, file)
        if family not in ("inet", "inet6"):
            continue                        # ip prints only these; keep going on others
        local = _get(ai, "local", str, p, file)
        if local is None:
            continue
        plen = _get(ai, "prefixlen", int, p, file, 32 if family == "inet" else 128)
        if not 0 <= plen <= (32 if family == "inet" else 128):
            raise _bad(f"bad prefixlen {plen}", p, file)
        brd = _get(ai, "broadcast", str, p, file)
        addrs.append(IfAddr(
            family, _addr(local, family, f"{p}.local", file), plen,
            _addr(brd, family, f"{p}.broadcast", file) if brd else None,
            _scope(ai.get("scope", "global"), f"{p}.scope", file),
            bool(_get(ai, "secondary", bool, p, file, False)),
            _get(ai, "label", str, p, file)))
    return Interface(name, index, tuple(addrs), "UP" in flags, mac, flags)


def _parse_route(obj: Any, path: str, file: str) -> Route:
    obj = _expect(obj, dict, path, file)
    dst_text = _get(obj, "dst", str, path, file)
    if dst_text is None:
        raise _bad("missing dst", path, file)
    gw_text = _get(obj, "gateway", str, path, file)
    src_text = _get(obj, "prefsrc", str, path, file)
    nexthops = _get(obj, "nexthops", list, path, file, [])
    dev = _get(obj, "dev", str, path, file)
    if nexthops:                            # multipath: first nexthop only
        nh = _expect(nexthops[0], dict, f"{path}.nexthops[0]", file)
        gw_text = gw_text or _get(nh, "gateway", str, f"{path}.nexthops[0]", file)
        dev = dev or _get(nh, "dev", str, f"{path}.nexthops[0]", file)
    six = "pref" in obj or any(":" in t for t in (dst_text, gw_text or "", src_text or ""))
    family = "inet6" if six else "inet"
    width = 128 if six else 32
    if dst_text == "default":
        dst, plen = 0, 0
    else:
        a, _, l = dst_text.partition("/")
        dst = _addr(a, family, f"{path}.dst", file)
        if l and not l.isdigit():
            raise _bad(f"bad prefix length in {dst_text!r}", f"{path}.dst", file)
        plen = int(l) if l else width
        if plen > width:
            raise _bad(f"bad prefix length in {dst_text!r}", f"{path}.dst", file)
        dst &= _mask(plen, width)
    type_text = _get(obj, "type", str, path, file, "unicast")
    try:
        rtype = RouteType(type_text)
    except ValueError:
        raise _bad(f"unknown route type {type_text!r}", f"{path}.type", file) from None
    table = _get(obj, "table", (str, int), path, file, "main")
    table = {"254": "main", "255": "local", "253": "default"}.get(str(table), str(table))
    metric = _get(obj, "metric", int, path, file, 0)
    gateway = _addr(gw_text, family, f"{path}.gateway", file) if gw_text else None
    if gw_text and ":" in gw_text and family == "inet":
        gateway = None                      # IPv4 route via an IPv6 nexthop: not modelled
    return Route(
        table, rtype, dst, plen, dev, gateway,
        _addr(src_text, family, f"{path}.prefsrc", file) if src_text else None,
        _scope(obj.get("scope", "global"), f"{path}.scope", file), metric,
        str(_get(obj, "protocol", (str, int), path, file, "boot")), family,
        tuple(str(f) for f in _get(obj, "flags", list, path, file, [])))


def _parse_cidr(spec: str, where: str, need_len: bool) -> tuple[int, int]:
    loc = Location(where, 0, 0)
    a, slash, l = spec.strip().partition("/")
    try:
        addr = ip4(a)
    except ValueError:
        raise ParseError(f"bad IPv4 address {a!r} in {where!r}", loc) from None
    if not slash:
        if need_len:
            raise ParseError(f"missing /prefix length in {where!r} (e.g. 192.168.0.2/24)", loc)
        return addr, 32
    if not l.isdigit() or not 0 <= int(l) <= 32:
        raise ParseError(f"bad prefix length {l!r} in {where!r}", loc)
    return addr, int(l)
