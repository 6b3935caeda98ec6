"""``lintas worker``: run a stream worker (``lintas up`` starts one)."""

from __future__ import annotations

import typer

from ._app import app, settings_of


@app.command()
def worker(ctx: typer.Context) -> None:
    """Run a stream worker: validate OPD events, dead-letter the bad ones, write canonical events.

    Reads every opd.* topic (and new ones as they appear), writes lintas.canonical.*,
    lintas.dlq and lintas.metrics. Start more workers with the same LINTAS_STREAMS__APP_ID to
    share the partitions; stop one with Ctrl-C or SIGTERM. Settings: LINTAS_STREAMS__* (see
    docs/streams.md).
    """
    from lintas.endpoints import kafka_connection, registry_url
    from lintas.streams import RegistryRequired, run_worker

    settings = settings_of(ctx)
    url = registry_url(settings)
    if url is None:
        raise RegistryRequired()
    run_worker(settings, kafka_connection(settings), url)
