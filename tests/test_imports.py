"""Every nfemu module can be the first one a program imports, and every public name of the
package resolves (the package imports them on first use, nfemu/__init__.py): each is tried
in a fresh interpreter, where an import cycle cannot hide behind an earlier import."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import nfemu

ROOT = Path(__file__).resolve().parents[1]
MODULES = sorted(
    "nfemu." + p.relative_to(ROOT / "nfemu").with_suffix("").as_posix().replace("/", ".")
    for p in (ROOT / "nfemu").rglob("*.py")
    if p.name != "__init__.py" and p.name != "__main__.py")


def fresh(code: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env,
                          capture_output=True, text=True, check=False, timeout=120)


def test_every_module_imports_first():
    # one interpreter per module, run together: a script that reports the failures
    code = ("import subprocess, sys\n"
            f"mods = {MODULES!r}\n"
            "bad = [m for m in mods if subprocess.run([sys.executable, '-c', 'import ' + m],"
            " capture_output=True).returncode]\n"
            "print(' '.join(bad))\n")
    r = fresh(code)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == [], f"cannot be imported first: {r.stdout}"


@pytest.mark.parametrize("name", sorted(set(nfemu.__all__)))
def test_public_name_resolves_in_a_fresh_interpreter(name):
    r = fresh(f"import nfemu; print(type(nfemu.{name}).__name__)")
    assert r.returncode == 0, r.stderr


def test_unknown_name_is_an_attribute_error():
    with pytest.raises(AttributeError):
        nfemu.no_such_name  # noqa: B018
