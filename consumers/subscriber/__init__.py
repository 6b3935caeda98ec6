"""The subscriber SDK: Python systems read their own delivery topic directly.

::

    from lintas.consumers import DeliveredEvent, SeenEvents, Subscriber

    async with Subscriber("dinsos-app", settings=settings) as subscriber:
        async for event in subscriber:
            if event.typed:                       # the catalog model (every field delivered)
                print(event.data.nik)
            else:                                 # a projection: the delivered fields as a dict
                print(event.record["nik"])

At least once, offsets committed after the handler returned; see ``docs/subscriber-sdk.md``.
"""

from ._event import DeliveredEvent
from ._subscriber import Handler, Subscriber
from .exceptions import DeliveryTopicMissing, NotAuthorized, SubscriberClosed, SubscriberError
from .seen import SeenEvents

__all__ = [
    # the SDK
    "DeliveredEvent",
    "Handler",
    "SeenEvents",
    "Subscriber",
    # errors
    "DeliveryTopicMissing",
    "NotAuthorized",
    "SubscriberClosed",
    "SubscriberError",
]
