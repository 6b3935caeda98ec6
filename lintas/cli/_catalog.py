"""``lintas catalog export``: the event catalog as an AsyncAPI 3.0 document."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from ._app import app, err_console, settings_of

catalog_app = typer.Typer(help="The published event catalog.", no_args_is_help=True)
app.add_typer(catalog_app, name="catalog")


@catalog_app.command("export")
def export(
    ctx: typer.Context,
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", dir_okay=False, help="Write here instead of stdout."),
    ] = None,
) -> None:
    """Write an AsyncAPI 3.0 document of every channel and message (Avro payloads).

    Needs no running service: channels and messages come from the shipped catalog; the
    server address is LINTAS_KAFKA_BOOTSTRAP when set.
    """
    from lintas.portal import asyncapi_json
    from lintas.schemas import load_catalog

    settings = settings_of(ctx)
    body = asyncapi_json(
        load_catalog(),
        kafka_bootstrap=settings.kafka_bootstrap,
        partitions=settings.kafka.partitions,
    )
    if output is None:
        sys.stdout.buffer.write(body + b"\n")
        return
    output.write_bytes(body + b"\n")
    err_console.print(f"wrote {output} ({len(load_catalog())} channels)", highlight=False)
