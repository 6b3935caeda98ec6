"""What the directory's commands share: opening the Directory, output, parsing options."""

from __future__ import annotations

import asyncio
import datetime as dt
import re
from collections.abc import Awaitable, Callable, Iterable
from decimal import Decimal
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import orjson
import typer
from pydantic import BaseModel
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from lintas.exceptions import LintasError

from ._app import console, err_console, settings_of

if TYPE_CHECKING:
    from lintas.directory import Directory
    from lintas.schemas import EventType

__all__ = [
    "InvalidOption",
    "JsonOption",
    "Unreachable",
    "add_row",
    "as_json",
    "cell",
    "change",
    "escape",
    "field_table",
    "open_directory",
    "parse_duration",
    "parse_where",
    "print_json",
    "read",
    "when",
]

T = TypeVar("T")

JsonOption = Annotated[
    bool, typer.Option("--json", help="Print JSON for scripts instead of tables.")
]

# Opening the pool waits on PostgreSQL; a dead address must fail, not hang the terminal.
_OPEN_TIMEOUT_S = 30.0


class InvalidOption(LintasError):
    """A command-line option's value breaks its rule (syntax the directory never sees)."""

    def __init__(self, option: str, rule: str, value: str) -> None:
        super().__init__(f"Invalid {option} {value!r}: {rule}.")
        self.option = option
        self.rule = rule
        self.value = value


class Unreachable(LintasError):
    """A service the command needs (PostgreSQL, Kafka) did not answer."""

    retriable = True


async def open_directory(ctx: typer.Context, *, publish: bool) -> Directory:
    """Open the Directory with the CLI's settings; an unreachable database is one error."""
    import asyncpg

    from lintas.directory import Directory
    from lintas.endpoints import resolve_endpoints
    from lintas.postgres import redact_dsn

    settings = settings_of(ctx)
    try:
        return await asyncio.wait_for(Directory.open(settings, publish=publish), _OPEN_TIMEOUT_S)
    except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        dsn = redact_dsn(resolve_endpoints(settings).pg_dsn)
        raise Unreachable(
            f"Cannot open the directory's database {dsn}: {exc or type(exc).__name__}.",
            hint="Is PostgreSQL running (`lintas status`)? Check LINTAS_PG_DSN.",
        ) from exc


async def _work(directory: Directory, work: Callable[[Directory], Awaitable[T]]) -> T:
    import asyncpg

    try:
        return await work(directory)
    except asyncpg.UndefinedTableError as exc:
        raise Unreachable(
            "The directory's tables do not exist in this database.",
            hint="Run `lintas migrate` first.",
        ) from exc


def read(ctx: typer.Context, work: Callable[[Directory], Awaitable[T]]) -> T:
    """Run ``work`` against a Directory opened without Kafka (nothing to publish)."""

    async def run() -> T:
        directory = await open_directory(ctx, publish=False)
        try:
            return await _work(directory, work)
        finally:
            await directory.close()

    return asyncio.run(run())


def change(
    ctx: typer.Context,
    work: Callable[[Directory], Awaitable[T]],
    show: Callable[[T], None],
) -> T:
    """Run a change, show its result, then warn if it could not be published yet.

    The change is committed either way (the outbox keeps it); the warning tells the
    operator that running services will not see it until it is published.
    """

    async def run() -> tuple[T, BaseException | None]:
        directory = await open_directory(ctx, publish=True)
        try:
            result = await _work(directory, work)
            return result, directory.last_publish_error
        finally:
            await directory.close()

    result, error = asyncio.run(run())
    show(result)
    if error is not None:
        err_console.print(
            "[yellow]warning:[/] the change is saved but not yet published to lintas.directory "
            f"(Kafka: {escape(str(error) or type(error).__name__)}); running services do not "
            "see it yet. "
            "`lintas directory publish` will send it.",
            highlight=False,
        )
    return result


def _json_default(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, Decimal | bytes):
        return str(value)
    if isinstance(value, tuple | set | frozenset):
        return list(value)
    raise TypeError(f"not JSON serializable: {type(value).__name__}")


def as_json(value: Any) -> Any:
    """``value`` with models and Decimals turned into plain JSON types."""
    return orjson.loads(orjson.dumps(value, default=_json_default))


def print_json(value: Any) -> None:
    """Print ``value`` as indented JSON on stdout (plain print: rich would wrap it)."""
    typer.echo(orjson.dumps(value, default=_json_default, option=orjson.OPT_INDENT_2).decode())


def when(ctx: typer.Context, value: dt.datetime | None) -> str:
    """A timestamp in the display zone (WIB by default), or ``-``."""
    if value is None:
        return "-"
    local = value.astimezone(settings_of(ctx).display_zone)
    return f"{local:%Y-%m-%d %H:%M} {local.tzname()}"


def cell(value: Any) -> Text:
    """A table cell showing ``value`` as plain text (data is never read as rich markup)."""
    if isinstance(value, Text):
        return value
    if isinstance(value, list | tuple):
        value = ", ".join(str(v) for v in value)
    return Text("-" if value is None or value == "" else str(value))


def add_row(table: Table, *values: Any) -> None:
    """Add a row of :func:`cell` values."""
    table.add_row(*(cell(v) for v in values))


def field_table(title: str, rows: Iterable[tuple[str, Any]]) -> None:
    """Print a two-column table of an entry's fields."""
    table = Table(title=escape(title), show_header=False, title_justify="left")
    table.add_column("field", style="bold")
    table.add_column("value", overflow="fold")
    for name, value in rows:
        add_row(table, name, value)
    console.print(table)


_DURATION = re.compile(r"^([0-9]{1,6})([smhd])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


def parse_duration(option: str, text: str) -> dt.timedelta:
    """``30m``, ``24h``, ``7d`` (or ``0``) as a timedelta.

    Raises:
        InvalidOption: naming ``option`` and the accepted forms.
    """
    text = text.strip()
    if text == "0":
        return dt.timedelta(0)
    match = _DURATION.fullmatch(text)
    if match is None:
        raise InvalidOption(
            option, "must be a duration like 90s, 30m, 24h or 7d (0: the old ones end now)", text
        )
    return dt.timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})


def _field_type(event_types: Iterable[EventType], name: str) -> tuple[Any, bool] | None:
    """The Avro type of a top-level field (nulls stripped) and whether it is nullable."""
    for et in event_types:
        for field in et.schema["fields"]:
            if field["name"] != name:
                continue
            kind = field["type"]
            nullable = False
            if isinstance(kind, list):
                nullable = "null" in kind
                branches = [b for b in kind if b != "null"]
                kind = branches[0] if len(branches) == 1 else "string"
            return kind, nullable
    return None


def _typed(name: str, raw: str, kind: Any, nullable: bool) -> Any:
    """``raw`` as the field's type, so it compares like the decoded record's value."""
    if raw == "null" and nullable:
        return None
    base = kind.get("type") if isinstance(kind, dict) else kind
    logical = kind.get("logicalType") if isinstance(kind, dict) else None
    option = f"--where {name}"
    if base == "boolean":
        if raw.lower() not in ("true", "false"):
            raise InvalidOption(option, "must be true or false (a boolean field)", raw)
        return raw.lower() == "true"
    if base in ("int", "long") and logical is None:
        if not re.fullmatch(r"-?[0-9]+", raw):
            raise InvalidOption(option, "must be a whole number (an integer field)", raw)
        return int(raw)
    if base in ("float", "double") or logical == "decimal":
        try:
            number = Decimal(raw)
        except ArithmeticError:
            raise InvalidOption(option, "must be a number (a numeric field)", raw) from None
        if not number.is_finite():
            raise InvalidOption(option, "must be a finite number", raw)
        return int(number) if number == number.to_integral_value() else float(number)
    if base == "enum" and isinstance(kind, dict) and raw not in kind.get("symbols", ()):
        symbols = ", ".join(kind.get("symbols", ()))
        raise InvalidOption(option, f"must be one of {symbols}", raw)
    return raw


def parse_where(
    items: Iterable[str], event_types: Iterable[EventType]
) -> dict[str, str | int | float | bool | None]:
    """``--where field=value`` options as a filter, each value typed like its field.

    Fields the event types do not have are kept as text: the directory refuses them with
    its own message naming the field.

    Raises:
        InvalidOption: an item is not ``field=value``, or a value does not fit its field.
    """
    types = list(event_types)
    equals: dict[str, str | int | float | bool | None] = {}
    for item in items:
        name, sep, raw = item.partition("=")
        name = name.strip()
        if not sep or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
            raise InvalidOption(
                "--where",
                "must be FIELD=VALUE with a top-level field, like jenis_kelamin=PEREMPUAN",
                item,
            )
        if name in equals:
            raise InvalidOption("--where", f"names {name} twice", item)
        found = _field_type(types, name)
        equals[name] = raw if found is None else _typed(name, raw, *found)
    return equals
