"""The names of the topics a worker reads and writes, under an optional prefix.

Production uses no prefix: the workers read ``opd.<opd>.<event>.v<N>`` and write
``lintas.canonical.<opd>.<event>.v<N>``, ``lintas.dlq`` and ``lintas.metrics``. A prefix
(``LINTAS_STREAMS__TOPIC_PREFIX=t1.``) moves all of them to ``t1.opd.*``, ``t1.lintas.*``:
a second platform, a benchmark or a test on a shared cluster.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from lintas.topics import DIRECTORY_TOPIC, DLQ_TOPIC, METRICS_TOPIC

__all__ = ["StreamTopics"]

_SOURCE = r"opd\.(?P<opd>[a-z][a-z0-9]*)\.(?P<event>[a-z][a-z0-9_]*)\.v(?P<major>[1-9][0-9]*)"


@dataclass(frozen=True, slots=True)
class StreamTopics:
    """Topic names for one prefix.

    Usage::

        names = StreamTopics("t1.")
        names.event_type_id("t1.opd.dukcapil.kematian_dicatat.v1")  # dukcapil.kematian_dicatat.v1
        names.canonical("dukcapil.kematian_dicatat.v1")  # t1.lintas.canonical.dukcapil....
    """

    prefix: str = ""

    @property
    def _source_re(self) -> re.Pattern[str]:
        return re.compile(re.escape(self.prefix) + _SOURCE)

    def is_source(self, topic: str) -> bool:
        """True for an OPD topic (``opd.<opd>.<event>.v<N>`` under the prefix)."""
        return self._source_re.fullmatch(topic) is not None

    def event_type_id(self, topic: str) -> str | None:
        """The event type id an OPD topic carries, or ``None`` for any other topic."""
        match = self._source_re.fullmatch(topic)
        return None if match is None else f"{match['opd']}.{match['event']}.v{match['major']}"

    def opd_of(self, topic: str) -> str | None:
        """The OPD an OPD topic belongs to."""
        match = self._source_re.fullmatch(topic)
        return None if match is None else match["opd"]

    def source(self, event_type_id: str) -> str:
        return f"{self.prefix}opd.{event_type_id}"

    def canonical(self, event_type_id: str) -> str:
        return f"{self.prefix}lintas.canonical.{event_type_id}"

    def deliver(self, subscriber: str) -> str:
        return f"{self.prefix}lintas.deliver.{subscriber}"

    @property
    def dlq(self) -> str:
        return self.prefix + DLQ_TOPIC

    @property
    def metrics(self) -> str:
        return self.prefix + METRICS_TOPIC

    @property
    def directory(self) -> str:
        return self.prefix + DIRECTORY_TOPIC
