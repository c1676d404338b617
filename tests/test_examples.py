"""The README's replay example, run as the README gives it (from the checkout, without the
venv prefix; the output file goes to a temporary directory)."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def readme_replay_argv() -> list[str]:
    text = (ROOT / "README.md").read_text()
    line = next(x.strip() for x in text.splitlines()
                if x.strip().startswith(".venv/bin/nfemu replay examples/"))
    return line.split()[1:]


def test_readme_replay_example(tmp_path):
    argv = [str(ROOT / a) if a.startswith("examples/") else a for a in readme_replay_argv()]
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    r = subprocess.run([sys.executable, "-m", "nfemu", *argv], cwd=tmp_path, env=env,
                       capture_output=True, text=True, check=False)
    assert r.returncode == 0, r.stderr
    lines = [x for x in r.stdout.splitlines() if re.match(r"\d+ ", x)]
    assert len(lines) == 33
    # the capture was made so that every answer comes from the pod the node picked (see
    # examples/make_capture.py): each connection's SYN is NEW, every pod packet is a reply,
    # and the stray FIN of no connection is INVALID and dropped by KUBE-FORWARD
    assert sum(": NEW ACCEPT" in x for x in lines) == 4
    assert sum("ESTABLISHED_REPLY ACCEPT" in x for x in lines) == 12
    assert "INVALID DROP" in lines[-1]
    table = (tmp_path / "conntrack.txt").read_text().splitlines()
    assert len(table) == 4 and all(" TIME_WAIT " in x and "[ASSURED]" in x for x in table)
