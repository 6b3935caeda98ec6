"""The directory file format: YAML sections, export without secrets, load with every
problem named by its path (see :mod:`lintas.directory.transfer`)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import yaml
from pydantic import BaseModel

from ._directory import Directory
from .exceptions import InvalidEntry, Problem
from .models import (
    Application,
    DirectoryData,
    Opd,
    Subscriber,
    Subscription,
    parse_entry,
)

__all__ = ["FILE_KIND", "FORMAT_VERSION", "EntryKind", "dump_yaml", "export_yaml", "load_yaml"]

FORMAT_VERSION = 1
FILE_KIND = "directory file"

_HEADER = f"""\
# Lintas directory: OPDs, applications, subscribers and subscriptions.
# Format version {FORMAT_VERSION}. Written by `lintas directory export`; apply with
# `lintas directory import FILE [--dry-run] [--prune]`. Fields left out take their defaults.
# No secrets: API keys and webhook signing secrets stay in the database.
"""

Entry = Opd | Application | Subscriber | Subscription


class EntryKind(StrEnum):
    OPD = "opd"
    APPLICATION = "application"
    SUBSCRIBER = "subscriber"
    SUBSCRIPTION = "subscription"


@dataclass(frozen=True, slots=True)
class _Section:
    kind: EntryKind
    name: str
    """Top-level key in the file and field of :class:`DirectoryData`."""
    model: type[BaseModel]
    key: str
    """The identifying field, never changed by an import."""
    label: str
    """The entry's name in error messages, as the directory's own errors spell it."""
    fixed: tuple[str, ...]
    """Fields an existing entry cannot change (besides its key)."""


# Dependency order: each section refers only to those before it.
_SECTIONS = (
    _Section(EntryKind.OPD, "opds", Opd, "code", "OPD", ()),
    _Section(EntryKind.APPLICATION, "applications", Application, "id", "application", ("opd",)),
    _Section(EntryKind.SUBSCRIBER, "subscribers", Subscriber, "name", "subscriber", ("opd",)),
    _Section(
        EntryKind.SUBSCRIPTION,
        "subscriptions",
        Subscription,
        "name",
        "subscription",
        ("subscriber",),
    ),
)
_BY_KIND = {s.kind: s for s in _SECTIONS}


def _key(section: _Section, entry: BaseModel) -> str:
    return str(getattr(entry, section.key))


def _entries(data: DirectoryData, section: _Section) -> tuple[Entry, ...]:
    entries: tuple[Entry, ...] = getattr(data, section.name)
    return entries


def _by_key(section: _Section, entries: Iterable[Entry]) -> list[Entry]:
    return sorted(entries, key=lambda e: _key(section, e))


# -- export -----------------------------------------------------------------------------


class _Dumper(yaml.SafeDumper):
    """Indents lists under their key and writes multi-line text as literal blocks."""

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        super().increase_indent(flow, False)


_OTHER_BREAKS = ("\x85", "\u2028", "\u2029")


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = None
    if any(ch in value for ch in _OTHER_BREAKS):
        # YAML 1.1 reads these as line breaks wherever they stand unescaped, and PyYAML
        # writes them raw in plain and block styles: only double quotes escape them.
        style = '"'
    elif "\n" in value:
        style = "|"  # the emitter still quotes when a block cannot hold the text exactly
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _represent_str)


def _entry_dict(entry: BaseModel) -> dict[str, Any]:
    out = entry.model_dump(mode="json", exclude_defaults=True)
    equals = out.get("filter", {}).get("equals")
    if equals:
        # PostgreSQL's jsonb keeps its own key order; sorting keeps exports stable.
        out["filter"]["equals"] = dict(sorted(equals.items()))
    return out


def dump_yaml(data: DirectoryData) -> str:
    """The directory file for ``data``: entries by key, default-valued fields left out.

    Loading the text with :func:`load_yaml` gives ``data`` back exactly.
    """
    parts = [f"version: {FORMAT_VERSION}\n"]
    for section in _SECTIONS:
        entries = [_entry_dict(e) for e in _by_key(section, _entries(data, section))]
        # The emitter's width is a soft limit (it breaks after it): 88 keeps lines near 100.
        parts.append(
            yaml.dump(
                {section.name: entries},
                Dumper=_Dumper,
                sort_keys=False,
                allow_unicode=True,
                width=88,
            )
        )
    return _HEADER + "\n".join(parts)


async def export_yaml(directory: Directory) -> str:
    """The whole directory as YAML (no secrets, no timestamps), for ``lintas directory export``."""
    return dump_yaml(await directory.export_data())


# -- load -------------------------------------------------------------------------------


def _mark_problem(exc: yaml.YAMLError) -> Problem:
    if isinstance(exc, yaml.MarkedYAMLError):
        mark = exc.problem_mark or exc.context_mark
        what = ": ".join(p for p in (exc.context, exc.problem) if p) or "malformed YAML"
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "(file)"
        return Problem(where, f"YAML syntax error: {what}")
    return Problem("(file)", f"YAML syntax error: {exc}")


def _duplicate_keys(root: yaml.Node) -> list[Problem]:
    """Keys given twice in one mapping (``safe_load`` would silently keep the last)."""
    problems: list[Problem] = []
    seen_nodes: set[int] = set()
    stack: list[tuple[yaml.Node, str]] = [(root, "")]
    while stack:
        node, path = stack.pop()
        # Aliases share nodes: visit each once, so a recursive or exploding alias is cheap.
        if id(node) in seen_nodes:
            continue
        seen_nodes.add(id(node))
        if isinstance(node, yaml.MappingNode):
            lines: dict[str, int] = {}
            for key_node, value_node in node.value:
                child = path
                if isinstance(key_node, yaml.ScalarNode):
                    child = f"{path}.{key_node.value}" if path else key_node.value
                    line = key_node.start_mark.line + 1
                    if key_node.value in lines:
                        problems.append(
                            Problem(
                                child,
                                f"is given twice (lines {lines[key_node.value]} and {line}); "
                                "a key may appear once",
                            )
                        )
                    else:
                        lines[key_node.value] = line
                stack.append((value_node, child))
        elif isinstance(node, yaml.SequenceNode):
            stack.extend((item, f"{path}[{i}]") for i, item in enumerate(node.value))
    return sorted(problems, key=lambda p: p.field)


def _parse_yaml(text: str) -> tuple[Any, list[Problem]]:
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None, []
        return loader.construct_document(node), _duplicate_keys(node)
    except yaml.YAMLError as exc:
        return None, [_mark_problem(exc)]
    finally:
        loader.dispose()


def _entry_problem(section: _Section, prefix: str, problem: Problem) -> Problem:
    rule = problem.rule
    if rule == "Extra inputs are not permitted":
        known = ", ".join(section.model.model_fields)
        rule = f"is not a field of {section.label}s (they have: {known})"
    elif rule == "Input should be a valid string" and isinstance(problem.value, int | float):
        rule += "; YAML reads it as a number unless it is in quotes ('32.73')"
    where = prefix if problem.field == "(entry)" else f"{prefix}.{problem.field}"
    return Problem(where, rule, problem.value)


def _load_section(section: _Section, raw: Any, problems: list[Problem]) -> list[BaseModel]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        problems.append(Problem(section.name, f"must be a list of {section.label}s"))
        return []
    entries: list[BaseModel] = []
    first: dict[str, int] = {}
    for i, item in enumerate(raw):
        prefix = f"{section.name}[{i}]"
        if not isinstance(item, dict):
            problems.append(Problem(prefix, f"must be a mapping of a {section.label}'s fields"))
            continue
        try:
            entry = parse_entry(section.model, item, kind=section.label)
        except InvalidEntry as exc:
            problems.extend(_entry_problem(section, prefix, p) for p in exc.problems)
            continue
        key = _key(section, entry)
        if key in first:
            problems.append(
                Problem(
                    f"{prefix}.{section.key}",
                    f"is already used by {section.name}[{first[key]}]; "
                    f"each {section.label} appears once",
                    key,
                )
            )
            continue
        first[key] = i
        entries.append(entry)
    return entries


def load_yaml(text: str) -> DirectoryData:
    """Read a directory file, checking everything that needs only the file itself.

    Args:
        text: the file's content (format version 1).

    Returns:
        The entries, in file order.

    Raises:
        InvalidEntry: (kind ``directory file``) with one :class:`Problem` per broken rule,
            named by its path (``applications[2].pse_number``) or, for YAML syntax, its
            line: unknown sections or versions, keys given twice, invalid fields, an entry
            listed twice.
    """
    doc, problems = _parse_yaml(text)
    if problems and doc is None:
        raise InvalidEntry(FILE_KIND, None, problems)
    if not isinstance(doc, dict):
        rule = "is empty" if doc is None else "must be a mapping"
        sections = ", ".join(s.name for s in _SECTIONS)
        raise InvalidEntry(
            FILE_KIND, None, [Problem("(file)", f"{rule}; expected version: 1 and {sections}")]
        )
    known = {"version", *(s.name for s in _SECTIONS)}
    for key in doc:
        if key not in known:
            problems.append(
                Problem(
                    str(key),
                    "is not a section of a directory file (expected: "
                    + ", ".join(sorted(known))
                    + ")",
                )
            )
    version = doc.get("version")
    if "version" not in doc:
        problems.append(Problem("version", f"is required: the format version, {FORMAT_VERSION}"))
    elif type(version) is not int or version != FORMAT_VERSION:
        problems.append(
            Problem(
                "version", f"is not a format this Lintas reads (it reads {FORMAT_VERSION})", version
            )
        )
        raise InvalidEntry(FILE_KIND, None, problems)  # the rest may mean something else
    loaded = {s.name: tuple(_load_section(s, doc.get(s.name), problems)) for s in _SECTIONS}
    # Entries were validated one by one above; construct skips doing it again.
    data = DirectoryData.model_construct(
        opds=loaded["opds"],
        applications=loaded["applications"],
        subscribers=loaded["subscribers"],
        subscriptions=loaded["subscriptions"],
    )
    problems += _name_clashes(data)
    if problems:
        raise InvalidEntry(FILE_KIND, None, problems)
    return data


def _name_clashes(data: DirectoryData) -> list[Problem]:
    """Names the directory keeps unique (case-insensitively) that two entries share."""
    problems = []
    seen: dict[tuple[str, ...], int] = {}
    for i, opd in enumerate(data.opds):
        first = seen.setdefault(("opd", opd.name.lower()), i)
        if first != i:
            problems.append(
                Problem(f"opds[{i}].name", f"is already the name of opds[{first}]", opd.name)
            )
    for i, app in enumerate(data.applications):
        first = seen.setdefault(("app", app.opd, app.name.lower()), i)
        if first != i:
            problems.append(
                Problem(
                    f"applications[{i}].name",
                    f"is already the name of applications[{first}] of the same OPD",
                    app.name,
                )
            )
    return problems
