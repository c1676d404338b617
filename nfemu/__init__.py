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
from .ir import Chain, Counters, Family, Rule, Ruleset, Table
from .parse import load, loads
from .host import Host
from .packet import Packet
from .node import Node, Outcome
from .pipeline import Trace

__all__ = ["load", "loads", "errors", "Ruleset", "Table", "Chain", "Rule", "Counters", "Family",
           "Node", "Host", "Packet", "Trace", "Outcome"]
__version__ = "0.1.0"


def compiled() -> bool:
    """True when the per-packet modules run compiled (Cython, built by ``pip install .``
    from the same sources; see setup.py), False when their pure-Python twins run."""
    from . import walk
    return not walk.__file__.endswith(".py")
