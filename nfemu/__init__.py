"""nfemu: an offline emulator of Linux netfilter (iptables).

    >>> import nfemu
    >>> rs = nfemu.loads("*filter\\n:INPUT DROP [0:0]\\n-A INPUT -p tcp --dport 22 -j ACCEPT\\nCOMMIT\\n")
    >>> print(rs.save(header=False), end="")
    *filter
    :INPUT DROP [0:0]
    :FORWARD ACCEPT [0:0]
    :OUTPUT ACCEPT [0:0]
    -A INPUT -p tcp -m tcp --dport 22 -j ACCEPT
    COMMIT
"""
import os as _os

if _os.environ.get("NFEMU_PURE_PYTHON") == "1":
    from ._purepython import install as _install_pure_python

    _install_pure_python()

from . import errors

# The public names are imported when first used (PEP 562): nfemu's pytest plugin makes
# pytest import this package at the start of every run, which should not cost the parser,
# the extensions and the engine (about 0.2 s) when no test uses them.
_LAZY = {"load": "parse", "loads": "parse",
         "Ruleset": "ir", "Table": "ir", "Chain": "ir", "Rule": "ir", "Counters": "ir",
         "Family": "ir", "Node": "node", "Outcome": "node", "Host": "host",
         "Packet": "packet", "Trace": "pipeline"}

__all__ = ["load", "loads", "errors", "Ruleset", "Table", "Chain", "Rule", "Counters", "Family",
           "Node", "Host", "Packet", "Trace", "Outcome"]
__version__ = "0.1.0"


def compiled() -> bool:
    """True when the per-packet modules run compiled (Cython, built by ``pip install .``
    from the same sources; see setup.py), False when their pure-Python twins run."""
    from . import walk
    return not walk.__file__.endswith(".py")


def __getattr__(name: str):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
