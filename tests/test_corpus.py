"""nfemu against what the real kernel did with every corpus input (corpus/README.md):
``fmt`` must print exactly what iptables-save printed after iptables-restore (ignoring '#'
lines), and ``check`` must accept exactly the inputs the kernel accepted."""
from __future__ import annotations

from pathlib import Path

import pytest

import nfemu
from nfemu.errors import RulesetErrors
from nfemu.parse import load_with_errors, read_text

CORPUS = Path(__file__).resolve().parent.parent / "corpus" / "cases"
CASES = sorted(CORPUS.glob("*/*.rules"))


def _strip_comments(text: str) -> str:
    return "".join(line for line in text.splitlines(keepends=True) if not line.startswith("#"))


def _case_id(path: Path) -> str:
    return f"{path.parent.name}/{path.stem}"


def _skip_if_kernel_output_does_not_reload(rules: Path) -> None:
    """A value with a newline in it (from an unterminated quote) is printed as is: neither
    iptables-restore nor nfemu can read that output back."""
    saved = rules.with_suffix(".nft.save").read_text(errors="surrogateescape")
    if any(line.count('"') % 2 for line in saved.splitlines() if not line.startswith("#")):
        pytest.skip("iptables-save printed a newline inside a quoted value")


def test_corpus_is_there():
    assert len(CASES) >= 100
    assert {p.parent.name for p in CASES} >= {"kube", "docker", "cni", "edge", "reject", "syntax"}


@pytest.mark.parametrize("rules", CASES, ids=_case_id)
def test_fmt_and_check_agree_with_kernel(rules: Path):
    text, name = read_text(rules)
    expected = rules.with_suffix(".nft.save")
    rejected = rules.with_suffix(".nft.err")
    ruleset, errors = load_with_errors(text, name)
    if expected.exists():
        assert not errors, "kernel accepted it, nfemu rejects:\n" + "\n".join(
            e.format() for e in errors)
        assert ruleset.save(header=False) == _strip_comments(expected.read_text(
            errors="surrogateescape"))
    else:
        assert rejected.exists(), f"no expectation for {rules}"
        assert errors, ("kernel rejected it (" + rejected.read_text().strip().replace("\n", " | ")
                        + "), nfemu accepts it")


@pytest.mark.parametrize("rules", [c for c in CASES if c.with_suffix(".nft.save-c").exists()],
                         ids=_case_id)
def test_fmt_with_counters_agrees_with_kernel(rules: Path):
    text, name = read_text(rules)
    ruleset, errors = load_with_errors(text, name, counters=True)
    assert not errors, "\n".join(e.format() for e in errors)
    expected = rules.with_suffix(".nft.save-c").read_text(errors="surrogateescape")
    assert ruleset.save(counters=True, header=False) == _strip_comments(expected)


@pytest.mark.parametrize("rules", [c for c in CASES if c.with_suffix(".nft.err-c").exists()],
                         ids=_case_id)
def test_counters_mode_rejects_what_kernel_rejects(rules: Path):
    text, name = read_text(rules)
    _, errors = load_with_errors(text, name, counters=True)
    assert errors, "iptables-restore -c rejected it: " + rules.with_suffix(".nft.err-c").read_text()


@pytest.mark.parametrize("rules", [c for c in CASES if c.with_suffix(".nft.save").exists()],
                         ids=_case_id)
def test_fmt_is_idempotent(rules: Path):
    _skip_if_kernel_output_does_not_reload(rules)
    once = nfemu.loads(read_text(rules)[0]).save()
    twice = nfemu.loads(once).save()
    assert once == twice


@pytest.mark.parametrize("rules", [c for c in CASES if c.with_suffix(".nft.save").exists()],
                         ids=_case_id)
def test_kernel_output_is_a_fixed_point(rules: Path):
    """What iptables-save printed reads back to itself."""
    _skip_if_kernel_output_does_not_reload(rules)
    saved = rules.with_suffix(".nft.save").read_text(errors="surrogateescape")
    assert nfemu.loads(saved).save(header=False) == _strip_comments(saved)


def test_errors_carry_locations():
    with pytest.raises(RulesetErrors) as info:
        nfemu.loads("*filter\n-A INPUT -p tcp --dport 99999 -j ACCEPT\nCOMMIT\n", "x.rules")
    (err,) = info.value.errors
    assert (err.file, err.line, err.column) == ("x.rules", 2, 25)
    assert "99999" in err.message
