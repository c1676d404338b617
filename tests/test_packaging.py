"""The wheel carries what nfemu reads at run time (the grammar, port names), and the console
script runs from an installed copy, not only from a source checkout."""
import os
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_wheel_has_grammar_and_data(tmp_path):
    # the data files, not the compiled hot path (the editable build of the test command
    # compiles it, and tests/test_build.py checks it runs): a pure wheel builds in seconds
    env = dict(os.environ, NFEMU_PURE_PYTHON="1")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps",
                    "-w", str(tmp_path), str(ROOT)], check=True, capture_output=True, env=env)
    (wheel,) = tmp_path.glob("nfemu-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "nfemu/grammars/iptables.lark" in names
    assert "nfemu/data/services.txt" in names
    assert any(n.endswith("entry_points.txt") for n in names)
    entry = next(n for n in names if n.endswith("entry_points.txt"))
    assert "nfemu = nfemu.cli:run" in zipfile.ZipFile(wheel).read(entry).decode()
