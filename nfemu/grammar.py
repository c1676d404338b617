"""The lark grammar (grammars/iptables.lark) and the line scanner built from its terminals.

Two readers produce the same stream of line events:

* ``grammar_events`` runs the LALR parser over the whole text: the definition.
* ``fast_events`` classifies each line by its first character with the same rules and
  splits rule lines with the grammar's own ``ARG``/``FIELD`` regular expressions. It exists
  for speed (a 25 MB kube-proxy dump) and a property test (tests/test_grammar.py) shows it
  yields exactly the events of ``grammar_events`` on every input.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path

from lark import Lark, Token, Tree
from lark.exceptions import UnexpectedInput

from .errors import Location, ParseError


def _grammar_text() -> str:
    try:
        return resources.files("nfemu").joinpath("grammars/iptables.lark").read_text()
    except (FileNotFoundError, ModuleNotFoundError):  # running from a source checkout
        return (Path(__file__).resolve().parent.parent / "grammars" / "iptables.lark").read_text()


@lru_cache(maxsize=1)
def parser() -> Lark:
    return Lark(_grammar_text(), parser="lalr", lexer="contextual", propagate_positions=False,
                maybe_placeholders=False)


@lru_cache(maxsize=1)
def _terminal_regex() -> dict[str, re.Pattern]:
    out = {}
    for term in parser().terminals:
        out[term.name] = re.compile(term.pattern.to_regexp())
    return out


@dataclass(frozen=True, slots=True)
class Word:
    """A word of a line: its text after quote processing, its 1-based column, and whether it
    had an unterminated quote."""

    text: str
    column: int


class RuleLine:
    """The payload of a rule line: the optional ``[p:b]`` prefix and the words.

    Columns are worked out only when asked for (error messages), from the line's text with
    the grammar's ARG expression: the common path never needs them."""

    __slots__ = ("counters", "counters_column", "words", "_columns", "_text", "_start")

    def __init__(self, counters, counters_column, words, columns=None, text=None, start=0):
        self.counters = counters
        self.counters_column = counters_column
        self.words = words
        self._columns = columns
        self._text = text
        self._start = start

    def columns(self) -> list[int]:
        if self._columns is None:
            arg = _terminal_regex()["ARG"]
            self._columns = [m.start() + 1 for m in arg.finditer(self._text + "\n", self._start)]
        return self._columns

    def __eq__(self, other):
        return (isinstance(other, RuleLine) and self.counters == other.counters
                and self.counters_column == other.counters_column
                and self.words == other.words and self.columns() == other.columns())

    def __repr__(self):
        return f"RuleLine({self.counters!r}, {self.words!r}, {self.columns()!r})"


# Line events: (kind, line number, payload)
#   ("blank", n, None) ("comment", n, text) ("table", n, [Word...]) ("chain", n, [Word...])
#   ("commit", n, text) ("rule", n, (counters text or None, counters column, [Word...]))


def unquote(token: str) -> str:
    """The value iptables stores for one rule-line word (add_param_to_argv): a double-quoted
    part loses its quotes, a backslash inside it takes the next character literally, and a
    quote left open takes the line's newline into the value."""
    q = token.find('"')
    if q < 0:
        return token
    out = [token[:q]]
    i = q + 1
    n = len(token)
    while i < n:
        c = token[i]
        if c == "\\":
            if i + 1 < n:
                out.append(token[i + 1])
                i += 2
                continue
            break  # a backslash before the newline: it escapes the newline
        if c == '"':
            return "".join(out)
        out.append(c)
        i += 1
    out.append("\n")  # unterminated: the newline is part of the word
    return "".join(out)


def _prepare(text: str, check_length: bool = True) -> str:
    if "\x00" in text:
        # iptables-restore reads lines with fgets() and then treats them as C strings: what
        # follows a NUL byte on its line is ignored.
        text = _AFTER_NUL.sub("", text)
    if text and not text.endswith("\n"):
        text += "\n"
    if check_length:
        for number, body in enumerate(text.split("\n"), start=1):
            if len(body) >= LINE_BUFFER // 4:
                _check_line_length(body, "<string>", number)
    return text


def _check_line_length(body: str, file: str, number: int) -> None:
    if len(body.encode("utf-8", "surrogateescape")) + 1 >= LINE_BUFFER:
        raise ParseError(f"line longer than iptables-restore's line buffer ({LINE_BUFFER - 1} "
                         "bytes): iptables-restore cuts it there and fails on the pieces",
                         Location(file, number, len(body.encode("utf-8", "surrogateescape")
                                                    [:LINE_BUFFER - 1].decode("utf-8", "ignore")) + 1))


_OTHER_SPACE = re.compile(r"[^\S \t\n]")
_AFTER_NUL = re.compile(r"\x00[^\n]*")
# xtables-restore.c reads lines with fgets(buffer, 10240, ...)
LINE_BUFFER = 10240


def _locate_offset(text: str, offset: int, file: str = "<string>") -> Location:
    line = text.count("\n", 0, offset) + 1
    col = offset - (text.rfind("\n", 0, offset) + 1) + 1
    return Location(file, line, col)


def grammar_events(text: str, file: str = "<string>") -> list[tuple]:
    """Parse the whole text with the LALR grammar and return its line events."""
    text = _prepare(text)
    try:
        tree = parser().parse(text)
    except UnexpectedInput as exc:  # pragma: no cover - every line shape is in the grammar
        raise ParseError(f"syntax error: {exc.__class__.__name__}",
                         Location(file, exc.line, exc.column)) from None
    events = []
    # Every line of the text is exactly one child of the tree, in order: its index is its
    # line number.
    for number, node in enumerate(tree.children, start=1):
        assert isinstance(node, Tree)
        kind = node.data
        toks = [t for t in node.children if isinstance(t, Token)]
        if kind == "blank_line":
            events.append(("blank", number, None))
        elif kind == "comment_line":
            events.append(("comment", number, str(toks[0])))
        elif kind == "commit_line":
            events.append(("commit", number, str(toks[0])))
        elif kind in ("table_line", "chain_line"):
            events.append((kind[:-5], number, [Word(str(t), t.column) for t in toks[1:]]))
        else:
            counters = None
            ccol = 0
            if toks and toks[0].type == "COUNTERS":
                counters, ccol = str(toks[0]), toks[0].column
                toks = toks[1:]
            events.append(("rule", number, RuleLine(counters, ccol,
                                                    [unquote(str(t)) for t in toks],
                                                    columns=[t.column for t in toks])))
    return events


def fast_events(text: str, file: str = "<string>"):
    """Yield the same line events as ``grammar_events``, one line at a time."""
    regex = _terminal_regex()
    field_re = regex["FIELD"]
    counters_re = regex["COUNTERS"]
    other_space = _OTHER_SPACE.search
    text = _prepare(text, check_length=False)
    lines = text.split("\n")
    lines.pop()  # the text ends with a newline
    number = 0
    for body in lines:
        number += 1
        if len(body) >= LINE_BUFFER // 4:
            _check_line_length(body, file, number)
        first = body[:1]
        if not body:
            yield ("blank", number, None)
        elif first == "#":
            yield ("comment", number, body)
        elif body == "COMMIT":
            yield ("commit", number, body)
        elif first == "*" or first == ":":
            words = [Word(m.group(), m.start() + 1) for m in field_re.finditer(body, 1)]
            yield ("table" if first == "*" else "chain", number, words)
        else:
            counters = None
            ccol = 0
            start = 0
            if first == "[":
                m = counters_re.match(body)
                if m:
                    counters, ccol, start = m.group(), 1, m.end()
            if other_space(body):
                words = _regex_words(body, start)
            elif '"' in body:
                words = _quoted_words(body, start)
            else:
                words = body[start:].split()
            yield ("rule", number, RuleLine(counters, ccol, words, text=body, start=start))


def _regex_words(body: str, start: int) -> list[str]:
    """Words by the grammar's ARG expression (any line, however odd)."""
    arg = _terminal_regex()["ARG"]
    return [unquote(m.group()) for m in arg.finditer(body + "\n", start)]


def _quoted_words(body: str, start: int) -> list[str]:
    """Words of a line whose quotes are balanced and hold no backslash, by splitting on the
    quotes; anything else goes to ``_regex_words``. A quote that opens right after other
    characters continues that word; a closing quote ends the word."""
    if "\\" in body:
        return _regex_words(body, start)
    parts = body[start:].split('"')
    last = len(parts) - 1
    if last % 2:
        return _regex_words(body, start)  # an unterminated quote
    words: list[str] = []
    pending = None
    for i, part in enumerate(parts):
        if i % 2 == 0:
            toks = part.split()
            if i < last and part and part[-1] not in " \t":
                pending = toks.pop()
            words.extend(toks)
        elif pending is not None:
            words.append(pending + part)
            pending = None
        else:
            words.append(part)
    return words
