"""The whole directory as a YAML file: export, and import as a reviewed plan.

The file is for version control and for moving a directory between environments::

    # Lintas directory, format version 1 ...
    version: 1
    opds: [...]           # by code
    applications: [...]   # by id
    subscribers: [...]    # by name
    subscriptions: [...]  # by name

Each entry has the fields of its model (:class:`~lintas.directory.Opd`, ...); fields left
out take their defaults, and export leaves out every field equal to its default, so files
stay short and diffs small. Secrets (API keys, webhook signing secrets) and timestamps are
never in the file.

Import is two steps, so that ``--dry-run`` is simply the first one::

    data = load_yaml(text)                        # every problem named by its path
    plan = await plan_import(directory, data)     # create / update / unchanged / ...
    print(plan.render())
    result = await apply_import(directory, plan)  # one transaction: all or nothing

Importing a file the directory already matches plans nothing and writes nothing. Entries
missing from the file are left alone unless ``prune`` is asked for; even then nothing that
keys or history reference is deleted: subscriptions are deleted, applications retired,
subscribers disabled, and OPDs only reported.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import orjson
from pydantic import BaseModel

from lintas.schemas import Catalog

from . import _rules
from ._directory import Directory
from ._yaml_file import (
    _BY_KIND,
    _SECTIONS,
    FILE_KIND,
    FORMAT_VERSION,
    Entry,
    EntryKind,
    _by_key,
    _entries,
    _entry_dict,
    _entry_problem,
    _key,
    _name_clashes,
    _Section,
    dump_yaml,
    export_yaml,
    load_yaml,
)
from .exceptions import AlreadyExists, InvalidEntry, Problem
from .models import (
    Application,
    AppStatus,
    DeliveryMode,
    DirectoryData,
    IssuedKey,
    Opd,
    Subscriber,
    SubscriberStatus,
    Subscription,
)

__all__ = [
    "FORMAT_VERSION",
    "ChangeAction",
    "EntryChange",
    "EntryKind",
    "FieldChange",
    "ImportPlan",
    "ImportResult",
    "apply_import",
    "diff_directory",
    "dump_yaml",
    "export_yaml",
    "load_yaml",
    "plan_import",
]


class ChangeAction(StrEnum):
    """What an import does to one entry."""

    CREATE = "create"
    UPDATE = "update"
    UNCHANGED = "unchanged"
    DELETE = "delete"
    """A subscription missing from the file, with prune."""
    RETIRE = "retire"
    """An application missing from the file, with prune (its keys are revoked)."""
    DISABLE = "disable"
    """A subscriber missing from the file, with prune."""
    NOT_IN_FILE = "not-in-file"
    """Missing from the file and left as it is (always so for OPDs)."""

    @property
    def writes(self) -> bool:
        return self not in (ChangeAction.UNCHANGED, ChangeAction.NOT_IN_FILE)


# -- plan -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FieldChange:
    """One field of an entry: its value in the directory (None when new) and in the file."""

    field: str
    old: Any
    new: Any

    def to_dict(self) -> dict[str, Any]:
        return {"field": self.field, "old": self.old, "new": self.new}


@dataclass(frozen=True, slots=True)
class EntryChange:
    """What the import does to one entry."""

    kind: EntryKind
    key: str
    action: ChangeAction
    fields: tuple[FieldChange, ...] = ()
    """For create, every field the file sets; for update, retire or disable, what changes."""
    entry: Entry | None = None
    """The entry as it will be (create, update, retire, disable)."""
    path: str | None = None
    """Where the entry is in the file (``applications[2]``); None when it is not there."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind.value,
            "key": self.key,
            "action": self.action.value,
            "path": self.path,
            "fields": [f.to_dict() for f in self.fields],
        }


_SIGNS = {
    ChangeAction.CREATE: "+",
    ChangeAction.UPDATE: "~",
    ChangeAction.UNCHANGED: "=",
    ChangeAction.DELETE: "-",
    ChangeAction.RETIRE: "-",
    ChangeAction.DISABLE: "-",
    ChangeAction.NOT_IN_FILE: "?",
}
_NOTES = {
    ChangeAction.DELETE: "delete",
    ChangeAction.RETIRE: "retire; its API keys are revoked",
    ChangeAction.DISABLE: "disable",
}
_PRUNE_WOULD = {
    EntryKind.APPLICATION: "--prune would retire it",
    EntryKind.SUBSCRIBER: "--prune would disable it",
    EntryKind.SUBSCRIPTION: "--prune would delete it",
}


def _show(value: Any) -> str:
    return "(none)" if value is None else json.dumps(value, ensure_ascii=False)


@dataclass(frozen=True, slots=True)
class ImportPlan:
    """Every entry's change, in the order :func:`apply_import` makes them."""

    changes: tuple[EntryChange, ...]
    prune: bool = False

    @property
    def has_changes(self) -> bool:
        """True when applying the plan would write anything."""
        return any(c.action.writes for c in self.changes)

    def counts(self) -> dict[str, int]:
        """How many entries each action applies to (every action, zeros included)."""
        counts = dict.fromkeys((a.value for a in ChangeAction), 0)
        for change in self.changes:
            counts[change.action.value] += 1
        return counts

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able form (``lintas directory import --json``); no secrets in it."""
        return {
            "version": FORMAT_VERSION,
            "prune": self.prune,
            "has_changes": self.has_changes,
            "counts": self.counts(),
            "changes": [c.to_dict() for c in self.changes],
        }

    def render(self, *, show_unchanged: bool = False) -> str:
        """A diff-like listing for people: ``+`` create, ``~`` update, ``-`` remove.

        Args:
            show_unchanged: list unchanged entries too (``=``), not just their count.
        """
        lines = []
        for c in self.changes:
            if c.action is ChangeAction.UNCHANGED and not show_unchanged:
                continue
            head = f"{_SIGNS[c.action]} {c.kind.value} {c.key}"
            if c.action in _NOTES:
                head += f" ({_NOTES[c.action]})"
            elif c.action is ChangeAction.NOT_IN_FILE:
                head += f": not in the file, kept ({self._why_kept(c)})"
            lines.append(head)
            for f in c.fields:
                if c.action is ChangeAction.CREATE and f.field == _BY_KIND[c.kind].key:
                    continue  # already in the head line
                old = "" if c.action is ChangeAction.CREATE else f"{_show(f.old)} → "
                shown = old + _show(f.new)
                lines.append(f"    {f.field}: {shown}")
        lines.append(self._summary())
        return "\n".join(lines)

    def _why_kept(self, change: EntryChange) -> str:
        if change.kind is EntryKind.OPD:
            return "an import never removes OPDs"
        if self.prune:
            return "already " + ("retired" if change.kind is EntryKind.APPLICATION else "disabled")
        return _PRUNE_WOULD[change.kind]

    def _summary(self) -> str:
        n = self.counts()
        removed = n["delete"] + n["retire"] + n["disable"]
        if not self.has_changes:
            absent = f", {n['not-in-file']} not in the file" if n["not-in-file"] else ""
            return (
                "No changes: the directory already holds the file's entries as they are "
                f"({n['unchanged']} unchanged{absent})."
            )
        parts = [
            f"{n['create']} to create",
            f"{n['update']} to update",
            f"{removed} to remove",
            f"{n['unchanged']} unchanged",
        ]
        if n["not-in-file"]:
            parts.append(f"{n['not-in-file']} not in the file")
        return "Plan: " + ", ".join(parts) + "."


def _canonical(value: Any) -> bytes:
    # orjson tells 1, 1.0 and true apart, which == on Python values does not.
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)


def _shown_value(entry: BaseModel, name: str) -> Any:
    value = getattr(entry, name)
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json", exclude_defaults=True)
    return entry.model_dump(mode="json", include={name})[name]


def _field_changes(old: BaseModel, new: BaseModel) -> tuple[FieldChange, ...]:
    old_json, new_json = old.model_dump(mode="json"), new.model_dump(mode="json")
    return tuple(
        FieldChange(name, _shown_value(old, name), _shown_value(new, name))
        for name in new_json
        if _canonical(old_json[name]) != _canonical(new_json[name])
    )


def _created_fields(entry: BaseModel) -> tuple[FieldChange, ...]:
    return tuple(FieldChange(k, None, v) for k, v in _entry_dict(entry).items())


def _absent_change(section: _Section, entry: Entry, prune: bool) -> EntryChange:
    key = _key(section, entry)
    if prune and isinstance(entry, Subscription):
        return EntryChange(section.kind, key, ChangeAction.DELETE)
    if prune and isinstance(entry, Application) and entry.status is not AppStatus.RETIRED:
        after: Entry = entry.model_copy(update={"status": AppStatus.RETIRED})
        return EntryChange(
            section.kind, key, ChangeAction.RETIRE, _field_changes(entry, after), after
        )
    if prune and isinstance(entry, Subscriber) and entry.status is not SubscriberStatus.DISABLED:
        after = entry.model_copy(update={"status": SubscriberStatus.DISABLED})
        return EntryChange(
            section.kind, key, ChangeAction.DISABLE, _field_changes(entry, after), after
        )
    return EntryChange(section.kind, key, ChangeAction.NOT_IN_FILE)


def diff_directory(
    current: DirectoryData, target: DirectoryData, *, catalog: Catalog, prune: bool = False
) -> ImportPlan:
    """The plan that turns ``current`` into ``target`` (pure: no database).

    Args:
        current: the directory as it is (:meth:`Directory.export_data`).
        target: the file's entries (:func:`load_yaml`).
        catalog: the event catalog that event types and fields are checked against.
        prune: also remove what the file lacks (see the module doc).

    Raises:
        InvalidEntry: (kind ``directory file``) the file refers to OPDs, applications or
            subscribers that exist in neither, changes a field that cannot change, breaks a
            catalog rule, or takes a name another entry keeps.
    """
    problems = _check(current, target, catalog)
    if problems:
        raise InvalidEntry(FILE_KIND, None, problems)
    changes: list[EntryChange] = []
    for section in _SECTIONS:
        now = {_key(section, e): e for e in _entries(current, section)}
        indexed = sorted(enumerate(_entries(target, section)), key=lambda p: _key(section, p[1]))
        for i, entry in indexed:
            key, path = _key(section, entry), f"{section.name}[{i}]"
            old = now.get(key)
            if old is None:
                change = EntryChange(
                    section.kind, key, ChangeAction.CREATE, _created_fields(entry), entry, path
                )
            else:
                fields = _field_changes(old, entry)
                action = ChangeAction.UPDATE if fields else ChangeAction.UNCHANGED
                change = EntryChange(section.kind, key, action, fields, entry, path)
            changes.append(change)
    for section in reversed(_SECTIONS):
        wanted = {_key(section, e) for e in _entries(target, section)}
        absent = _by_key(
            section, (e for e in _entries(current, section) if _key(section, e) not in wanted)
        )
        changes += [_absent_change(section, entry, prune) for entry in absent]
    return ImportPlan(tuple(changes), prune=prune)


def _check(current: DirectoryData, target: DirectoryData, catalog: Catalog) -> list[Problem]:
    """Rules that need the directory or the catalog, for the entries the import writes."""
    problems: list[Problem] = []
    known = {
        s.kind: {_key(s, e) for e in (*_entries(current, s), *_entries(target, s))}
        for s in _SECTIONS
    }
    refs = (
        ("opd", EntryKind.OPD, "an OPD"),
        ("app_id", EntryKind.APPLICATION, "an application"),
        ("subscriber", EntryKind.SUBSCRIBER, "a subscriber"),
    )
    for section in _SECTIONS:
        now = {_key(section, e): e for e in _entries(current, section)}
        for i, entry in enumerate(_entries(target, section)):
            path = f"{section.name}[{i}]"
            old = now.get(_key(section, entry))
            if old == entry:
                continue  # unchanged entries are not written, so not checked again
            for name, kind, what in refs:
                value = getattr(entry, name, None)
                if value is not None and value not in known[kind]:
                    problems.append(
                        Problem(
                            f"{path}.{name}", f"is not {what} in the file or the directory", value
                        )
                    )
            for name in section.fixed:
                if old is not None and getattr(old, name) != getattr(entry, name):
                    problems.append(
                        Problem(
                            f"{path}.{name}",
                            f"cannot be changed (it is {getattr(old, name)!r} in the directory);"
                            f" add a new {section.label} instead",
                            getattr(entry, name),
                        )
                    )
            if isinstance(entry, Application):
                found = _rules.application_problems(entry, catalog)
            elif isinstance(entry, Subscription):
                found = _rules.subscription_problems(entry, catalog)
            else:
                found = []
            problems += [Problem(f"{path}.{p.field}", p.rule, p.value) for p in found]
    return problems + _name_clashes(target) + _taken_names(current, target)


def _taken_names(current: DirectoryData, target: DirectoryData) -> list[Problem]:
    """OPD names and application names (per OPD) that the directory keeps for another entry."""
    problems = []
    in_file = {o.code for o in target.opds}
    opd_names = {o.name.lower(): o.code for o in current.opds if o.code not in in_file}
    for i, opd in enumerate(target.opds):
        other = opd_names.get(opd.name.lower())
        if other is not None:
            problems.append(
                Problem(f"opds[{i}].name", f"is already the name of OPD {other!r}", opd.name)
            )
    apps_in_file = {a.id for a in target.applications}
    app_names = {
        (a.opd, a.name.lower()): a.id for a in current.applications if a.id not in apps_in_file
    }
    for i, app in enumerate(target.applications):
        other = app_names.get((app.opd, app.name.lower()))
        if other is not None:
            problems.append(
                Problem(
                    f"applications[{i}].name",
                    f"is already the name of application {other!r} of {app.opd}",
                    app.name,
                )
            )
    return problems


async def plan_import(
    directory: Directory, data: DirectoryData, *, prune: bool = False
) -> ImportPlan:
    """What importing ``data`` would change; writes nothing (this is ``--dry-run``).

    Args:
        directory: the directory to compare with.
        data: the file's entries, from :func:`load_yaml`.
        prune: also plan removing what the file lacks (see the module doc).

    Raises:
        InvalidEntry: see :func:`diff_directory`.
    """
    current = await directory.export_data()
    return diff_directory(current, data, catalog=directory.catalog, prune=prune)


# -- apply ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ImportResult:
    """What an import wrote, and the secrets it created (show them once, never log them)."""

    applied: tuple[EntryChange, ...] = ()
    api_keys: tuple[IssuedKey, ...] = ()
    """The first key of each application the import created (retired ones get none)."""
    webhook_secrets: dict[str, str] = field(default_factory=dict)
    """Subscriber name -> signing secret, for webhook subscribers created (or switched to
    webhook without a valid secret) by the import."""

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able form; it contains the new secrets."""
        return {
            "applied": [c.to_dict() for c in self.applied],
            "api_keys": [k.model_dump(mode="json") for k in self.api_keys],
            "webhook_secrets": dict(self.webhook_secrets),
        }


async def apply_import(directory: Directory, plan: ImportPlan) -> ImportResult:
    """Make the plan's changes in one transaction: all of them, or none.

    Changes are made in dependency order (OPDs, applications, subscribers, subscriptions,
    then removals in reverse); a plan without changes writes nothing at all, not even to
    the outbox. Each change is checked again as it is made, so a directory changed since
    the plan fails the import rather than half-applying it.

    Returns:
        The applied changes with the API keys and webhook secrets created (shown once).

    Raises:
        InvalidEntry: (kind ``directory file``) a change was refused; nothing was written.
    """
    todo = tuple(c for c in plan.changes if c.action.writes)
    if not todo:
        return ImportResult()
    keys: list[IssuedKey] = []
    secrets: dict[str, str] = {}
    async with directory.transaction():
        for change in todo:
            try:
                await _apply(directory, change, keys, secrets)
            except InvalidEntry as exc:
                where = change.path or f"{change.kind.value} {change.key}"
                moved = [_entry_problem(_BY_KIND[change.kind], where, p) for p in exc.problems]
                raise InvalidEntry(FILE_KIND, None, moved) from exc
            except AlreadyExists as exc:
                where = change.path or f"{change.kind.value} {change.key}"
                problem = Problem(
                    f"{where}.{exc.field}",
                    f"is taken by another {exc.kind} in the directory (it must be unique)",
                    exc.key,
                )
                raise InvalidEntry(FILE_KIND, None, [problem]) from exc
    return ImportResult(todo, tuple(keys), secrets)


def _changed(change: EntryChange) -> set[str]:
    return {f.field for f in change.fields}


def _values(entry: BaseModel, *, without: tuple[str, ...] = ()) -> dict[str, Any]:
    """The fields to update: all but the key, which the update methods take on its own."""
    key = next(s.key for s in _SECTIONS if isinstance(entry, s.model))
    return {k: v for k, v in entry if k != key and k not in without}


async def _apply(
    directory: Directory, change: EntryChange, keys: list[IssuedKey], secrets: dict[str, str]
) -> None:
    entry, key, action = change.entry, change.key, change.action
    if action is ChangeAction.DELETE:
        await directory.remove_subscription(key)
    elif action is ChangeAction.RETIRE:
        await directory.retire_application(key)
    elif action is ChangeAction.DISABLE:
        await directory.set_subscriber_status(key, SubscriberStatus.DISABLED)
    elif isinstance(entry, Opd):
        if action is ChangeAction.CREATE:
            await directory.add_opd(entry)
        else:
            await directory.update_opd(key, **_values(entry))
    elif isinstance(entry, Application):
        await _apply_application(directory, change, entry, keys)
    elif isinstance(entry, Subscriber):
        await _apply_subscriber(directory, change, entry, secrets)
    elif isinstance(entry, Subscription):
        if action is ChangeAction.CREATE:
            await directory.add_subscription(entry)
        else:
            await directory.update_subscription(key, **_values(entry))


async def _apply_application(
    directory: Directory, change: EntryChange, app: Application, keys: list[IssuedKey]
) -> None:
    if change.action is ChangeAction.CREATE:
        _, issued = await directory.add_application(
            app, issue_key=app.status is not AppStatus.RETIRED
        )
        if issued is not None:
            keys.append(issued)
        return
    changed = _changed(change)
    if "status" in changed and app.status is AppStatus.RETIRED:
        # Retiring also revokes the keys, which a plain status update would not.
        if changed - {"status"}:
            await directory.update_application(app.id, **_values(app, without=("status",)))
        await directory.retire_application(app.id)
    else:
        await directory.update_application(app.id, **_values(app))


async def _apply_subscriber(
    directory: Directory, change: EntryChange, sub: Subscriber, secrets: dict[str, str]
) -> None:
    if change.action is ChangeAction.CREATE:
        _, secret = await directory.add_subscriber(sub)
        if secret is not None:
            secrets[sub.name] = secret
        return
    await directory.update_subscriber(sub.name, **_values(sub))
    # A switch to webhook adds no secret by itself; without one nothing could be signed.
    if (
        "mode" in _changed(change)
        and sub.mode is DeliveryMode.WEBHOOK
        and not await directory.webhook_secrets(sub.name)
    ):
        secrets[sub.name] = await directory.rotate_webhook_secret(sub.name, overlap=None)
