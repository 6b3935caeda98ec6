"""consumers component (see its issue)."""

# The subscriber SDK (the webhook deliverer is lintas.consumers.webhooks).
from .subscriber import DeliveredEvent, SeenEvents, Subscriber

__all__: list[str] = [
    # subscriber SDK
    "DeliveredEvent",
    "SeenEvents",
    "Subscriber",
]
