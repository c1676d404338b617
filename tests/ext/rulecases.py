"""What the table-driven extension tests share: load rule lines into one table and compare
the saved ``-A`` lines, or the error messages, with what the kernel gave."""
from __future__ import annotations

import pytest

import nfemu
from nfemu.errors import RulesetErrors
from nfemu.ir import Family


def load_rules(table: str, rules: list[str], family: Family = Family.IPV4):
    text = f"*{table}\n" + "".join(r + "\n" for r in rules) + "COMMIT\n"
    return nfemu.loads(text, family=family)


def saved_rule_lines(table: str, rules: list[str], family: Family = Family.IPV4) -> list[str]:
    saved = load_rules(table, rules, family).save(header=False)
    return [line for line in saved.splitlines() if line.startswith("-A")]


def error_messages(table: str, rules: list[str], family: Family = Family.IPV4) -> list[str]:
    with pytest.raises(RulesetErrors) as info:
        load_rules(table, rules, family)
    return [e.message for e in info.value.errors]


def check_match_case(case) -> None:
    """(table, "rule ;; rule", expected "line ;; line" or ("ERR", substring)[, family])."""
    table, rules, expected = case[:3]
    family = case[3] if len(case) > 3 else Family.IPV4
    rules = rules.split(" ;; ")
    if isinstance(expected, tuple):
        messages = error_messages(table, rules, family)
        assert any(expected[1] in m for m in messages), messages
    else:
        assert saved_rule_lines(table, rules, family) == expected.split(" ;; ")
