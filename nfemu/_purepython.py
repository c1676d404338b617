"""``NFEMU_PURE_PYTHON=1``: import nfemu's pure-Python modules even where the compiled twins
(built by setup.py from the same sources) are installed next to them.

A meta-path finder placed first: for a module of the nfemu package whose normal spec would
load a compiled extension, it returns the spec of the .py file beside it. Installed by
nfemu/__init__.py before any submodule is imported.
"""
from __future__ import annotations

import importlib.machinery
import importlib.util
import os
import sys


class PurePythonFinder:
    """Prefers ``module.py`` over ``module.*.so`` inside the nfemu package."""

    @staticmethod
    def find_spec(fullname, path=None, target=None):
        if not fullname.startswith("nfemu.") or path is None:
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None or not isinstance(spec.loader, importlib.machinery.ExtensionFileLoader):
            return spec
        source = os.path.join(os.path.dirname(spec.origin), fullname.rsplit(".", 1)[1] + ".py")
        if not os.path.exists(source):
            return spec
        return importlib.util.spec_from_file_location(fullname, source)


def install() -> None:
    if not any(isinstance(f, PurePythonFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, PurePythonFinder())
