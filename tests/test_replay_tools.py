"""The capture `nfemu replay --write` makes, read by the real tools: tcpdump and tshark must
open it, show the NAT-rewritten addresses and ports, and (tshark, checking every IPv4 and
TCP checksum) find no checksum problem. Skipped without a tool, failed under
NFEMU_REQUIRE_KERNEL=1 (CI)."""
from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from .test_replay_cli import CLIENT, HOST, POD, T0, VIP, flow_pcapng, nfemu_cli


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        reason = f"{name} is not installed (apt-get install {name})"
        if os.environ.get("NFEMU_REQUIRE_KERNEL") == "1":
            pytest.fail(f"required tool missing: {reason}")
        pytest.skip(reason)
    return path


@pytest.fixture
def written(tmp_path):
    rules = tmp_path / "node.rules"
    from .test_replay_cli import RULES
    rules.write_text(RULES)
    src = tmp_path / "flow.pcapng"
    flow_pcapng(src)
    out = tmp_path / "out.pcap"
    run = nfemu_cli("replay", rules, src, *HOST, "--quiet", "--write", out)
    assert run.returncode == 0, run.stderr
    return out


# the four packets that leave the node: SYN, SYN-ACK (un-DNATed), ACK, data
EXPECTED = [(CLIENT, POD, "40000", "8080"), (VIP, CLIENT, "80", "40000"),
            (CLIENT, POD, "40000", "8080"), (CLIENT, POD, "40000", "8080")]


def test_tcpdump_reads_the_written_capture(written):
    tcpdump = _tool("tcpdump")
    run = subprocess.run([tcpdump, "-nn", "-vv", "-tt", "-r", str(written)],
                         check=False, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert "link-type RAW" in run.stderr
    text = run.stdout
    lines = [ln for ln in text.splitlines() if " > " in ln]
    assert [tuple(ln.split(":")[0].strip().replace(" > ", " ").split(" ")) for ln in lines] == [
        (f"{a}.{p}", f"{b}.{q}") for a, b, p, q in EXPECTED]
    # tcpdump -vv verifies the TCP checksum of each segment
    assert text.count("(correct)") == 4 and "incorrect" not in text
    stamps = [ln.split(" ")[0] for ln in text.splitlines() if ln[:1].isdigit()]
    assert stamps == [f"{T0}.000000", f"{T0}.250000", f"{T0}.500000", f"{T0}.750000"]


def test_tshark_sees_the_nat_and_no_checksum_problem(written):
    tshark = _tool("tshark")
    run = subprocess.run(
        [tshark, "-r", str(written), "-o", "ip.check_checksum:TRUE",
         "-o", "tcp.check_checksum:TRUE", "-T", "fields", "-e", "ip.src", "-e", "ip.dst",
         "-e", "tcp.srcport", "-e", "tcp.dstport", "-e", "ip.checksum.status",
         "-e", "tcp.checksum.status"], check=False, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    rows = [ln.split("\t") for ln in run.stdout.splitlines() if ln.strip()]
    assert [tuple(r[:4]) for r in rows] == EXPECTED
    # checksum status: 1 is "Good" (0 Bad, 2 Unverified) in Wireshark's proto_checksum_enum
    assert [(r[4], r[5]) for r in rows] == [("1", "1")] * 4
    expert = subprocess.run([tshark, "-r", str(written), "-o", "ip.check_checksum:TRUE",
                             "-o", "tcp.check_checksum:TRUE", "-z", "expert,error"],
                            check=False, capture_output=True, text=True)
    assert expert.returncode == 0, expert.stderr
    assert "checksum" not in expert.stdout.lower()
