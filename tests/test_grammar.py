"""The grammar is the definition: the fast line reader must produce exactly the grammar's
line events (and so the same IR) on every input."""
from __future__ import annotations

from pathlib import Path

from hypothesis import given, settings, strategies as st

from nfemu.grammar import fast_events, grammar_events, unquote
from nfemu.strategies import extension_names, rulesets

CORPUS = Path(__file__).resolve().parent.parent / "corpus" / "cases"

# Characters that matter to the tokenizer, plus ordinary ones.
_ALPHABET = st.sampled_from(list(' \t\n"\\\'#*:[]!-ACOMIT0123456789abc/,.=\r\x0b\xe9'))
_WORDS = st.sampled_from(["-A", "INPUT", "-j", "ACCEPT", "COMMIT", "*filter", ":X - [0:0]",
                          "[1:2]", "--comment", '"a b"', '"x\\"y"', "\"", "\\", "!", "#c"])


@st.composite
def texts(draw):
    pieces = draw(st.lists(st.one_of(_ALPHABET, _WORDS), max_size=60))
    return "".join(pieces)


@settings(max_examples=600)
@given(texts())
def test_fast_reader_equals_grammar(text):
    assert _events_or_error(lambda: list(fast_events(text))) == \
        _events_or_error(lambda: grammar_events(text))


def test_fast_reader_equals_grammar_on_corpus():
    files = sorted(CORPUS.glob("*/*.rules")) + sorted(CORPUS.glob("*/*.nft.save"))
    assert files
    for path in files:
        text = path.read_bytes().decode("utf-8", "surrogateescape")
        assert _events_or_error(lambda: list(fast_events(text))) == \
            _events_or_error(lambda: grammar_events(text)), path


def _events_or_error(read):
    from nfemu.errors import ParseError
    try:
        return read()
    except ParseError as exc:
        return exc.format()


def test_same_ir_from_both_engines_on_corpus():
    from nfemu.parse import load_with_errors
    for path in sorted(CORPUS.glob("*/*.rules")):
        text = path.read_bytes().decode("utf-8", "surrogateescape")
        fast, fast_errors = load_with_errors(text, engine="fast")
        slow, slow_errors = load_with_errors(text, engine="grammar")
        assert fast == slow, path
        assert [e.format() for e in fast_errors] == [e.format() for e in slow_errors], path


@settings(max_examples=200)
@given(rulesets(max_user_chains=3, extensions=extension_names(evaluated=False)))
def test_same_ir_and_text_from_both_engines_on_drawn_rulesets(text):
    """Rulesets as iptables-save writes them (nfemu.strategies): both readers give the same
    line events and the same IR, which prints back as the text read."""
    from nfemu.parse import load_with_errors
    assert list(fast_events(text)) == grammar_events(text)
    fast, fast_errors = load_with_errors(text, engine="fast")
    slow, slow_errors = load_with_errors(text, engine="grammar")
    assert not fast_errors and not slow_errors
    assert fast == slow and fast.save(header=False) == text


def test_quoting_as_iptables_tokenizer():
    events = grammar_events('-A X --comment foo"bar baz" "a"b "q\\"\\\\\\\'" ""\n')
    words = events[0][2].words
    assert words == ["-A", "X", "--comment", "foobar baz", "a", "b", "q\"\\'", ""]


def test_unterminated_quote_takes_the_newline():
    assert unquote('"abc') == "abc\n"
    assert unquote('x"ab\\') == "xab\n"


def test_line_kinds():
    kinds = [e[0] for e in grammar_events("# c\n*nat\n:A - [0:0]\n\n  \nCOMMIT\n[1:2] -A A\n")]
    assert kinds == ["comment", "table", "chain", "blank", "rule", "commit", "rule"]
