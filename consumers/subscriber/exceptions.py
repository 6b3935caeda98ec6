"""Errors of the subscriber SDK.

Tree (this component's part of :mod:`lintas.exceptions`)::

    LintasError
    └── SubscriberError            reading a subscriber's delivery topic went wrong
        ├── SubscriberClosed       the Subscriber was used before start() or after stop()
        ├── DeliveryTopicMissing   the subscriber's topic does not exist (yet)
        └── NotAuthorized          the broker refuses this principal a topic or the group
"""

from __future__ import annotations

from lintas.exceptions import LintasError

__all__ = ["DeliveryTopicMissing", "NotAuthorized", "SubscriberClosed", "SubscriberError"]


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


class NotAuthorized(SubscriberError):
    """The broker refuses this subscriber's principal on a topic or on its consumer group.

    Not retried: the credential or the ACLs must change first. To a principal that may not
    describe a topic, Kafka answers the same whether the topic exists or not, so a
    misspelled subscriber name is refused rather than reported missing.

    Attributes:
        name: the subscriber.
        principal: the Kafka principal (``User:sub-sikesra``).
        topic: the refused topic (its delivery topic, or its dead-letter topic), or None
            when the group is refused.
        group: the refused consumer group, or None when a topic is refused.
    """

    def __init__(
        self, name: str, principal: str, *, topic: str | None = None, group: str | None = None
    ) -> None:
        target = f"topic {topic}" if topic is not None else f"consumer group {group}"
        super().__init__(
            f"Kafka refuses {principal} on {target} (subscriber {name!r}).",
            hint=f"A subscriber reads only its own topic lintas.deliver.{name} with the groups "
            f"lintas-sub-{name} and lintas-sub-{name}.*, and its principal is sub-<its name>: "
            "check the name, the group and the credential, or ask the platform team to check "
            "its ACLs (`lintas security principals`; a disabled subscriber has none).",
        )
        self.name = name
        self.principal = principal
        self.topic = topic
        self.group = group
