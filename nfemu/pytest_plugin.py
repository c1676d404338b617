"""nfemu's pytest plugin (entry point ``pytest11``): the ``nfemu_node`` fixture factory and
assertions whose failure messages show the trace.

Installed with nfemu, pytest loads it at the start of every run (``-p nfemu.pytest_plugin``
loads it explicitly, ``-p no:nfemu`` turns it off). It therefore imports nothing of nfemu
at module level: the fixture and the assertions import nfemu/assertions.py (and through
it the engine) when first used.

    def test_ssh_is_dropped(nfemu_node):
        node = nfemu_node("rules.v4", iface=["eth0=192.168.0.2/24"])
        assert_dropped(node, "-p tcp -s 192.168.0.9 -d 192.168.0.2 --dport 22 -i eth0")

The assertions (``assert_reaches``, ``assert_dropped``, ``assert_rejected``,
``assert_accepted``, ``assert_delivered``, ``assert_masqueraded``, ``assert_path``) are
plain functions of nfemu/assertions.py, importable from either module; docs/pytest.md
describes them.
"""
from __future__ import annotations

import sys

import pytest

_ENTRY_POINT = "nfemu"      # its name in pyproject.toml's [project.entry-points.pytest11]
_EXPORTS = ("assert_reaches", "assert_dropped", "assert_rejected", "assert_accepted",
            "assert_delivered", "assert_masqueraded", "assert_path", "make_node",
            "parse_packet", "outcome_destination", "chains_visited", "format_journey")

__all__ = ["nfemu_node", *_EXPORTS]


@pytest.fixture(scope="session")
def nfemu_node():
    """A factory of :class:`nfemu.node.Node` (:func:`nfemu.assertions.make_node`):
    ``nfemu_node(rules, iface=[...], default_gateway=..., addrs=PATH, routes=PATH, seed=0)``
    from iptables-save text or a file, or ``nfemu_node(kube=MANIFESTS_OR_CLUSTER,
    node="node-1", ...)`` from Kubernetes objects through nfemu.kube. Each call gives a new
    node that shares nothing with the others. (The factory keeps no state, so the fixture
    is session-scoped: hypothesis's ``@given`` tests may use it.)"""
    from nfemu.assertions import make_node
    return make_node


def pytest_addhooks(pluginmanager):
    """Called as the plugin is registered. The module has two names: the ``pytest11`` entry
    point's (``nfemu``, autoloaded) and its own (``-p nfemu.pytest_plugin``,
    ``pytest_plugins = ["nfemu.pytest_plugin"]``). Loaded under one while the other is in
    use too, pluggy would refuse to register the same module again ("Plugin already
    registered under a different name") and pytest would not start: block the other name,
    the module is in already."""
    try:
        module = sys.modules.get(__name__)
        name = pluginmanager.get_name(module) if module is not None else None
        if name is None:
            return
        for other in (_ENTRY_POINT, __name__):
            if (other != name and not pluginmanager.has_plugin(other)
                    and not pluginmanager.is_blocked(other)):
                pluginmanager.set_blocked(other)
    except Exception:   # noqa: BLE001 - never keep pytest from starting
        pass


def __getattr__(name: str):
    # the assertions, re-exported without importing them when pytest loads the plugin
    if name in _EXPORTS:
        from nfemu import assertions
        return getattr(assertions, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
