"""The demo's webhook receiver checks signatures as a subscriber's endpoint must.

Requests are signed with the deliverer's own signer; the receiver verifies them with the
reference Standard Webhooks library. Local sockets only.
"""

from __future__ import annotations

import time

import httpx
import orjson

from lintas.consumers.webhooks import WebhookSigner
from lintas.demo.receiver import ReceivedWebhook, WebhookReceiver
from lintas.directory._secrets import new_webhook_secret

SUBSCRIBER = "dinsos-sipbansos"


def _request(
    event_id: str, secrets: list[str], data: dict[str, str]
) -> tuple[bytes, dict[str, str]]:
    body = orjson.dumps({"id": event_id, "type": "dukcapil.kematian_dicatat.v1", "data": data})
    headers = WebhookSigner(secrets).headers(event_id, body, timestamp=int(time.time()))
    return body, {**headers, "content-type": "application/json"}


async def test_signed_deliveries_are_taken_and_forged_ones_refused() -> None:
    old, new = new_webhook_secret(), new_webhook_secret()
    receiver = WebhookReceiver({SUBSCRIBER: [new]})
    seen: list[ReceivedWebhook] = []
    receiver.listen(seen.append)
    await receiver.start()
    try:
        url = receiver.url(SUBSCRIBER)
        async with httpx.AsyncClient() as client:  # one keep-alive connection
            body, headers = _request("e-1", [new, old], {"nik": "3273012108480001"})
            assert (await client.post(url, content=body, headers=headers)).status_code == 204
            body, headers = _request("e-2", [old], {"nik": "3273012108480001"})
            assert (await client.post(url, content=body, headers=headers)).status_code == 401
            unknown = url.replace(SUBSCRIBER, "nobody")
            assert (await client.post(unknown, content=body, headers=headers)).status_code == 404
            receiver.set_secrets(SUBSCRIBER, [old])  # the subscriber follows a rotation
            assert (await client.post(url, content=body, headers=headers)).status_code == 204
    finally:
        await receiver.stop()
    assert receiver.counts[SUBSCRIBER] == 2
    assert receiver.rejected[SUBSCRIBER] == 1
    assert [(r.webhook_id, r.verified) for r in seen] == [
        ("e-1", True),
        ("e-2", False),
        ("e-2", True),
    ]
    assert seen[0].event_type == "dukcapil.kematian_dicatat.v1"
    assert seen[0].data == {"nik": "3273012108480001"}


async def test_a_stale_signature_is_refused() -> None:
    secret = new_webhook_secret()
    receiver = WebhookReceiver({SUBSCRIBER: [secret]})
    await receiver.start()
    try:
        body = b'{"id": "e-9"}'
        headers = WebhookSigner([secret]).headers("e-9", body, timestamp=int(time.time()) - 3600)
        async with httpx.AsyncClient() as client:
            answer = await client.post(receiver.url(SUBSCRIBER), content=body, headers=headers)
        assert answer.status_code == 401
    finally:
        await receiver.stop()


async def test_it_prefers_its_last_port_and_falls_back_to_a_free_one() -> None:
    first = WebhookReceiver({})
    await first.start()
    try:
        second = WebhookReceiver({}, port=first.port)  # taken: another one is chosen
        await second.start()
        assert second.port not in (0, first.port)
        await second.stop()
    finally:
        await first.stop()
