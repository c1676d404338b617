"""A cache of loaded rulesets, so that reading the same dump again skips the parse.

Reading a 10,000-service kube-proxy dump (230,000 lines) through iptables-restore's line loop,
the option parsers and the kernel's load-time checks takes seconds of pure Python; reading
back the validated ``Ruleset`` that an earlier run built from the very same bytes takes a
fraction of that. ``nfemu.load(path)`` and ``nfemu.parse.load_report_file(path)`` (which
``nfemu trace`` and ``nfemu replay`` read their dump with) go through :func:`read_report`:

* The key is the SHA-256 of the file's bytes, together with the load options (family,
  ``counters``, the ipsets and nfacct objects assumed to exist) and a digest of nfemu itself:
  its version, the Python version, whether the compiled hot path runs, and the bytes of every
  source and data file of the package (``nfemu/**/*.py``, ``nfemu/data``, the grammar). Any
  change to nfemu's code therefore misses every older entry. The file's name is not part of
  the key: the same bytes under another name hit, and the ruleset's ``source`` and the
  warnings' locations are rewritten to the name given this time.
* Only loads without errors are stored (the ruleset and its warnings; the warnings are
  replayed on a hit exactly as a parse would give them). A file a real load would reject is
  parsed every time. Standard input (``-``) and ``nfemu.loads(text)`` are never cached, and
  files smaller than :data:`MIN_BYTES` are not either (they parse in milliseconds).
* Where: ``$XDG_CACHE_HOME/nfemu`` (``~/.cache/nfemu`` when the variable is unset, empty or
  not absolute, as the XDG base directory specification says), one file per entry
  (``load-KEY.pickle``), written to a temporary file and renamed into place, so a reader
  never sees half an entry. Only the :data:`KEEP` most recently used entries are kept
  (``NFEMU_CACHE_KEEP`` overrides; a hit refreshes an entry's time). ``NFEMU_NO_CACHE=1``
  turns the cache off, for reading and writing.
* Failure is never an error: an entry that cannot be read for any reason (truncated,
  corrupt, written by another format, refused by the checks below) is ignored and the file
  is parsed and the entry written again; a cache directory that cannot be created or written
  leaves the load uncached.

Trust model. Entries are Python pickles, and unpickling data can run code, so an entry must
only ever be data nfemu wrote itself. The cache lives in the user's own cache directory: who
can write there can already run code as the user (through their shell start-up files, for
instance), so the cache gives nobody new power as long as nobody else can write there. nfemu
checks that before reading: the directory and the entry must be owned by the user running
nfemu and writable by no one else (group and others), and the entry must be a regular file
(a symbolic link is not followed). The directory is created with mode 0700 and entries with
0600. As a second line of defence the unpickler only accepts the value classes of nfemu's IR
(dataclasses, enums and named tuples of ``nfemu/ir.py`` and ``nfemu/ext/``) and a few
built-in value types, never a function. A cache directory shared between users
(``XDG_CACHE_HOME`` pointing at a shared place) fails the ownership check and is not used.

The compiled form of the rules (``nfemu.compile.Program``) is made of closures and is not
cached; it is rebuilt from the ruleset on every run.

Every file load (hit, miss or standard input) ends by moving the objects it made into the
garbage collector's oldest generation (:func:`_settle_gc`), so that the collector does not
walk the whole ruleset twice more right after the load.
"""
from __future__ import annotations

import copyreg
import dataclasses
import gc
import hashlib
import io
import operator
import os
import pickle
import stat
import sys
import tempfile
import time
from functools import lru_cache
from pathlib import Path

#: entries kept (the most recently used); ``NFEMU_CACHE_KEEP`` overrides
KEEP = 8
#: files smaller than this are parsed every time (a few milliseconds) and never stored
MIN_BYTES = 64 * 1024
#: bumped whenever the layout of an entry changes
FORMAT = 1
_MAGIC = b"nfemu-loadcache\n"
_PREFIX, _SUFFIX = "load-", ".pickle"
# temporary files of writers that died are removed after this many seconds
_STALE_TMP = 3600


# ---- switches and places ------------------------------------------------------------------

def disabled() -> bool:
    """``NFEMU_NO_CACHE`` set to anything but empty or ``0`` turns the cache off."""
    return os.environ.get("NFEMU_NO_CACHE", "") not in ("", "0")


def cache_dir() -> Path:
    """``$XDG_CACHE_HOME/nfemu``, or ``~/.cache/nfemu`` (XDG: an unset, empty or relative
    ``XDG_CACHE_HOME`` is ignored)."""
    base = os.environ.get("XDG_CACHE_HOME", "")
    if not base or not os.path.isabs(base):
        base = os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "nfemu"


def _keep() -> int:
    try:
        return max(1, int(os.environ.get("NFEMU_CACHE_KEEP", "")))
    except ValueError:
        return KEEP


# ---- the key --------------------------------------------------------------------------------

def _package_files() -> list[Path]:
    """nfemu's source and data files: every ``.py`` of the package (extensions included),
    ``nfemu/data`` and the grammar the line reader is built from."""
    root = Path(__file__).resolve().parent
    files = [p for p in root.rglob("*") if p.is_file() and "__pycache__" not in p.parts
             and p.suffix in (".py", ".txt", ".lark")]
    grammar = root.parent / "grammars" / "iptables.lark"  # a source checkout
    if grammar.is_file():
        files.append(grammar)
    return sorted(files)


@lru_cache(maxsize=1)
def code_digest() -> str:
    """What an entry depends on besides its file: nfemu's version and sources, Python's
    version (the pickle's classes and their layout) and which twin of the hot path runs."""
    import nfemu

    h = hashlib.sha256()
    h.update(f"format {FORMAT}\0nfemu {nfemu.__version__}\0python "
             f"{sys.implementation.name} {sys.version_info[:2]}\0"
             f"compiled {nfemu.compiled()}\0".encode())
    root = Path(__file__).resolve().parent.parent
    for path in _package_files():
        try:
            rel = path.relative_to(root).as_posix()
        except ValueError:
            rel = path.name
        data = path.read_bytes()
        h.update(f"{rel}\0{len(data)}\0".encode())
        h.update(data)
    return h.hexdigest()


def _objects_key(objects) -> str:
    """The nfacct objects and ipsets assumed to exist, in a stable spelling."""
    from .validate import FRESH_NAMESPACE

    objects = FRESH_NAMESPACE if objects is None else objects

    def names(value):
        return "*" if value is None else ",".join(sorted(value))
    return f"nfacct={names(objects.nfacct)};ipsets={names(objects.ipsets)}"


def cache_key(data: bytes, family=None, counters: bool = False, objects=None) -> str:
    """The entry name for these bytes read with these options by this nfemu."""
    h = hashlib.sha256()
    h.update(code_digest().encode())
    h.update(f"\0family={int(family) if family is not None else 'guess'}\0counters="
             f"{bool(counters)}\0{_objects_key(objects)}\0".encode())
    h.update(hashlib.sha256(data).digest())
    return h.hexdigest()


# ---- writing --------------------------------------------------------------------------------

def _plain_fields(cls) -> tuple[str, ...] | None:
    """The field names of CLS when ``cls(*values)`` only stores VALUES in those fields: a
    slotted dataclass whose ``__init__`` is the generated one, every field an ``__init__``
    argument and no ``__post_init__``; None for any other class (pickled the usual way)."""
    if not (isinstance(cls, type) and dataclasses.is_dataclass(cls)
            and "__slots__" in cls.__dict__) or "<locals>" in cls.__qualname__:
        return None
    params = getattr(cls, "__dataclass_params__", None)
    if params is None or not params.init or hasattr(cls, "__post_init__"):
        return None
    init = cls.__dict__.get("__init__")
    # the generated __init__ is compiled from a string; a hand-written one has a real file
    if init is None or getattr(getattr(init, "__code__", None), "co_filename", "") != "<string>":
        return None
    fields = dataclasses.fields(cls)
    if any(not f.init for f in fields):
        return None
    return tuple(f.name for f in fields)


# builders by class, and by the global name an entry refers to them with
_BUILDERS: dict = {}
_BUILDER_PREFIX = "_build_"


def _builder_name(cls) -> str:
    return f"{_BUILDER_PREFIX}{cls.__module__}:{cls.__qualname__}".replace(".", "$")


def _builder(cls, names: tuple[str, ...]):
    """A callable that makes ``cls(*values)`` faster than the class itself.

    A frozen dataclass's ``__init__`` stores each field through ``object.__setattr__``
    (the class's own ``__setattr__`` refuses), a lookup and a call per field: for the
    170,000 rules of a big dump that is most of the time spent reading an entry back. The
    builder is a twin class with the same bases and slots, whose ``__init__`` stores the
    fields as plain attribute writes and then makes the object an instance of CLS (the
    layouts are the same, so Python allows assigning ``__class__``). The object that comes
    out is an ordinary instance of CLS with the same field values ``cls(*values)`` gives.
    When Python refuses the assignment for CLS, the builder is CLS itself."""
    builder = _BUILDERS.get(cls)
    if builder is not None:
        return builder
    params = ", ".join(f"v{i}" for i in range(len(names)))
    body = "".join(f"    o.{name} = v{i}\n" for i, name in enumerate(names))
    namespace = {"target": cls}
    exec(f"def __init__(o{', ' if params else ''}{params}):\n{body}    o.__class__ = target\n",
         namespace)
    name = _builder_name(cls)
    try:
        twin = type(cls)(name, cls.__bases__, {
            "__slots__": cls.__dict__["__slots__"], "__init__": namespace["__init__"],
            "__setattr__": object.__setattr__, "__module__": __name__, "__qualname__": name})
        probe = object.__new__(twin)
        probe.__class__ = cls          # TypeError when the layouts differ
        builder = twin
        # an entry names the builder as a global of this module (see _Unpickler)
        globals()[name] = twin
    except TypeError:
        builder = cls
    _BUILDERS[cls] = builder
    return builder


def constructor(cls):
    """``cls`` itself, or a faster callable with the same arguments and result, for a frozen
    slotted dataclass (see ``_builder``): the parser can build its rules with it too."""
    names = _plain_fields(cls)
    return cls if names is None else _builder(cls, names)


def _reducer(cls):
    """How the pickler writes an instance of CLS: ``(builder, field values)``; None when
    CLS is not a plain slotted dataclass."""
    names = _plain_fields(cls)
    if names is None:
        return None
    builder = _builder(cls, names)
    if not names:
        return lambda obj: (builder, ())
    values = operator.attrgetter(*names)
    if len(names) == 1:
        return lambda obj: (builder, (values(obj),))
    return lambda obj: (builder, values(obj))


def _builder_by_name(name: str):
    """The builder an entry names (``_build_MODULE:QUALNAME`` with dots as ``$``), made
    again in this process; only for a plain slotted dataclass of nfemu's own modules."""
    module, _, qualname = name[len(_BUILDER_PREFIX):].replace("$", ".").partition(":")
    if not _ir_module(module) or not qualname:
        raise pickle.UnpicklingError(f"refused builder {name}")
    import importlib

    obj = importlib.import_module(module)
    for part in qualname.split("."):
        obj = getattr(obj, part)
    names = _plain_fields(obj)
    if names is None:
        raise pickle.UnpicklingError(f"refused builder {name}")
    return _builder(obj, names)


class _Unreadable(Exception):
    """The ruleset holds a value the reading side would refuse: nothing is stored."""


class _Table(dict):
    """The pickler's dispatch table, filled on first sight of each class (a KeyError makes
    the pickler use the object's own ``__reduce_ex__``). It also refuses, before anything is
    written, a value of a class that ``_Unpickler`` would not accept: an entry that could
    never be read back would be parsed and written again at every load."""

    def __init__(self):
        super().__init__()
        self.usual: set = set()     # classes pickled the usual way

    def __missing__(self, cls):
        if cls in self.usual:
            raise KeyError(cls)
        reducer = _reducer(cls) if _ir_module(getattr(cls, "__module__", "")) else None
        if reducer is None:
            if (cls.__module__, cls.__qualname__) in _SAFE_BUILTINS:
                reducer = copyreg.dispatch_table.get(cls)
            elif not ((_value_class(cls) and _ir_module(cls.__module__))
                      or issubclass(cls, type)):   # a class as a value: by name, checked then
                raise _Unreadable(f"{cls.__module__}.{cls.__qualname__}")
            if reducer is None:
                self.usual.add(cls)
                raise KeyError(cls)
        self[cls] = reducer
        return reducer


_DISPATCH = _Table()


def _dumps(payload) -> bytes:
    out = io.BytesIO()
    out.write(_MAGIC)
    pickler = pickle.Pickler(out, protocol=pickle.HIGHEST_PROTOCOL)
    pickler.dispatch_table = _DISPATCH
    pickler.dump(payload)
    return out.getvalue()


def _store(directory: Path, key: str, payload) -> None:
    """Write an entry atomically (temporary file, then rename), then drop old entries."""
    _ensure_dir(directory)
    data = _dumps(payload)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=_SUFFIX, dir=directory)
    try:
        with os.fdopen(fd, "wb") as fp:
            fp.write(data)
        os.replace(tmp, directory / f"{_PREFIX}{key}{_SUFFIX}")
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    _prune(directory, _keep())


def _ensure_dir(directory: Path) -> None:
    if not directory.is_dir():
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    _check_owned(os.stat(directory, follow_symlinks=False), dir_ok=True)


def _prune(directory: Path, keep: int) -> None:
    """Keep the KEEP most recently used entries; remove temporary files of dead writers."""
    entries = []
    now = time.time()
    with os.scandir(directory) as it:
        for e in it:
            try:
                st = e.stat(follow_symlinks=False)
            except OSError:
                continue
            if e.name.startswith(_PREFIX) and e.name.endswith(_SUFFIX):
                entries.append((st.st_mtime, e.path))
            elif e.name.startswith(".tmp-") and now - st.st_mtime > _STALE_TMP:
                _unlink(e.path)
    entries.sort(reverse=True)
    for _, path in entries[keep:]:
        _unlink(path)


def _unlink(path) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


# ---- reading --------------------------------------------------------------------------------

class _Refused(Exception):
    """An entry or directory the trust checks refuse."""


def _check_owned(st: os.stat_result, dir_ok: bool = False) -> None:
    kind_ok = stat.S_ISDIR(st.st_mode) if dir_ok else stat.S_ISREG(st.st_mode)
    if not kind_ok:
        raise _Refused("not a regular file" if not dir_ok else "not a directory")
    if st.st_uid != os.geteuid():
        raise _Refused("owned by another user")
    if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise _Refused("writable by group or others")


# built-in value types an entry may hold besides nfemu's own classes
_SAFE_BUILTINS = {("builtins", n) for n in ("frozenset", "set", "bytearray", "complex", "range",
                                            "slice")}


def _ir_module(module: str) -> bool:
    """The modules the values of a ruleset are defined in."""
    return module == "nfemu.ir" or module.startswith("nfemu.ext.")


def _value_class(obj) -> bool:
    """A class of IR values: a dataclass, an enum or a named tuple (never a function, nor a
    class whose constructor could do more than hold values)."""
    import enum

    return isinstance(obj, type) and (dataclasses.is_dataclass(obj) or issubclass(obj, enum.Enum)
                                      or (issubclass(obj, tuple) and hasattr(obj, "_fields")))


class _Unpickler(pickle.Unpickler):
    """Accepts the value classes of nfemu's IR (``nfemu/ir.py``, ``nfemu/ext/``), their
    builders and a few built-in value types: nothing else, and never a function."""

    def find_class(self, module, name):
        if module == __name__ and name.startswith(_BUILDER_PREFIX):
            return _builder_by_name(name)
        if (module, name) in _SAFE_BUILTINS:
            return super().find_class(module, name)
        if _ir_module(module):
            obj = super().find_class(module, name)
            if _value_class(obj):
                return obj
        raise pickle.UnpicklingError(f"refused global {module}.{name}")


def _read_entry(directory: Path, key: str):
    """The payload of an entry, or None when there is none. Raises when one is there but
    cannot be used."""
    path = directory / f"{_PREFIX}{key}{_SUFFIX}"
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        return None
    with os.fdopen(fd, "rb") as fp:
        _check_owned(os.fstat(fd))
        _check_owned(os.stat(directory, follow_symlinks=False), dir_ok=True)
        data = fp.read()
        if not data.startswith(_MAGIC):
            raise _Refused("not an nfemu cache entry")
        stream = io.BytesIO(data)
        stream.seek(len(_MAGIC))
        payload = _Unpickler(stream).load()
        try:
            os.utime(fd)  # most recently used
        except OSError:
            pass
    return payload


def _payload(key: str, report) -> tuple:
    """What an entry holds: the key (checked on reading), the name the file had, the
    ruleset and each warning as (message, file, line, column)."""
    warns = tuple((w.message, w.location.file, w.location.line, w.location.column)
                  for w in report.warnings)
    return (FORMAT, key, report.ruleset.source, report.ruleset, warns)


def _report_from(payload, key: str, name: str):
    from .errors import LocatedWarning, Location
    from .ir import Ruleset
    from .parse import LoadReport

    fmt, stored_key, stored_name, ruleset, warns = payload
    if fmt != FORMAT or stored_key != key or type(ruleset) is not Ruleset:
        raise _Refused("entry does not match its key")
    if ruleset.source != name:
        ruleset = dataclasses.replace(ruleset, source=name)
    warnings = [LocatedWarning(message, Location(name if file == stored_name else file,
                                                 line, column))
                for message, file, line, column in warns]
    return LoadReport(ruleset, [], warnings)


# ---- the entry point ------------------------------------------------------------------------

def _settle_gc() -> None:
    """Move the objects a load made into the cyclic garbage collector's oldest generation,
    without walking them.

    A load makes about a million tracked objects (for 10,000 services) with the collector
    paused, so they all sit in its youngest generation: its next collections would walk all
    of them, once as young and again as middle-aged objects, about a second of work that
    lands wherever the program happens to allocate next (the compile, the first packet).
    ``gc.freeze()`` followed by ``gc.unfreeze()`` splices every generation into the oldest
    in constant time; they are then walked only by full collections, as long-lived data is.
    Skipped when the program froze objects itself (unfreezing would undo that). The only
    other effect: the caller's own young objects are promoted too, so a reference cycle
    among them is reclaimed at the next full collection instead of a young one."""
    if gc.get_freeze_count() == 0:
        gc.freeze()
        gc.unfreeze()


def read_report(path, family=None, counters: bool = False, objects=None):
    """``load_report`` of a file (``-`` for standard input, never cached), through the
    cache: a hit returns the ruleset and warnings an earlier identical load gave; a miss
    parses and, when the load has no error, stores the result."""
    from .errors import LocatedWarning
    from .ir import no_cyclic_gc
    from .parse import LoadReport, load_report

    if str(path) == "-":
        data = sys.stdin.buffer.read()
        name = "<stdin>"
        use = False
    else:
        data = Path(path).read_bytes()
        name = str(path)
        use = len(data) >= MIN_BYTES and not disabled()
    directory = key = None
    if use:
        try:
            directory = cache_dir()
            key = cache_key(data, family, counters, objects)
            with no_cyclic_gc():
                payload = _read_entry(directory, key)
                if payload is not None:
                    report = _report_from(payload, key, name)
                    _settle_gc()
                    return report
        except Exception:  # noqa: BLE001 - any failure to read means: parse and rewrite
            if key is None:
                use = False
    # as parse.read_text: bytes that are not UTF-8 are kept as surrogate escapes
    report: LoadReport = load_report(data.decode("utf-8", "surrogateescape"), name, family,
                                     counters, objects=objects)
    if use and not report.errors and all(type(w) is LocatedWarning for w in report.warnings):
        try:
            with no_cyclic_gc():
                _store(directory, key, _payload(key, report))
        except Exception:  # noqa: BLE001 - a cache that cannot be written is no cache
            pass
    _settle_gc()
    return report
