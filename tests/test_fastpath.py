"""Where the fast parser answers, it must build exactly what the full parser builds."""
from __future__ import annotations

import random
from pathlib import Path

from hypothesis import given, settings, strategies as st

from nfemu.command import parse_command
from nfemu.errors import LocatedError
from nfemu.fastpath import fast_parse
from nfemu.grammar import fast_events
from nfemu.ir import Family
from tests.kernel.test_fmt_check_vs_kernel import GENERIC, MATCHES, PROTOS, TARGETS

CORPUS = Path(__file__).resolve().parent.parent / "corpus" / "cases"


def _rule_lines():
    for path in sorted(CORPUS.glob("*/*.rules")) + sorted(CORPUS.glob("*/*.nft.save")):
        text = path.read_bytes().decode("utf-8", "surrogateescape")
        table = "filter"
        try:
            events = list(fast_events(text))
        except LocatedError:
            continue
        for kind, line, payload in events:
            if kind == "table" and payload:
                table = payload[0].text
            elif kind == "rule" and payload.words:
                yield table, payload


def _full(words, columns, table):
    try:
        cmd = parse_command(list(zip(words, columns)), table, Family.IPV4, "f", 1)
    except LocatedError:
        return None
    return cmd.op, cmd.chain, cmd.rules


def _fast(words, table):
    cmd = fast_parse(words, table, Family.IPV4, 1, None)
    return None if cmd is None else (cmd.op, cmd.chain, cmd.rules)


def _agree(words, columns, table) -> bool:
    fast = _fast(words, table)
    if fast is None:
        return False
    assert fast == _full(words, columns, table), words
    return True


def test_fast_parser_agrees_on_corpus_lines():
    answered = total = 0
    for table, payload in _rule_lines():
        total += 1
        answered += _agree(payload.words, payload.columns(), table)
    assert total > 1000
    assert answered > total // 2  # the fast path does carry the common shape


@st.composite
def lines(draw):
    parts = ["-A", draw(st.sampled_from(["INPUT", "OUTPUT", "PREROUTING", "POSTROUTING", "X"]))]
    for chunk in (draw(st.sampled_from(GENERIC)), draw(st.sampled_from(PROTOS)),
                  *draw(st.lists(st.sampled_from(MATCHES), max_size=4)),
                  draw(st.sampled_from(TARGETS))):
        parts += chunk.replace('"x y"', "x").split()
    rnd = random.Random(draw(st.integers(0, 1000)))
    if draw(st.booleans()) and len(parts) > 3:
        i = rnd.randrange(2, len(parts))
        parts.insert(i, rnd.choice(["!", "-m", "--dport", "tcp", "-j", "--to", "1"]))
    return parts


@settings(max_examples=1500)
@given(lines(), st.sampled_from(["filter", "nat", "mangle", "raw"]))
def test_fast_parser_agrees_on_generated_lines(words, table):
    _agree(words, list(range(1, len(words) + 1)), table)
