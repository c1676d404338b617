"""The extension registry: one module per iptables extension.

Adding an extension means writing ``nfemu/ext/NAME.py`` with a ``SPEC`` (see ``base.py``) and
adding its name to ``_MODULES`` below.
"""
from __future__ import annotations

import importlib

from .base import ExtSpec

_MODULES = (
    # matches
    "comment", "tcp", "udp", "sctp", "icmp", "icmp6", "multiport", "addrtype", "mark",
    "conntrack", "state", "statistic", "recent", "iprange", "length", "limit", "owner",
    "set", "physdev", "mac", "pkttype", "nfacct", "connmark",
    # beyond the first catalog, met in real rulesets
    "ttl", "tos", "dscp", "ecn", "string", "policy", "hashlimit", "connlimit", "cgroup",
    "u32", "time", "tcpmss", "socket", "rpfilter", "quota", "helper", "esp", "ah",
    "devgroup", "cpu",
    # targets
    "standard", "REJECT", "NAT", "MASQUERADE", "REDIRECT", "NETMAP", "MARK", "CONNMARK",
    "LOG", "NFLOG", "CT",
    "NFQUEUE", "TOS", "TTL", "TPROXY", "TCPMSS", "DSCP", "TRACE", "CLASSIFY", "CHECKSUM",
    "AUDIT", "QUEUE",
)

MATCHES: dict[str, ExtSpec] = {}
TARGETS: dict[str, ExtSpec] = {}


def _register() -> None:
    for module_name in _MODULES:
        try:
            module = importlib.import_module(f"{__name__}.{module_name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"{__name__}.{module_name}":
                continue  # not written yet
            raise
        specs = module.SPECS if hasattr(module, "SPECS") else (module.SPEC,)
        for spec in specs:
            table = MATCHES if spec.kind == "match" else TARGETS
            for name in (spec.name, *spec.aliases):
                table[name] = spec


_register()
