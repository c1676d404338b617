"""The optional compiled hot path: the per-packet modules compiled by Cython from the very
same .py files (Cython's pure-Python mode), so the compiled modules and their pure-Python
twins cannot disagree in what they say, only in speed.

``pip install .`` builds them when Cython and a C compiler are at hand and installs the pure
Python package when not (a warning says why); ``NFEMU_PURE_PYTHON=1`` at install time skips
the build, and at run time makes nfemu import the .py twins even when the compiled modules
are installed (nfemu/_purepython.py). Everything else about the package is in
pyproject.toml.
"""
from __future__ import annotations

import os
import sys

from setuptools import setup
from setuptools.command.build_ext import build_ext

#: the modules on the per-packet path (reading captures, packets, routing, conntrack, NAT,
#: the compiled rules and their walk, the pipeline)
HOT_MODULES = [
    "nfemu/pcapio.py", "nfemu/packet.py", "nfemu/host.py", "nfemu/engine.py",
    "nfemu/compile.py", "nfemu/walk.py", "nfemu/pipeline.py", "nfemu/conntrack.py",
    "nfemu/natmanip.py", "nfemu/ext/NAT.py", "nfemu/node.py", "nfemu/replay.py",
]
DIRECTIVES = {
    "language_level": 3,
    "annotation_typing": False,     # annotations stay documentation, as in Python
    "binding": True,                # compiled functions behave like Python functions
}


class OptionalBuildExt(build_ext):
    """build_ext that compiles on every core and falls back to the pure-Python package when
    compiling fails."""

    def finalize_options(self):
        super().finalize_options()
        if not self.parallel:
            self.parallel = os.cpu_count() or 1

    def run(self):
        try:
            super().run()
        except Exception as exc:  # noqa: BLE001 - any build failure means "pure Python"
            _fallback(exc)

    def build_extension(self, ext):
        try:
            super().build_extension(ext)
        except Exception as exc:  # noqa: BLE001
            _fallback(exc)


def _fallback(exc: Exception) -> None:
    print(f"nfemu: the compiled hot path was not built ({exc}); installing pure Python",
          file=sys.stderr)


def extensions():
    if os.environ.get("NFEMU_PURE_PYTHON") == "1":
        return []
    try:
        from Cython.Build import cythonize
    except ImportError:
        print("nfemu: Cython is not available; installing pure Python", file=sys.stderr)
        return []
    try:
        return cythonize(HOT_MODULES, compiler_directives=DIRECTIVES, quiet=True)
    except Exception as exc:  # noqa: BLE001
        _fallback(exc)
        return []


setup(ext_modules=extensions(), cmdclass={"build_ext": OptionalBuildExt})
