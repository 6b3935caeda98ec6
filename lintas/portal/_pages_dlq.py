"""The dead-letter browser: what was refused and why, one record's content, and replay.

Reads ``lintas.dlq`` through :mod:`lintas.streams.deadletters` (what ``lintas dlq`` uses), so
the portal and the CLI list, select and replay the same way. Personal data stays hidden:
messages are masked, and a record's content is shown to operators only, with every field the
contract tags as personal data replaced (:mod:`.masking`).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from starlette.exceptions import HTTPException
from starlette.responses import Response
from starlette.routing import Route

from lintas.directory import Problem
from lintas.kafka import KafkaConnection
from lintas.schemas import AvroDeserializer, UnknownEventType
from lintas.schemas.registry import SchemaRegistryClient

from ._web import Page, page, render
from .auth import checked_form
from .catalog import pretty_json
from .masking import mask_record, mask_text

__all__ = ["routes"]

# The page lists the newest this many; the summary counts them all.
LIST_LIMIT = 500
_EPOCH = dt.datetime.min.replace(tzinfo=dt.UTC)


def _kafka(p: Page) -> KafkaConnection:
    if p.state.kafka is None:
        raise HTTPException(503)
    return p.state.kafka


async def _letters(p: Page) -> list[Any]:
    from lintas.streams.deadletters import read_dead_letters

    return await read_dead_letters(_kafka(p), p.state.settings.portal.dlq_topic)


async def _list(p: Page, *, problems: list[Problem] | None = None) -> Response:
    from lintas.streams.deadletters import select_dead_letters, summarize

    letters = await _letters(p)
    reasons = p.request.query_params.getlist("reason")
    opds = p.request.query_params.getlist("opd")
    chosen = select_dead_letters(letters, reasons=reasons, opds=opds)
    chosen.sort(key=lambda letter: letter.time or _EPOCH, reverse=True)
    summary = sorted(summarize(letters).items(), key=lambda kv: (-kv[1], kv[0]))
    return render(
        p.request,
        "dlq_list.html",
        t=p.t,
        user=p.user,
        nav="dlq",
        letters=chosen[:LIST_LIMIT],
        total=len(letters),
        shown=len(chosen),
        summary=summary,
        reasons=reasons,
        opds=opds,
        mask=mask_text,
        problems=problems or [],
        status=422 if problems else 200,
    )


@page()
async def dlq_list(p: Page) -> Response:
    return await _list(p)


@page(operator="read a dead letter's content")
async def dlq_detail(p: Page) -> Response:
    from lintas.streams.deadletters import decode_dead_letter, find_dead_letter
    from lintas.streams.exceptions import DeadLetterNotFound

    reference = p.request.path_params["reference"]
    try:
        letter = find_dead_letter(await _letters(p), reference, p.state.settings.portal.dlq_topic)
    except DeadLetterNotFound:
        raise HTTPException(404) from None
    event_type = None
    if letter.event_type:
        try:
            event_type = p.directory.catalog.get(letter.event_type)
        except UnknownEventType:
            event_type = None
    content = None
    problem = None
    if p.state.registry_url is not None:
        async with SchemaRegistryClient(p.state.registry_url, timeout=5.0) as registry:
            decoded = await decode_dead_letter(letter, AvroDeserializer(registry))
        if decoded.record is not None:
            content = pretty_json(mask_record(decoded.record, event_type))
        problem = decoded.problem
    return render(
        p.request, "dlq_detail.html", t=p.t, user=p.user, nav="dlq", letter=letter,
        content=content, problem=problem, mask=mask_text,
    )  # fmt: skip


@page(operator="replay dead letters")
async def dlq_replay(p: Page) -> Response:
    from lintas.streams.deadletters import replay_dead_letters, select_dead_letters

    form = await checked_form(p.request)
    references = [str(r) for r in form.getlist("ref")]
    if not references:
        return await _list(p, problems=[Problem("ref", p.t("dlq.choose_one"))])
    chosen = select_dead_letters(await _letters(p), references=references)
    results = await replay_dead_letters(
        _kafka(p), chosen, dlq_topic=p.state.settings.portal.dlq_topic, audit=p.state.audit
    )
    return render(
        p.request, "dlq_replayed.html", t=p.t, user=p.user, nav="dlq", results=results,
        missing=sorted(set(references) - {letter.reference for letter in chosen}),
    )  # fmt: skip


routes = [
    Route("/dlq", dlq_list, methods=["GET"]),
    Route("/dlq/replay", dlq_replay, methods=["POST"]),
    Route("/dlq/{reference}", dlq_detail, methods=["GET"]),
]
