"""A real kernel as the judge: load rules with the real iptables into fresh network
namespaces and read back what iptables-save prints."""
from __future__ import annotations

import itertools
import os
import subprocess
from dataclasses import dataclass

_counter = itertools.count()


@dataclass
class Restored:
    returncode: int
    stderr: str
    saved: str          # iptables-save output without '#' lines ("" when rejected)

    @property
    def accepted(self) -> bool:
        return self.returncode == 0


class Kernel:
    """Runs iptables-restore (nf_tables by default) in a fresh namespace per call."""

    def __init__(self, restore: str = "iptables-restore", save: str = "iptables-save"):
        self.restore_cmd = restore
        self.save_cmd = save

    def netns(self) -> "Netns":
        return Netns(f"nfemu-t-{os.getpid()}-{next(_counter)}")

    def restore(self, text: str, counters: bool = False) -> Restored:
        with self.netns() as ns:
            flags = ["-c"] if counters else []
            run = ns.run([self.restore_cmd, *flags], input=text)
            if run.returncode != 0:
                return Restored(run.returncode, run.stderr, "")
            saved = ns.run([self.save_cmd, *flags]).stdout
            body = "".join(l for l in saved.splitlines(keepends=True) if not l.startswith("#"))
            return Restored(0, run.stderr, body)


class Netns:
    def __init__(self, name: str):
        self.name = name

    def __enter__(self) -> "Netns":
        subprocess.run(["ip", "netns", "add", self.name], check=True)
        return self

    def __exit__(self, *exc) -> None:
        subprocess.run(["ip", "netns", "del", self.name], check=False)

    def run(self, argv: list[str], input: str | None = None) -> subprocess.CompletedProcess:
        return subprocess.run(["ip", "netns", "exec", self.name, *argv], input=input,
                              capture_output=True, text=True, errors="surrogateescape",
                              timeout=60)
