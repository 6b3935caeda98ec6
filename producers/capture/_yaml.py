"""YAML with line numbers: every error in a source or mapping file names its line."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

import yaml
from pydantic import ValidationError

from .exceptions import ConfigInvalid

__all__ = ["Located", "load_located", "raise_validation"]

PathKey = tuple[str | int, ...]
# How pydantic names union branches in an error's location: not the user's keys.
_UNION_TAG = re.compile(r"^(str|int|float|bool|list|dict|[A-Z]\w*Spec)$|\[")


@dataclass(frozen=True)
class Located:
    """A parsed YAML document and the line of every node in it.

    Attributes:
        path: the file it was read from.
        data: the document as plain Python values (dicts, lists, scalars).
        lines: ``(key, index, ...)`` path of a node -> its 1-based line.
    """

    path: Path
    data: Any
    lines: dict[PathKey, int] = field(default_factory=dict)

    def line(self, where: Sequence[str | int]) -> int | None:
        """The line of the node at ``where``, or of its nearest ancestor that has one."""
        parts = tuple(where)
        while parts:
            if parts in self.lines:
                return self.lines[parts]
            parts = parts[:-1]
        return self.lines.get((), None)

    def sub(self, where: Sequence[str | int]) -> Located:
        """The part at ``where`` with its lines, re-rooted there (for an inline mapping)."""
        prefix = tuple(where)
        data = self.data
        for part in prefix:
            data = data[part]
        lines = {k[len(prefix) :]: v for k, v in self.lines.items() if k[: len(prefix)] == prefix}
        return Located(self.path, data, lines)


def load_located(path: Path) -> Located:
    """Parse ``path`` (safe YAML), remembering where each node starts.

    Raises:
        ConfigInvalid: the file cannot be read or is not valid YAML.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigInvalid(path, None, f"cannot be read ({exc.strerror})") from exc
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        lines: dict[PathKey, int] = {}
        data = _convert(loader, node, (), lines) if node is not None else None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        raise ConfigInvalid(path, line, f"not valid YAML: {exc.problem or exc}") from exc
    except yaml.YAMLError as exc:
        raise ConfigInvalid(path, None, f"not valid YAML: {exc}") from exc
    finally:
        loader.dispose()
    return Located(path, data, lines)


def _convert(
    loader: yaml.SafeLoader, node: yaml.Node, at: PathKey, lines: dict[PathKey, int]
) -> Any:
    # A mapping's entries are located at their key (where the eye looks), set by the caller.
    lines.setdefault(at, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        own: set[Any] = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            if key_node.value in own:
                raise yaml.MarkedYAMLError(
                    problem=f"duplicate key {key_node.value!r}", problem_mark=key_node.start_mark
                )
            own.add(key_node.value)
        # `<<: *anchor` merges: the anchored keys come first, this mapping's own override.
        loader.flatten_mapping(node)
        out: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                raise yaml.MarkedYAMLError(
                    problem="a key must be text or a number", problem_mark=key_node.start_mark
                )
            # Keys are taken as written: YAML 1.1 would read `on:` as true and `01:` as 1.
            name = str(key_node.value)
            lines[(*at, name)] = key_node.start_mark.line + 1
            out[name] = _convert(loader, value_node, (*at, name), lines)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_convert(loader, item, (*at, i), lines) for i, item in enumerate(node.value)]
    return loader.construct_object(node, deep=True)


def raise_validation(
    doc: Located,
    exc: ValidationError,
    *,
    what: str = "",
    error: type[ConfigInvalid] = ConfigInvalid,
) -> NoReturn:
    """Turn a pydantic error about ``doc`` into ``error`` at the right line."""
    errors = exc.errors()
    # A value that fits no branch of a union fails once per branch; the branch expecting
    # another type ("Input should be a valid string") says least, so prefer the others.
    first = min(errors, key=lambda e: e["type"].endswith("_type"))
    loc = [p for p in first["loc"] if isinstance(p, int) or not _UNION_TAG.search(p)]
    dotted = ".".join(str(p) for p in loc)
    message = first["msg"]
    if first["type"] == "extra_forbidden":
        message = "unknown key (not one this file may have)"
    others = len(errors) - 1
    if others:
        message += f" (and {others} more problem(s))"
    prefix = f"{what}: " if what else ""
    raise error(doc.path, doc.line(loc), f"{prefix}{dotted or 'the file'}: {message}") from exc
