"""The local runner: Kafka and PostgreSQL (and Lintas's services) without Docker."""

from .stack import ComponentStatus, LocalStack
from .state import ComponentState, StackState

__all__ = [
    "ComponentState",
    "ComponentStatus",
    "LocalStack",
    "StackState",
]
