"""Avro schema compatibility, as the schema registry checks it before registering a version.

Two questions, both answered with a :class:`CompatibilityResult` rather than an exception
(callers decide whether to raise):

* :func:`check_reader_writer` - can data written with one schema be read with another,
  by the schema-resolution rules of the Avro specification?
* :func:`check_compatibility` - may a new schema join a subject's existing versions under
  a :class:`CompatibilityMode`, Confluent's names and meanings::

    BACKWARD             the new schema reads data written with the latest version
    FORWARD              the latest version reads data written with the new schema
    FULL                 both
    *_TRANSITIVE         the same against every existing version, not just the latest
    NONE                 anything goes

Example::

    result = check_compatibility(new, [v1, v2, v3], CompatibilityMode.BACKWARD_TRANSITIVE)
    if not result.is_compatible:
        raise SchemaIncompatible(subject, version, result.messages)

Each :class:`Incompatibility` has a ``path`` in the style of Confluent's locations, with
field names instead of positions: ``/`` is the top-level type, ``/fields/<name>`` a record
field as the reader names it, ``items``/``values`` the elements of an array/map, and a
number the branch of the writer's union whose data cannot be read, e.g.
``/fields/payload/fields/alamat/fields/kode_wilayah`` or ``/fields/tags/items/1``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any

from lintas.schemas._compat_rules import (
    Incompatibility,
    IncompatibilityRule,
    find_incompatibilities,
    parse,
)
from lintas.schemas.exceptions import InvalidSchema

__all__ = [
    "CompatibilityMode",
    "CompatibilityResult",
    "Incompatibility",
    "IncompatibilityRule",
    "InvalidSchema",
    "check_compatibility",
    "check_reader_writer",
]


class CompatibilityMode(StrEnum):
    """A subject's compatibility level; values are those of Confluent's REST API."""

    NONE = "NONE"
    BACKWARD = "BACKWARD"
    BACKWARD_TRANSITIVE = "BACKWARD_TRANSITIVE"
    FORWARD = "FORWARD"
    FORWARD_TRANSITIVE = "FORWARD_TRANSITIVE"
    FULL = "FULL"
    FULL_TRANSITIVE = "FULL_TRANSITIVE"

    @property
    def is_transitive(self) -> bool:
        """Whether the new schema is checked against every existing version."""
        return self.value.endswith("_TRANSITIVE")

    @property
    def checks_backward(self) -> bool:
        """Whether the new schema must read data written with the existing versions."""
        return self.value.startswith(("BACKWARD", "FULL"))

    @property
    def checks_forward(self) -> bool:
        """Whether the existing versions must read data written with the new schema."""
        return self.value.startswith(("FORWARD", "FULL"))


@dataclass(frozen=True, slots=True)
class CompatibilityResult:
    """The outcome of a compatibility check.

    Attributes:
        is_compatible: whether the check passed; true exactly when there are no
            incompatibilities.
        incompatibilities: every reason the check failed, in schema order.
    """

    is_compatible: bool
    incompatibilities: tuple[Incompatibility, ...] = ()

    def __post_init__(self) -> None:
        if self.is_compatible == bool(self.incompatibilities):
            raise ValueError("is_compatible must be true exactly when there are no reasons")

    @classmethod
    def from_incompatibilities(
        cls, incompatibilities: Sequence[Incompatibility]
    ) -> CompatibilityResult:
        """Build a result that is compatible exactly when ``incompatibilities`` is empty."""
        return cls(not incompatibilities, tuple(incompatibilities))

    @property
    def messages(self) -> list[str]:
        """The human-readable message of each incompatibility."""
        return [incompatibility.message for incompatibility in self.incompatibilities]


def check_reader_writer(reader_schema: Any, writer_schema: Any) -> CompatibilityResult:
    """Check whether data written with ``writer_schema`` can be read with ``reader_schema``.

    Applies the schema-resolution rules of the Avro specification: records and other
    named types match by unqualified name or a reader alias; fields match by name or a
    reader field alias; a reader field the writer lacks needs a default; writer fields the
    reader lacks are skipped; int, long and float promote to wider numbers and string and
    bytes to each other; the reader needs every writer enum symbol unless it has an enum
    default; each branch of a writer union must be readable, and a reader union needs a
    branch for the writer's type; fixed types must agree on size. Logical types are
    ignored: only their underlying types take part.

    Args:
        reader_schema: the schema data is read with, as a dict, a list (union), a type
            name or JSON text.
        writer_schema: the schema the data was written with, in the same forms.

    Returns:
        The result, listing every incompatibility with its path.

    Raises:
        InvalidSchema: either schema is not valid Avro.
    """
    reader = parse(reader_schema, label="reader schema")
    writer = parse(writer_schema, label="writer schema")
    return CompatibilityResult.from_incompatibilities(find_incompatibilities(reader, writer))


def check_compatibility(
    new_schema: Any,
    existing_schemas: Sequence[Any],
    mode: CompatibilityMode,
    *,
    versions: Sequence[int] | None = None,
) -> CompatibilityResult:
    """Check whether ``new_schema`` may follow ``existing_schemas`` under ``mode``.

    Args:
        new_schema: the schema to register, in any form :func:`check_reader_writer` takes.
        existing_schemas: the subject's versions, oldest first; the last is the latest.
        mode: the subject's compatibility level (its string value is accepted too).
        versions: the version numbers of ``existing_schemas``, used in messages; by
            default 1, 2, 3, ... (pass the real ones once versions have been deleted).

    Returns:
        The result; each incompatibility carries ``version`` and ``direction`` and its
        message says which version failed in which direction.

    Raises:
        InvalidSchema: the new schema, or an existing version the mode compares it with,
            is not valid Avro.
        ValueError: ``versions`` does not have one number per existing schema.

    Note:
        The new schema is validated in every mode, NONE included, so that the registry
        never stores a schema nobody can use.
    """
    mode = CompatibilityMode(mode)
    new = parse(new_schema, label="new schema")
    numbers = list(versions) if versions is not None else list(range(1, len(existing_schemas) + 1))
    if len(numbers) != len(existing_schemas):
        raise ValueError(
            f"got {len(numbers)} version numbers for {len(existing_schemas)} existing schemas"
        )
    if mode is CompatibilityMode.NONE or not existing_schemas:
        return CompatibilityResult(True)
    pairs = list(zip(numbers, existing_schemas, strict=True))
    found: list[Incompatibility] = []
    for version, schema in pairs if mode.is_transitive else pairs[-1:]:
        label = f"version {version}"
        old = parse(schema, label=label)
        if mode.checks_backward:
            for item in find_incompatibilities(
                new, old, reader_label="the new schema", writer_label=label
            ):
                found.append(
                    replace(
                        item,
                        version=version,
                        direction="BACKWARD",
                        message=f"The new schema cannot read data written with {label} "
                        f"(BACKWARD): {item.message}",
                    )
                )
        if mode.checks_forward:
            for item in find_incompatibilities(
                old, new, reader_label=label, writer_label="the new schema"
            ):
                found.append(
                    replace(
                        item,
                        version=version,
                        direction="FORWARD",
                        message=f"{label.capitalize()} cannot read data written with the new "
                        f"schema (FORWARD): {item.message}",
                    )
                )
    return CompatibilityResult.from_incompatibilities(found)
