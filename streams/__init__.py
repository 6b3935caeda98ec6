"""The stream workers: every OPD event passes here before anyone downstream sees it.

Stages, per record of every ``opd.<opd>.<event>.v<N>`` topic::

    validate       CloudEvents headers, wire format, schema id, Avro body, contract
                   patterns and domain rules (NIK, kode wilayah, dates, amounts)
    dead-letter    anything invalid goes to lintas.dlq with its reason (replayable)
    canonicalize   envelope + region names + payload to lintas.canonical.<opd>.<event>.v<N>
    deduplicate    by ce_source + ce_id over a horizon (a changelog-backed faust table)
    route          by the directory's subscriptions, minimised, to lintas.deliver.<subscriber>
    aggregate      per-minute counts per OPD, event type and outcome to lintas.metrics

Run one with ``lintas worker`` (``lintas up`` does); see ``docs/streams.md``::

    from lintas.streams import Processor, rules_for, canonical_schema
"""

from typing import Any

from .canonical import CanonicalEncoder, canonical_record, canonical_schema, region_names
from .dedup import ChangelogWriter, DedupIndex
from .dlq import DeadLetter, Reason, dead_letter_headers, parse_dead_letter
from .envelope import Envelope, read_envelope
from .eventtypes import EventTypeResolver, event_type_from_schema
from .exceptions import (
    DeadLetterNotFound,
    PartitionMismatch,
    RecordRejected,
    RegistryRequired,
    StreamsError,
)
from .metrics import MetricRecord, WindowCounter
from .metrics import Outcome as MetricOutcome
from .naming import StreamTopics
from .pipeline import Pipeline
from .processor import Accepted, Output, Processor, Rejected, SourceRecord
from .routing import Delivery, Router, projected_schema
from .rules import RULES, RuleContext, RuleSet, Violation, derived_rules, rules_for

# The faust app is imported on first use: the rules, the DLQ tools and the CLI do not need it.
_LAZY = {"StreamsApp", "prepare", "run_worker"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        from . import app

        return getattr(app, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    # the worker
    "StreamsApp",
    "prepare",
    "run_worker",
    "StreamTopics",
    # validation and canonicalization
    "Accepted",
    "Output",
    "Pipeline",
    "Processor",
    "Rejected",
    "SourceRecord",
    "Envelope",
    "read_envelope",
    "EventTypeResolver",
    "event_type_from_schema",
    "RULES",
    "RuleContext",
    "RuleSet",
    "Violation",
    "derived_rules",
    "rules_for",
    "CanonicalEncoder",
    "canonical_record",
    "canonical_schema",
    "region_names",
    # routing
    "Delivery",
    "Router",
    "projected_schema",
    # dedup and metrics
    "ChangelogWriter",
    "DedupIndex",
    "MetricOutcome",
    "MetricRecord",
    "WindowCounter",
    # dead letters
    "DeadLetter",
    "Reason",
    "dead_letter_headers",
    "parse_dead_letter",
    # errors
    "DeadLetterNotFound",
    "PartitionMismatch",
    "RecordRejected",
    "RegistryRequired",
    "StreamsError",
]
