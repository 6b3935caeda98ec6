"""Standard Webhooks signatures: ``webhook-id``, ``webhook-timestamp``, ``webhook-signature``.

The signed content is ``<webhook-id>.<webhook-timestamp>.<body>``, signed with HMAC-SHA256
under each secret the subscriber has (``whsec_<base64 key>``) and sent as ``v1,<base64>``
signatures separated by spaces. During a secret rotation the old and the new secret are both
valid, so every valid secret signs: a receiver still on the old secret and one already on the
new one both find a signature they can check. The signing itself is the ``standardwebhooks``
reference library's, so what we send is what its ``verify`` accepts.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from standardwebhooks.webhooks import Webhook

__all__ = ["WEBHOOK_ID", "WEBHOOK_SIGNATURE", "WEBHOOK_TIMESTAMP", "WebhookSigner"]

WEBHOOK_ID = "webhook-id"
WEBHOOK_TIMESTAMP = "webhook-timestamp"
WEBHOOK_SIGNATURE = "webhook-signature"


class WebhookSigner:
    """Signs bodies with every valid secret of one subscriber.

    Usage::

        signer = WebhookSigner(["whsec_...new", "whsec_...old"])
        headers = signer.headers("9b2f0c6e-...", body, timestamp=int(time.time()))

    Args:
        secrets: the subscriber's valid secrets, newest first.

    Raises:
        ValueError: no secret, or one that is not a Standard Webhooks secret.
    """

    __slots__ = ("_webhooks", "count")

    def __init__(self, secrets: Sequence[str]) -> None:
        if not secrets:
            raise ValueError("at least one signing secret is needed")
        try:
            self._webhooks = tuple(Webhook(secret) for secret in secrets)
        except Exception as exc:  # binascii.Error, EmptyWebhookSecretError, ...
            raise ValueError(f"not a Standard Webhooks secret (whsec_<base64>): {exc}") from exc
        self.count = len(self._webhooks)

    def signature(self, msg_id: str, body: bytes, *, timestamp: int) -> str:
        """The ``webhook-signature`` value: one ``v1,<base64>`` per secret, space-separated."""
        # The library formats the timestamp itself from an aware datetime; build it in UTC.
        when = dt.datetime.fromtimestamp(timestamp, dt.UTC)
        data = body.decode()
        return " ".join(hook.sign(msg_id, when, data) for hook in self._webhooks)

    def headers(self, msg_id: str, body: bytes, *, timestamp: int) -> dict[str, str]:
        """The three Standard Webhooks headers for one attempt."""
        return {
            WEBHOOK_ID: msg_id,
            WEBHOOK_TIMESTAMP: str(timestamp),
            WEBHOOK_SIGNATURE: self.signature(msg_id, body, timestamp=timestamp),
        }
