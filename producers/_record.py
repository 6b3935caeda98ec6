"""An encoded Kafka record: what the pipeline sends and the spool stores.

Encoded once, before anything is sent, so forwarding from the spool needs neither the
registry nor the catalog.
"""

from __future__ import annotations

import struct
from typing import NamedTuple

__all__ = ["Headers", "Record", "decode_headers", "encode_headers"]

Headers = list[tuple[str, bytes]]

# Bookkeeping a stored record costs beyond its bytes (row, index entry, page slack): counted
# against the spool's bound so that many tiny records cannot outgrow it unnoticed.
RECORD_OVERHEAD = 64

_NAME = struct.Struct(">H")
_VALUE = struct.Struct(">I")


class Record(NamedTuple):
    """One Kafka record with its CloudEvents headers.

    A named tuple rather than a frozen dataclass: one is built per event on the hot path,
    and a tuple is several times cheaper to create.

    Attributes:
        topic: where it goes.
        key: the subject, UTF-8 (the NIK for citizen events).
        value: the Avro body in the Confluent wire format.
        headers: ``ce_*`` attributes and ``content-type``, then any extra headers.
        event_id: the ``ce_id``, kept apart for reports and logs (which never show keys or
            values: they hold personal data).
    """

    topic: str
    key: bytes
    value: bytes
    headers: Headers
    event_id: str

    @property
    def size(self) -> int:
        """Bytes it takes in the spool (an estimate, overhead included)."""
        return (
            len(self.topic)
            + len(self.key)
            + len(self.value)
            + sum(len(name) + len(value) + 6 for name, value in self.headers)
            + len(self.event_id)
            + RECORD_OVERHEAD
        )


def encode_headers(headers: Headers) -> bytes:
    """Headers as one blob: per header a 2-byte name length, the name, a 4-byte value
    length, the value (values are bytes, so JSON would not do)."""
    out = bytearray()
    for name, value in headers:
        raw = name.encode()
        out += _NAME.pack(len(raw))
        out += raw
        out += _VALUE.pack(len(value))
        out += value
    return bytes(out)


def decode_headers(blob: bytes) -> Headers:
    """The inverse of :func:`encode_headers`.

    Raises:
        ValueError: the blob is truncated.
    """
    headers: Headers = []
    pos = 0
    end = len(blob)
    while pos < end:
        if pos + _NAME.size > end:
            raise ValueError("truncated header blob")
        (name_len,) = _NAME.unpack_from(blob, pos)
        pos += _NAME.size
        name = blob[pos : pos + name_len].decode()
        pos += name_len
        if pos + _VALUE.size > end:
            raise ValueError("truncated header blob")
        (value_len,) = _VALUE.unpack_from(blob, pos)
        pos += _VALUE.size
        if pos + value_len > end:
            raise ValueError("truncated header blob")
        headers.append((name, blob[pos : pos + value_len]))
        pos += value_len
    return headers
