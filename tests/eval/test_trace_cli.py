"""`nfemu trace` on the bundled kube-proxy example (the README's first command)."""
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ARGS = ["trace", str(ROOT / "examples" / "kube-nodeport.rules"), "--iface", "eth0=192.168.0.2/24",
        "--default-gateway", "192.168.0.1", "-i", "eth0", "-p", "tcp", "-s", "192.168.0.50",
        "-d", "192.168.0.2", "--dport", "30080"]


def nfemu(*args):
    return subprocess.run([sys.executable, "-m", "nfemu", *args], capture_output=True, text=True)


def test_all_outcomes_as_json():
    run = nfemu(*ARGS, "--all", "--json")
    assert run.returncode == 0, run.stderr
    out = json.loads(run.stdout)
    got = sorted((o["probability"], o["packet"], o["where"]) for o in out["outcomes"])
    assert got == [("1/2", "tcp 192.168.0.2:40000 -> 10.244.1.10:8080 [S]", "forward"),
                   ("1/2", "tcp 192.168.0.2:40000 -> 10.244.1.11:8080 [S]", "forward")]
    path = out["outcomes"][0]["path"]
    assert {"hook": "PREROUTING", "table": "nat", "chain": "KUBE-NODEPORTS", "rule": 1,
            "target": "KUBE-EXT-GNZBNJ2PO5MGZ6GT"} in path
    assert [(e["kind"], e.get("mark")) for e in out["outcomes"][0]["events"]] == [
        ("MARK", "0x0 -> 0x4000"), ("DNAT", None), ("MARK", "0x4000 -> 0x0"), ("SNAT", None)]


def test_seeded_sampling_is_reproducible():
    a = nfemu(*ARGS, "--seed", "5", "--json")
    b = nfemu(*ARGS, "--seed", "5", "--json")
    assert a.returncode == 0 and a.stdout == b.stdout and json.loads(a.stdout)["seed"] == 5


def test_readable_trace_and_usage_errors():
    run = nfemu(*ARGS, "--seed", "1")
    assert run.returncode == 0
    assert "=> DNAT to=10.244.1.1" in run.stdout and "verdict ACCEPT: forwarded out eth0" in run.stdout
    bad = nfemu(*ARGS[:-1], "99999")
    assert bad.returncode == 2 and "--dport" in bad.stderr and "Traceback" not in bad.stderr
