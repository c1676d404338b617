"""The load cache (nfemu/loadcache.py): a file read again gives what parsing it gives, and
every way the cache can be wrong or unusable falls back to parsing.

What a hit must return is never written down here: it is compared with what the parser
returns for the same file with the cache off (``NFEMU_NO_CACHE=1``), and, over the corpus,
with what iptables-save printed on the kernel after loading the file."""
from __future__ import annotations

import dataclasses
import io
import os
import pickle
import sys
import warnings
from pathlib import Path

import pytest

import nfemu
from nfemu import loadcache, parse
from nfemu.errors import NfemuWarning, RulesetErrors
from nfemu.ir import Rule, Ruleset
from nfemu.validate import ALL_OBJECTS

CORPUS = Path(__file__).resolve().parent.parent / "corpus" / "cases"
IP6 = CORPUS.parent / "ip6"
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
import gen_kube_dump  # noqa: E402

# a user chain with a policy (iptables-restore ignores it): nfemu warns
WARNING_LINE = ":KUBE-ODD DROP [0:0]\n"


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """A fresh cache directory (XDG_CACHE_HOME) and a spy on the parser: ``cache.parses``
    counts the texts parsed (a hit parses none)."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv("NFEMU_NO_CACHE", raising=False)
    monkeypatch.delenv("NFEMU_CACHE_KEEP", raising=False)
    real = parse.load_report
    calls = []

    def spy(*args, **kwargs):
        calls.append(args[1] if len(args) > 1 else kwargs.get("file"))
        return real(*args, **kwargs)
    monkeypatch.setattr(parse, "load_report", spy)

    class Cache:
        dir = tmp_path / "xdg" / "nfemu"
        parses = calls

        @staticmethod
        def entries() -> list[Path]:
            return sorted(Cache.dir.glob("load-*.pickle")) if Cache.dir.exists() else []
    return Cache


def _kube_dump(path: Path, services: int = 60, extra: str = "") -> Path:
    """A kube-proxy dump above the cache's size floor (about 1.7 KiB a service)."""
    text = gen_kube_dump.generate(services, 3)
    if extra:  # a line at the top of the nat table
        text = text.replace("*nat\n", "*nat\n" + extra, 1)
    path.write_text(text)
    assert path.stat().st_size >= loadcache.MIN_BYTES
    return path


_PARSE = parse.load_report


def _uncached(path, **kw) -> parse.LoadReport:
    """The file parsed, without the cache (and not counted by the spy)."""
    text, name = parse.read_text(path)
    return _PARSE(text, name, **kw)


def _warnings(report) -> list[tuple]:
    return [(type(w), w.message, w.file, w.line, w.column) for w in report.warnings]


def _same_types(a, b) -> None:
    """Every node of both rulesets is of the same class (== already implies it for the
    dataclasses, this also walks tuples)."""
    assert type(a) is type(b)
    if dataclasses.is_dataclass(a):
        for f in dataclasses.fields(a):
            _same_types(getattr(a, f.name), getattr(b, f.name))
    elif isinstance(a, tuple):
        assert len(a) == len(b)
        for x, y in zip(a, b):
            _same_types(x, y)


# ---- hits -------------------------------------------------------------------------------

def test_hit_gives_the_parsed_ruleset_and_warnings(cache, tmp_path):
    path = _kube_dump(tmp_path / "node.rules", extra=WARNING_LINE)
    first = parse.load_report_file(path)
    assert cache.parses == [str(path)] and len(cache.entries()) == 1
    second = parse.load_report_file(path)
    assert cache.parses == [str(path)], "the second read parsed again"
    reference = _uncached(path)
    assert not reference.errors and reference.warnings, "the dump should carry one warning"
    for report in (first, second):
        assert report.ruleset == reference.ruleset
        assert report.ruleset.save() == reference.ruleset.save()
        assert report.ruleset.save(counters=True) == reference.ruleset.save(counters=True)
        assert report.ruleset.source == str(path)
        assert _warnings(report) == _warnings(reference)
        assert report.errors == []
    _same_types(second.ruleset, reference.ruleset)


def test_hit_values_stay_frozen_and_hashable(cache, tmp_path):
    path = _kube_dump(tmp_path / "node.rules")
    parse.load_report_file(path)
    ruleset = parse.load_report_file(path).ruleset
    assert len(cache.parses) == 1
    rule = ruleset.table("nat").chain("KUBE-SERVICES").rules[0]
    assert type(rule) is Rule
    with pytest.raises(dataclasses.FrozenInstanceError):
        rule.chain = "X"
    with pytest.raises(dataclasses.FrozenInstanceError):
        rule.matches[0].comment = "x"
    reference = _uncached(path).ruleset.table("nat").chain("KUBE-SERVICES").rules[0]
    assert hash(rule) == hash(reference) and {rule: 1}[reference] == 1


def test_nfemu_load_replays_warnings_on_a_hit(cache, tmp_path):
    path = _kube_dump(tmp_path / "node.rules", extra=WARNING_LINE)
    for _ in range(2):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            ruleset = nfemu.load(path)
        assert [str(w.message) for w in caught if w.category is NfemuWarning] == \
            [w.format() for w in _uncached(path).warnings]
    assert len(cache.parses) == 1
    assert ruleset == _uncached(path).ruleset


def test_same_bytes_under_another_name_hit_and_take_the_new_name(cache, tmp_path):
    a = _kube_dump(tmp_path / "a.rules", extra=WARNING_LINE)
    b = tmp_path / "b.rules"
    b.write_bytes(a.read_bytes())
    parse.load_report_file(a)
    report = parse.load_report_file(b)
    assert cache.parses == [str(a)]
    assert report.ruleset.source == str(b)
    assert _warnings(report) == _warnings(_uncached(b))
    assert all(w.file == str(b) for w in report.warnings)


def test_corpus_through_the_cache_prints_what_the_kernel_printed(cache, monkeypatch):
    """Every corpus input the kernel accepted, read twice through the cache (the second
    read a hit): the ruleset prints what iptables-save printed after iptables-restore.
    This covers every extension's values in an entry."""
    monkeypatch.setattr(loadcache, "MIN_BYTES", 0)
    monkeypatch.setenv("NFEMU_CACHE_KEEP", "1000")
    cases = [p for p in sorted(CORPUS.glob("*/*.rules")) + sorted(IP6.glob("*.rules"))
             if p.with_suffix(".nft.save").exists()]
    assert any(p.parent == IP6 for p in cases)
    assert len(cases) > 100
    for path in cases:
        expected = "".join(line for line in path.with_suffix(".nft.save").read_text(
            errors="surrogateescape").splitlines(keepends=True) if not line.startswith("#"))
        family = nfemu.Family.IPV6 if path.parent == IP6 else None
        for counters in (False, True):
            parsed_before = len(cache.parses)
            if parse.load_report_file(path, family, counters=counters).errors:
                assert counters, path   # (a bad [p:b] only matters with -c)
                continue
            hit = parse.load_report_file(path, family, counters=counters)
            assert len(cache.parses) == parsed_before + 1, f"{path}: no hit"
            assert not hit.errors
            if not counters:
                assert hit.ruleset.save(header=False) == expected, path
            saved_c = path.with_suffix(".nft.save-c")
            if counters and saved_c.exists():
                expected_c = "".join(
                    line for line in saved_c.read_text(errors="surrogateescape")
                    .splitlines(keepends=True) if not line.startswith("#"))
                assert hit.ruleset.save(counters=True, header=False) == expected_c, path


# ---- misses -------------------------------------------------------------------------------

def test_a_changed_file_misses(cache, tmp_path):
    path = _kube_dump(tmp_path / "node.rules")
    before = parse.load_report_file(path).ruleset
    text = path.read_text()
    path.write_text(text.replace('"ns-0/svc-0:http"', '"ns-0/svc-0:https"', 1))
    after = parse.load_report_file(path)
    assert len(cache.parses) == 2
    assert after.ruleset != before
    assert after.ruleset == _uncached(path).ruleset
    assert len(cache.entries()) == 2


def test_load_options_are_part_of_the_key(cache, tmp_path):
    path = _kube_dump(tmp_path / "node.rules")
    text = path.read_text().replace("-A KUBE-SERVICES", "[7:700] -A KUBE-SERVICES", 1)
    path.write_text(text)
    plain = parse.load_report_file(path).ruleset
    counted = parse.load_report_file(path, counters=True).ruleset
    assert len(cache.parses) == 2
    assert plain != counted
    assert counted == _uncached(path, counters=True).ruleset
    parse.load_report_file(path, objects=ALL_OBJECTS)
    parse.load_report_file(path, family=nfemu.Family.IPV4)
    assert len(cache.parses) == 4
    assert parse.load_report_file(path, counters=True).ruleset == counted
    assert len(cache.parses) == 4


def test_the_key_covers_nfemu_itself(cache, tmp_path, monkeypatch):
    files = {p.relative_to(Path(loadcache.__file__).resolve().parent.parent).as_posix()
             for p in loadcache._package_files()}
    assert {"nfemu/parse.py", "nfemu/fastpath.py", "nfemu/ext/tcp.py", "nfemu/ir.py",
            "nfemu/data/services.txt"} <= files
    assert any(f.endswith("iptables.lark") for f in files)
    path = _kube_dump(tmp_path / "node.rules")
    parse.load_report_file(path)
    monkeypatch.setattr(loadcache, "code_digest", lambda: "another nfemu")
    parse.load_report_file(path)
    assert len(cache.parses) == 2


def test_a_file_with_errors_is_never_stored(cache, tmp_path):
    path = _kube_dump(tmp_path / "bad.rules")
    path.write_text(path.read_text().replace("-j KUBE-MARK-MASQ", "-j KUBE-NO-SUCH-CHAIN", 1))
    for _ in range(2):
        with pytest.raises(RulesetErrors) as exc:
            nfemu.load(path)
        assert any("KUBE-NO-SUCH-CHAIN" in e.message for e in exc.value.errors)
    assert len(cache.parses) == 2
    assert cache.entries() == []


def test_small_files_are_not_cached(cache, tmp_path):
    path = tmp_path / "small.rules"
    path.write_text("*filter\n:INPUT DROP [0:0]\n-A INPUT -p tcp --dport 22 -j ACCEPT\nCOMMIT\n")
    nfemu.load(path)
    nfemu.load(path)
    assert len(cache.parses) == 2 and cache.entries() == []


# ---- switched off, never used -------------------------------------------------------------

def test_nfemu_no_cache_turns_it_off(cache, tmp_path, monkeypatch):
    path = _kube_dump(tmp_path / "node.rules")
    monkeypatch.setenv("NFEMU_NO_CACHE", "1")
    nfemu.load(path)
    nfemu.load(path)
    assert len(cache.parses) == 2 and not cache.dir.exists()
    monkeypatch.delenv("NFEMU_NO_CACHE")
    nfemu.load(path)                       # writes
    monkeypatch.setenv("NFEMU_NO_CACHE", "1")
    nfemu.load(path)                       # does not read it
    assert len(cache.parses) == 4 and len(cache.entries()) == 1


def test_stdin_and_loads_are_never_cached(cache, tmp_path, monkeypatch):
    path = _kube_dump(tmp_path / "node.rules")
    data = path.read_bytes()
    for _ in range(2):
        monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data)))
        ruleset = nfemu.load("-")
        assert ruleset.source == "<stdin>"
        nfemu.loads(data.decode())
    assert len(cache.parses) == 4 and not cache.dir.exists()
    assert ruleset == _uncached(path).ruleset


# ---- broken entries fall back to parsing, and are written again ----------------------------

@pytest.mark.parametrize("damage", ["truncate", "garbage", "empty", "wrong-key", "not-ruleset"])
def test_a_broken_entry_falls_back_and_is_rewritten(cache, tmp_path, damage):
    path = _kube_dump(tmp_path / "node.rules", extra=WARNING_LINE)
    parse.load_report_file(path)
    [entry] = cache.entries()
    data = entry.read_bytes()
    if damage == "truncate":
        entry.write_bytes(data[: len(data) // 2])
    elif damage == "garbage":
        entry.write_bytes(data[:40] + bytes(range(256)) * 8)
    elif damage == "empty":
        entry.write_bytes(b"")
    else:
        key = entry.name[len("load-"):-len(".pickle")]
        payload = loadcache._payload(key, _uncached(path))
        if damage == "wrong-key":
            payload = (payload[0], "0" * 64) + payload[2:]
        else:
            payload = payload[:3] + (("not", "a", "ruleset"),) + payload[4:]
        entry.write_bytes(loadcache._dumps(payload))
    report = parse.load_report_file(path)
    assert len(cache.parses) == 2, "the broken entry was used"
    reference = _uncached(path)
    assert report.ruleset == reference.ruleset and _warnings(report) == _warnings(reference)
    again = parse.load_report_file(path)
    assert len(cache.parses) == 2, "the entry was not written again"
    assert again.ruleset == reference.ruleset and _warnings(again) == _warnings(reference)


def test_an_entry_naming_other_code_is_refused(cache, tmp_path):
    """The unpickler takes nfemu's classes only: an entry that would call os.mkdir does not
    run it, and the file is parsed instead."""
    path = _kube_dump(tmp_path / "node.rules")
    parse.load_report_file(path)
    [entry] = cache.entries()
    victim = tmp_path / "made-by-the-entry"

    class Evil:
        def __reduce__(self):
            return (os.mkdir, (str(victim),))
    entry.write_bytes(loadcache._MAGIC + pickle.dumps(Evil()))
    report = parse.load_report_file(path)
    assert not victim.exists()
    assert len(cache.parses) == 2 and report.ruleset == _uncached(path).ruleset


def test_entries_others_can_write_are_refused(cache, tmp_path):
    path = _kube_dump(tmp_path / "node.rules")
    parse.load_report_file(path)
    [entry] = cache.entries()
    assert entry.stat().st_mode & 0o777 == 0o600
    assert cache.dir.stat().st_mode & 0o777 == 0o700
    entry.chmod(0o666)
    parse.load_report_file(path)
    assert len(cache.parses) == 2
    entry.chmod(0o600)
    parse.load_report_file(path)
    assert len(cache.parses) == 2           # rewritten by the previous read, then a hit
    cache.dir.chmod(0o777)
    parse.load_report_file(path)
    parse.load_report_file(path)
    assert len(cache.parses) == 4           # a directory others can write is not used
    cache.dir.chmod(0o700)


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to give a file to another user")
def test_entries_of_another_user_are_refused(cache, tmp_path):
    path = _kube_dump(tmp_path / "node.rules")
    parse.load_report_file(path)
    [entry] = cache.entries()
    os.chown(entry, 65534, 65534)
    parse.load_report_file(path)
    assert len(cache.parses) == 2


def test_a_symlinked_entry_is_not_followed(cache, tmp_path):
    path = _kube_dump(tmp_path / "node.rules")
    parse.load_report_file(path)
    [entry] = cache.entries()
    elsewhere = tmp_path / "elsewhere.pickle"
    entry.rename(elsewhere)
    entry.symlink_to(elsewhere)
    parse.load_report_file(path)
    assert len(cache.parses) == 2


def test_an_unwritable_cache_leaves_loads_working(cache, tmp_path, monkeypatch):
    blocker = tmp_path / "file-not-dir"
    blocker.write_text("")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocker))
    path = _kube_dump(tmp_path / "node.rules")
    assert nfemu.load(path) == _uncached(path).ruleset
    assert nfemu.load(path) == _uncached(path).ruleset


# ---- the bound ------------------------------------------------------------------------------

def test_only_the_most_recently_used_entries_are_kept(cache, tmp_path, monkeypatch):
    monkeypatch.setenv("NFEMU_CACHE_KEEP", "2")
    paths = [_kube_dump(tmp_path / f"n{i}.rules", services=60 + i) for i in range(3)]
    parse.load_report_file(paths[0])
    parse.load_report_file(paths[1])
    os.utime(cache.entries()[0], (1, 1))   # make the clock order explicit
    os.utime(cache.entries()[1], (1, 1))
    parse.load_report_file(paths[0])       # a hit: now the most recent
    assert len(cache.parses) == 2
    parse.load_report_file(paths[2])       # a third entry: the least recent (n1) goes
    assert len(cache.entries()) == 2
    parse.load_report_file(paths[0])
    assert len(cache.parses) == 3
    parse.load_report_file(paths[1])
    assert len(cache.parses) == 4


def test_xdg_cache_home_rules(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert loadcache.cache_dir() == tmp_path / "nfemu"
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    for value in ("", "relative/dir"):
        monkeypatch.setenv("XDG_CACHE_HOME", value)
        assert loadcache.cache_dir() == tmp_path / "home" / ".cache" / "nfemu"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert loadcache.cache_dir() == tmp_path / "home" / ".cache" / "nfemu"


# ---- the garbage collector after a load -----------------------------------------------------

def _generation_of(obj) -> int | None:
    import gc
    for generation in range(3):
        if any(o is obj for o in gc.get_objects(generation)):
            return generation
    return None


@pytest.mark.parametrize("hit", [False, True])
def test_a_load_leaves_its_objects_in_the_oldest_generation(cache, tmp_path, hit):
    import gc
    path = _kube_dump(tmp_path / "node.rules")
    if hit:
        parse.load_report_file(path)
    ruleset = parse.load_report_file(path).ruleset
    assert len(cache.parses) == 1
    rule = ruleset.table("nat").chain("KUBE-SERVICES").rules[-1]
    assert gc.is_tracked(rule)
    assert _generation_of(rule) == 2
    assert gc.get_freeze_count() == 0


def test_objects_the_program_froze_stay_frozen(cache, tmp_path):
    import gc
    path = _kube_dump(tmp_path / "node.rules")
    mine = [object()]          # a tracked object of the program, frozen by it
    gc.freeze()
    try:
        frozen = gc.get_freeze_count()
        nfemu.load(path)
        assert gc.get_freeze_count() >= frozen
        assert _generation_of(mine) is None    # still in the permanent generation
    finally:
        gc.unfreeze()


def test_constructor_builds_what_the_class_builds():
    """loadcache.constructor(cls)(*values) is cls(*values): same class, fields, equality,
    hash, and still frozen."""
    from nfemu.ext.comment import Comment
    from nfemu.ir import Address, Jump
    make = loadcache.constructor(Rule)
    assert make is not Rule
    values = ("KUBE-SERVICES", None, False, Address(0x0A600001, 0xFFFFFFFF), False, "", False,
              "eth0", True, 6, False, None, (Comment("c"),), Jump("KUBE-SVC-X"), None,
              nfemu.Family.IPV4, 12)
    built, reference = make(*values), Rule(*values)
    assert type(built) is Rule and built == reference and hash(built) == hash(reference)
    assert built.line == 12 and built.out_iface == "eth0"
    with pytest.raises(dataclasses.FrozenInstanceError):
        built.proto = 17
    assert loadcache.constructor(dict) is dict   # not a dataclass: the class itself


def test_a_value_the_reader_would_refuse_is_never_written(cache, tmp_path, monkeypatch):
    """An entry holding a class the unpickler refuses could never be read back: nothing is
    written, and the load still returns what the parser gives."""
    import decimal

    with pytest.raises(loadcache._Unreadable):
        loadcache._dumps((1, decimal.Decimal(1)))
    with pytest.raises(loadcache._Unreadable):
        loadcache._dumps((1, os.stat_result(range(10))))
    real = loadcache._payload
    monkeypatch.setattr(loadcache, "_payload",
                        lambda key, report: real(key, report) + (decimal.Decimal(1),))
    path = _kube_dump(tmp_path / "node.rules")
    assert nfemu.load(path) == _uncached(path).ruleset
    assert cache.entries() == []
