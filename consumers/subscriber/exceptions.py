"""Errors of the subscriber SDK.

Tree (this component's part of :mod:`lintas.exceptions`)::

    LintasError
    └── SubscriberError            reading a subscriber's delivery topic went wrong
        ├── SubscriberClosed       the Subscriber was used before start() or after stop()
        └── DeliveryTopicMissing   the subscriber's topic does not exist (yet)
"""

from __future__ import annotations

from lintas.exceptions import LintasError

__all__ = ["DeliveryTopicMissing", "SubscriberClosed", "SubscriberError"]


class SubscriberError(LintasError):
    """Base of the subscriber SDK's errors."""


class SubscriberClosed(SubscriberError):
    """The Subscriber is not running (``state`` says whether it is new or stopped)."""

    def __init__(self, name: str, state: str) -> None:
        super().__init__(
            f"Subscriber {name!r} is {state}.",
            hint="Use it inside `async with Subscriber(...)`, or call start() first.",
        )
        self.name = name
        self.state = state


class DeliveryTopicMissing(SubscriberError):
    """The subscriber's delivery topic does not exist: it is not in the directory yet, or the
    platform's topics were not synced."""

    retriable = True

    def __init__(self, name: str, topic: str) -> None:
        super().__init__(
            f"The delivery topic {topic!r} of subscriber {name!r} does not exist.",
            hint="Ask the platform team to register the subscriber (`lintas subscribers add`) "
            "and run `lintas topics sync`.",
        )
        self.name = name
        self.topic = topic
