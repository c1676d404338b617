"""Exceptions raised by nfemu's library code.

Every error that comes from user input carries a location (file, line, column) so that the
command line can print ``FILE:LINE:COL: error: message`` exactly like a compiler, and a
library user can point at the offending text.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Location:
    """A position in an input file: 1-based line and column (column counts characters)."""

    file: str = "<string>"
    line: int = 0
    column: int = 0

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"


class NfemuError(Exception):
    """Base class of every error nfemu raises on purpose."""


class LocatedError(NfemuError):
    """An error about a place in the user's input."""

    def __init__(self, message: str, location: Location | None = None):
        super().__init__(message)
        self.message = message
        self.location = location or Location()

    @property
    def file(self) -> str:
        return self.location.file

    @property
    def line(self) -> int:
        return self.location.line

    @property
    def column(self) -> int:
        return self.location.column

    def format(self) -> str:
        """The compiler-style one-line form: ``FILE:LINE:COL: error: message``."""
        return f"{self.location}: error: {self.message}"

    def __str__(self) -> str:
        return self.format()


class ParseError(LocatedError):
    """The text is not iptables-save/iptables-restore syntax, or an option is malformed
    (what iptables-restore itself refuses before talking to the kernel)."""


class ValidationError(LocatedError):
    """The text parses, but loading it would fail: the kernel (or iptables-nft) refuses it."""


class RulesetErrors(NfemuError):
    """Several located errors found in one file (``nfemu check`` reports all of them)."""

    def __init__(self, errors: list[LocatedError]):
        self.errors = list(errors)
        super().__init__("\n".join(e.format() for e in self.errors))


class NfemuWarning(UserWarning):
    """Python warning category for what iptables accepts but probably was not meant."""


class LocatedWarning(LocatedError):
    """A warning about a place in the user's input (not raised; reported)."""

    def format(self) -> str:
        return f"{self.location}: warning: {self.message}"
