"""examples/nodeport-walkthrough/README.md runs as written: every command of its ``sh``
blocks is run (from the repository root, ``python3`` being this interpreter), every line of
the ``text`` block that follows a ``sh`` block appears in that block's output, and the key
facts of issue 6 item 5 hold: as written, the node port is rejected on both nodes because
the selector matches no pod; fixed, the packet reaches the pod from both nodes through
KUBE-NODEPORTS, KUBE-EXT, KUBE-SVC and KUBE-SEP with DNAT and masquerade; the cluster IP
path reaches it too."""
from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "examples" / "nodeport-walkthrough" / "README.md"


def blocks() -> list[tuple[str, str]]:
    return [(m.group(1), m.group(2)) for m in
            re.finditer(r"^```(\w+)\n(.*?)^```", README.read_text(), re.M | re.S)]


def commands() -> list[str]:
    return [line for kind, body in blocks() if kind == "sh"
            for line in body.splitlines() if line.strip()]


def run(command: str) -> subprocess.CompletedProcess:
    argv = shlex.split(command)
    assert argv[0] == "python3", command
    return subprocess.run([sys.executable, *argv[1:]], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)


_cache: dict[str, subprocess.CompletedProcess] = {}


def output(command: str) -> str:
    if command not in _cache:
        _cache[command] = run(command)
    done = _cache[command]
    assert done.returncode == 0, done.stderr
    return done.stdout


def verdict(out: str) -> str:
    """The trace's verdict line (the summary of every outcome follows it)."""
    [line] = [l for l in out.splitlines() if l.startswith("verdict ")]
    return line


def summary(out: str) -> list[str]:
    """The outcome lines of the summary that ends the output."""
    return [l for l in out.split("# every outcome (exact probabilities):\n")[1].splitlines()]


def find(*words: str) -> str:
    """The output of the one README command containing every word."""
    [command] = [c for c in commands() if all(w in c for w in words)]
    return output(command)


def test_readme_has_the_commands():
    cmds = commands()
    assert len(cmds) == 8
    assert all(c.startswith("python3 -m nfemu kube ") for c in cmds)


def test_text_blocks_appear_in_the_output_of_the_commands_before_them():
    last_sh = None
    checked = 0
    for kind, body in blocks():
        if kind == "sh":
            last_sh = body
        elif kind == "text" and last_sh is not None:
            out = "".join(output(c) for c in last_sh.splitlines() if c.strip())
            for line in body.splitlines():
                assert line in out.splitlines(), line
                checked += 1
    assert checked >= 10


@pytest.mark.parametrize("node,ip", [("node-1", "10.0.0.11"), ("node-2", "10.0.0.12")])
def test_as_written_node_port_rejected_and_why(node, ip):
    out = find("service-broken.yaml", f"--node {node}", f"-d {ip}", "--dport 30080")
    assert "has no endpoints" in out
    assert "its selector service-app=podnet-02 matches no pod" in out
    assert "pod default/podnet-02 has labels service-name=podnet-02" in out
    assert "=> REJECT" in out
    assert verdict(out).startswith("verdict DROP: dropped in filter INPUT")
    assert summary(out) == ["#   1 (1.000000): rejected in filter KUBE-EXTERNAL-SERVICES"]
    assert "DNAT" not in out


def test_as_written_render_has_reject_rules_only():
    out = find("kube render", "service-broken.yaml")
    lines = [l for l in out.splitlines() if "nginx-nodeport" in l]
    assert lines and all(l.endswith("-j REJECT") for l in lines)


@pytest.mark.parametrize("node,ip,out_iface", [("node-1", "10.0.0.11", "eth0"),
                                               ("node-2", "10.0.0.12", "cni0")])
def test_fixed_node_port_reaches_the_pod(node, ip, out_iface):
    out = find("service-fixed.yaml", f"--node {node}", f"-d {ip}", "--dport 30080")
    chains = [m.group(1) for m in re.finditer(r"^  (\S+) rule \d+:", out, re.M)]
    order = ["KUBE-SERVICES", "KUBE-NODEPORTS", "KUBE-EXT-", "KUBE-SVC-", "KUBE-SEP-",
             "KUBE-POSTROUTING"]
    pos = [next(i for i, c in enumerate(chains) if c.startswith(want)) for want in order]
    assert pos == sorted(pos), chains
    assert "=> DNAT to=10.244.2.5:80" in out
    assert "by=MASQUERADE" in out
    final = verdict(out)
    assert summary(out) == [f"#   1 (1.000000): reaches 10.244.2.5:80 (Pod default/podnet-02), "
                            f"source rewritten to {'10.0.0.11' if node == 'node-1' else '10.244.2.1'}; "
                            f"forwarded out {out_iface}"]
    assert final.startswith(f"verdict ACCEPT: forwarded out {out_iface}; packet tcp ")
    assert final.endswith("-> 10.244.2.5:80 [S]")
    assert "192.168.5.9" not in final          # masqueraded
    assert "endpoints: 10.244.2.5:80" in out


def test_cluster_ip_path():
    out = find("service-fixed.yaml", "-s 10.244.1.7", "-d 10.96.100.20")
    assert "KUBE-SVC-" in out and "=> DNAT to=10.244.2.5:80" in out
    assert "by=MASQUERADE" not in out           # a pod source is not masqueraded
    assert verdict(out) == (
        "verdict ACCEPT: forwarded out eth0; packet tcp 10.244.1.7:40000 -> 10.244.2.5:80 [S]")
    local = find("service-fixed.yaml", "--local")
    assert verdict(local) == (
        "verdict ACCEPT: sent out eth0; packet tcp 10.0.0.11:40000 -> 10.244.2.5:80 [S]")


def test_broken_cluster_ip_rejected():
    out = find("service-broken.yaml", "-d 10.96.100.20")
    assert verdict(out).startswith("verdict DROP: dropped in filter FORWARD")
    assert "=> REJECT" in out
