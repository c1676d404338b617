"""Kubernetes manifests in YAML (as ``kubectl get -o yaml`` prints them) read into plain
Python objects that remember where each value was written.

Single objects, multi-document files (``---``) and ``kind: List`` (``items``) are accepted.
Every mapping and sequence read here is a :class:`MDict` / :class:`MList` carrying the
:class:`~nfemu.errors.Location` of its first character, and an :class:`MDict` also knows the
location of each key's value (``value_location(key)``), so that a bad field can be reported
as ``FILE:LINE:COL: error: ...`` (yaml node marks, 1-based). Malformed YAML raises
:class:`ManifestError` with the position PyYAML reports; nothing here lets a traceback out.
"""
from __future__ import annotations

import os
from pathlib import Path

import yaml

from ..errors import LocatedError, Location

__all__ = ["ManifestError", "MDict", "MList", "read_documents", "read_source", "objects_of"]


class ManifestError(LocatedError):
    """A manifest that is not valid YAML, or an object whose fields kube-proxy (or the API
    server's validation before it) would refuse."""


class MDict(dict):
    """A YAML mapping: a dict plus the location of the mapping and of each key's value."""

    location: Location
    value_locations: dict

    def value_location(self, key) -> Location:
        return self.value_locations.get(key, self.location)


class MList(list):
    """A YAML sequence: a list plus its location and the location of each item."""

    location: Location
    item_locations: list

    def item_location(self, index: int) -> Location:
        if 0 <= index < len(self.item_locations):
            return self.item_locations[index]
        return self.location


def _loc(file: str, mark) -> Location:
    return Location(file, mark.line + 1, mark.column + 1) if mark is not None else Location(file)


def _loader_class(file: str):
    class _Loader(yaml.SafeLoader):
        """SafeLoader whose mappings and sequences remember their marks."""

        def construct_mapping(self, node, deep=False):
            if not isinstance(node, yaml.MappingNode):
                raise yaml.constructor.ConstructorError(
                    None, None, f"expected a mapping node, but found {node.id}", node.start_mark)
            self.flatten_mapping(node)
            result = MDict()
            result.location = _loc(file, node.start_mark)
            result.value_locations = {}
            for key_node, value_node in node.value:
                key = self.construct_object(key_node, deep=True)
                try:
                    hash(key)
                except TypeError:
                    raise yaml.constructor.ConstructorError(
                        "while constructing a mapping", node.start_mark,
                        "found an unhashable key", key_node.start_mark) from None
                if key in result:
                    raise yaml.constructor.ConstructorError(
                        "while constructing a mapping", node.start_mark,
                        f"found duplicate key {key!r}", key_node.start_mark)
                result[key] = self.construct_object(value_node, deep=True)
                result.value_locations[key] = _loc(file, value_node.start_mark)
            return result

        def construct_sequence(self, node, deep=False):
            result = MList(self.construct_object(child, deep=True) for child in node.value)
            result.location = _loc(file, node.start_mark)
            result.item_locations = [_loc(file, child.start_mark) for child in node.value]
            return result

    def _map(loader, node):
        return loader.construct_mapping(node)

    def _seq(loader, node):
        return loader.construct_sequence(node)

    _Loader.add_constructor("tag:yaml.org,2002:map", _map)
    _Loader.add_constructor("tag:yaml.org,2002:seq", _seq)
    return _Loader


def read_documents(text: str, file: str = "<text>") -> list:
    """Every YAML document of ``text`` (empty documents dropped), as MDict/MList trees.
    Raises ManifestError at the position PyYAML reports for malformed YAML."""
    loader = _loader_class(file)(text)
    docs = []
    try:
        while loader.check_node():
            node = loader.get_node()
            if node is None:
                continue
            docs.append(loader.construct_document(node))
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = exc.problem or "malformed YAML"
        if exc.context:
            problem = f"{problem} ({exc.context})"
        raise ManifestError(f"malformed YAML: {problem}", _loc(file, mark)) from None
    except yaml.YAMLError as exc:     # e.g. a reader error (bad characters)
        mark = getattr(exc, "problem_mark", None)
        raise ManifestError(f"malformed YAML: {exc}", _loc(file, mark)) from None
    finally:
        loader.dispose()
    return [d for d in docs if d is not None]


def read_source(source) -> tuple[str, str]:
    """(text, name) of a source: a path (``str`` or ``os.PathLike``; ``-`` is standard
    input) or YAML text. A ``str`` is a path when it names an existing file or has no
    newline and ends in .yaml/.yml/.json; otherwise it is YAML text (named ``<text>``)."""
    if isinstance(source, os.PathLike):
        path = os.fspath(source)
    elif isinstance(source, str):
        if source == "-":
            import sys
            return sys.stdin.read(), "<stdin>"
        looks_like_path = "\n" not in source and (
            source.endswith((".yaml", ".yml", ".json")) or os.path.isfile(source))
        if not looks_like_path:
            return source, "<text>"
        path = source
    else:
        raise TypeError(f"a manifest source is a path or YAML text, not {type(source).__name__}")
    try:
        return Path(path).read_text(encoding="utf-8"), path
    except FileNotFoundError:
        raise ManifestError("no such file", Location(path)) from None
    except UnicodeDecodeError as exc:
        raise ManifestError(f"not UTF-8 text ({exc.reason} at byte {exc.start})",
                            Location(path)) from None
    except OSError as exc:
        raise ManifestError(exc.strerror or str(exc), Location(path)) from None


def objects_of(doc, file: str) -> list[MDict]:
    """The Kubernetes objects of one document: the document itself, or the ``items`` of a
    ``kind: List`` (or any ``*List`` kind, as ``kubectl get`` prints), flattened."""
    if not isinstance(doc, dict):
        where = getattr(doc, "location", Location(file, 1, 1))
        raise ManifestError("a Kubernetes object is a mapping with apiVersion and kind", where)
    kind = doc.get("kind")
    if isinstance(kind, str) and kind.endswith("List") and "items" in doc:
        items = doc["items"]
        if items is None:
            return []
        if not isinstance(items, list):
            raise ManifestError("items of a List must be a sequence", doc.value_location("items"))
        out: list[MDict] = []
        for item in items:
            out.extend(objects_of(item, file))
        return out
    if not isinstance(kind, str) or not kind:
        raise ManifestError("object has no kind", doc.location)
    return [doc]
