"""The dashboard's data layer: one module per source, gathered by :class:`Dashboard`."""

from .dashboard import Dashboard
from .deadletters import DeadLetterWindow
from .follow import TopicFollower
from .kafka import KafkaInspector
from .sections import Panel, PanelState, to_jsonable
from .traffic import MetricPoint, TrafficWindow, parse_metric

__all__ = [
    "Dashboard",
    "DeadLetterWindow",
    "KafkaInspector",
    "MetricPoint",
    "Panel",
    "PanelState",
    "TopicFollower",
    "TrafficWindow",
    "parse_metric",
    "to_jsonable",
]
