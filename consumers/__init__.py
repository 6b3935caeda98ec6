"""consumers component (see its issue)."""

# The subscriber SDK (the webhook deliverer is lintas.consumers.webhooks).
from .subscriber import (
    DeliveredEvent,
    DeliveryTopicMissing,
    NotAuthorized,
    SeenEvents,
    Subscriber,
    SubscriberClosed,
    SubscriberError,
)

__all__: list[str] = [
    # subscriber SDK
    "DeliveredEvent",
    "SeenEvents",
    "Subscriber",
    # its errors
    "DeliveryTopicMissing",
    "NotAuthorized",
    "SubscriberClosed",
    "SubscriberError",
]
