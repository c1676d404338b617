"""Which twin of the per-packet modules runs: compiled (Cython, from the same sources) or
pure Python. CI runs the whole suite once each way (README's test command) and sets
NFEMU_REQUIRE_COMPILED=1, so a build that silently fell back to pure Python fails there."""
from __future__ import annotations

import os

import nfemu
from nfemu import compile as compiled_rules
from nfemu import conntrack, packet, pipeline, walk


def test_the_twin_in_use_is_the_one_asked_for():
    modules = (walk, pipeline, conntrack, packet, compiled_rules)
    kinds = {m.__name__: not m.__file__.endswith(".py") for m in modules}
    if os.environ.get("NFEMU_PURE_PYTHON") == "1":
        assert not any(kinds.values()), kinds
        assert not nfemu.compiled()
    elif os.environ.get("NFEMU_REQUIRE_COMPILED") == "1":
        assert all(kinds.values()), kinds
        assert nfemu.compiled()
    else:
        # a checkout without a build: all pure; after `pip install -e .`: all compiled
        assert len(set(kinds.values())) == 1, kinds
