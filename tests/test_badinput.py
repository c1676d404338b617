"""Bad input never raises anything but a located nfemu error, and the error says where."""
from __future__ import annotations

import random
import subprocess
import sys
from pathlib import Path

from hypothesis import given, settings, strategies as st

import nfemu
import pytest

from nfemu.errors import LocatedError, NfemuWarning
from nfemu.parse import load_with_errors

CORPUS = Path(__file__).resolve().parent.parent / "corpus" / "cases"
LINES = sorted({line for p in CORPUS.glob("*/*.rules")
                for line in p.read_bytes().decode("utf-8", "surrogateescape").splitlines()})


def _load(text: str):
    ruleset, errors = load_with_errors(text, "f.rules")
    for e in errors:
        assert isinstance(e, LocatedError)
        assert e.file == "f.rules" and e.line >= 1 and e.column >= 1, e.format()
    return ruleset, errors


def _mutate(line: str, rnd: random.Random) -> str:
    ops = rnd.randrange(4)
    chars = list(line)
    if ops == 0 and chars:
        del chars[rnd.randrange(len(chars))]
    elif ops == 1:
        chars.insert(rnd.randrange(len(chars) + 1), rnd.choice('"\\! -:/,.0x9[]#*'))
    elif ops == 2 and chars:
        chars[rnd.randrange(len(chars))] = rnd.choice("-!\"' 0")
    else:
        words = line.split(" ")
        rnd.shuffle(words)
        return " ".join(words)
    return "".join(chars)


@settings(max_examples=400)
@given(st.lists(st.sampled_from(LINES or ["-A INPUT"]), min_size=1, max_size=12),
       st.integers(0, 2**32), st.sampled_from(["filter", "nat", "mangle", "raw"]))
def test_mutated_corpus_lines(lines, seed, table):
    rnd = random.Random(seed)
    body = "\n".join(_mutate(l, rnd) if rnd.random() < 0.7 else l for l in lines)
    _load(f"*{table}\n{body}\nCOMMIT\n")
    _load(body + "\n")


@settings(max_examples=300)
@given(st.binary(max_size=400))
def test_raw_bytes(data):
    _load(data.decode("utf-8", "surrogateescape"))


def _only_error(text: str) -> LocatedError:
    ruleset, errors = _load(text)
    assert errors, "expected an error"
    return errors[0]


def test_rule_before_table():
    e = _only_error("-A INPUT -j ACCEPT\n")
    assert (e.line, e.column) == (1, 1) and "*table" in e.message


def test_missing_commit():
    e = _only_error("*filter\n-A INPUT -j ACCEPT\n")
    assert e.line == 3 and "COMMIT expected" in e.message


def test_nul_bytes_end_the_line_like_fgets_c_strings():
    # iptables-restore ignores what follows a NUL on its line (seen on the kernel).
    rs = nfemu.loads("*filter\n-A INPUT -s 1.2.3.4\x00 -j garbage \x01\nCOMMIT\n")
    assert rs.save(header=False).splitlines()[-2] == "-A INPUT -s 1.2.3.4/32"


def test_binary_garbage():
    e = _only_error("\x7fELF\x02\x01\x01\x00\x00\x00\n\x03\x00>\x00\x01\x00\n")
    assert e.line == 1 and "*table" in e.message


def test_ten_megabyte_line():
    e = _only_error("*filter\n-A INPUT -m comment --comment " + "x" * 10_000_000 + "\nCOMMIT\n")
    assert e.line == 2 and "line buffer" in e.message


def test_word_too_long():
    e = _only_error("*filter\n-A INPUT -m comment --comment " + "y" * 1100 + "\nCOMMIT\n")
    assert (e.line, e.column) == (2, 31) and "Parameter too long" in e.message


def test_unterminated_quote_is_loaded_like_iptables():
    # iptables-restore accepts it and keeps the newline in the comment (seen on the kernel).
    with pytest.warns(NfemuWarning, match="never closed"):
        rs = nfemu.loads('*filter\n-A INPUT -m comment --comment "abc\nCOMMIT\n')
    assert '--comment "abc\n"' in rs.save()


def test_crlf_is_rejected_with_a_hint():
    e = _only_error("*filter\r\n-A INPUT -j ACCEPT\r\nCOMMIT\r\n")
    assert e.line == 1 and "CRLF" in e.message


def test_cli_never_tracebacks(tmp_path):
    bad = tmp_path / "bad.rules"
    bad.write_bytes(b"*filter\n-A INPUT -p tcp --dport 70000\n-A INPUT -j NOPE\n\xff\xfe\nCOMMIT\n")
    run = subprocess.run([sys.executable, "-m", "nfemu", "check", str(bad)],
                         capture_output=True, text=True, errors="surrogateescape")
    assert run.returncode == 1
    assert "Traceback" not in run.stderr
    lines = [l for l in run.stderr.splitlines() if ": error: " in l]
    assert [l.split(":")[1] for l in lines] == ["2", "3", "4"]
    usage = subprocess.run([sys.executable, "-m", "nfemu", "check", "--bogus", str(bad)],
                           capture_output=True, text=True, errors="surrogateescape")
    assert usage.returncode == 2 and "Traceback" not in usage.stderr
    missing = subprocess.run([sys.executable, "-m", "nfemu", "fmt", str(tmp_path / "nope")],
                             capture_output=True, text=True, errors="surrogateescape")
    assert missing.returncode == 2 and "no such file" in missing.stderr


def test_warnings_for_what_iptables_accepts_silently(tmp_path):
    f = tmp_path / "w.rules"
    f.write_text('*filter\n:FOO DROP [0:0]\n-A INPUT -m comment --comment "abc\nCOMMIT\n')
    run = subprocess.run([sys.executable, "-m", "nfemu", "check", str(f)],
                         capture_output=True, text=True, errors="surrogateescape")
    assert run.returncode == 0
    warnings = [l for l in run.stderr.splitlines() if ": warning: " in l]
    assert [w.split(":")[1:3] for w in warnings] == [["2", "6"], ["3", "31"]]
    assert "never closed" in warnings[1]
