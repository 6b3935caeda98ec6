"""Putting the demo's Pemda in the directory, the same way an operator would.

The demo directory (``directory.yaml``) is imported with the directory's own YAML import
(:func:`~lintas.directory.load_yaml`, :func:`~lintas.directory.plan_import`,
:func:`~lintas.directory.apply_import`): the first run creates the 7 OPDs, 11 applications,
4 subscribers and 6 subscriptions; later runs find them and change nothing but the webhook
URLs, should the receiver's port have changed. Entries the directory holds besides the
demo's are left alone.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field

from lintas.directory import (
    DeliveryMode,
    Directory,
    DirectoryData,
    InvalidApiKey,
    InvalidEntry,
    NotFound,
    SubscriberStatus,
    apply_import,
    load_yaml,
    plan_import,
)
from lintas.kafka import KafkaConnection
from lintas.settings import KafkaSettings
from lintas.topics import platform_topics, sync_topics

from .apps import demo_directory_text
from .exceptions import DemoSetupFailed
from .state import DemoState

__all__ = ["DemoDirectory", "pause_webhooks", "prepare_directory", "webhook_subscribers"]


@dataclass(frozen=True, slots=True, kw_only=True)
class DemoDirectory:
    """What the import did, and the secrets the demo's parts need.

    Attributes:
        counts: entries per import action (``create``, ``update``, ``unchanged``, ...).
        opds, applications: how many of each the demo directory holds.
        api_keys: gateway application id -> its API key.
        new_keys: the applications that got a new key in this run.
        webhook_secrets: webhook subscriber -> its valid signing secrets.
    """

    counts: Mapping[str, int]
    opds: int
    applications: int
    api_keys: Mapping[str, str]
    new_keys: tuple[str, ...] = ()
    webhook_secrets: Mapping[str, list[str]] = field(default_factory=dict)

    @property
    def created(self) -> bool:
        return bool(self.counts.get("create"))


def webhook_subscribers() -> tuple[str, ...]:
    """The demo directory's webhook subscribers (the receiver serves one path for each)."""
    data = load_yaml(demo_directory_text())
    return tuple(s.name for s in data.subscribers if s.mode is DeliveryMode.WEBHOOK)


def _with_receiver(data: DirectoryData, url_of: Callable[[str], str]) -> DirectoryData:
    subscribers = tuple(
        s.model_copy(update={"webhook_url": url_of(s.name)})
        if s.mode is DeliveryMode.WEBHOOK
        else s
        for s in data.subscribers
    )
    return DirectoryData(
        opds=data.opds,
        applications=data.applications,
        subscribers=subscribers,
        subscriptions=data.subscriptions,
    )


async def prepare_directory(
    directory: Directory,
    *,
    state: DemoState,
    gateway_apps: Collection[str],
    webhook_url: Callable[[str], str],
    kafka: KafkaConnection,
    kafka_settings: KafkaSettings,
) -> DemoDirectory:
    """Import the demo directory and make sure every gateway application has a working key.

    The subscribers' delivery topics are created first (as ``lintas topics sync`` would),
    so that the workers and the deliverer find them as soon as the subscribers appear.
    Keys the demo keeps in ``state`` are checked against the directory; an application
    without a working one gets a new key, and its old keys end at once (their secrets are
    lost with the state). ``state`` is saved when a key changed.

    Args:
        directory: the platform's directory (publishing to ``lintas.directory``).
        state: the demo's state (its keys).
        gateway_apps: the applications that need an API key.
        webhook_url: subscriber name -> the URL the receiver serves it at.
        kafka, kafka_settings: where and how to create the delivery topics.

    Raises:
        DemoSetupFailed: the directory holds entries the demo's contradict, or a key could
            not be issued.
    """
    data = _with_receiver(load_yaml(demo_directory_text()), webhook_url)
    names = {s.name for s in data.subscribers} | {
        s.name for s in await directory.list_subscribers()
    }
    await sync_topics(kafka, platform_topics(kafka_settings, subscribers=sorted(names)))
    try:
        plan = await plan_import(directory, data)
        result = await apply_import(directory, plan)
    except InvalidEntry as exc:
        raise DemoSetupFailed(
            exc.message,
            hint="The directory holds entries that clash with the demo's "
            "(`lintas directory export` shows them). Run the demo on a data directory of its "
            "own: LINTAS_DATA_DIR=~/.local/share/lintas-demo lintas demo.",
        ) from exc
    keys = {k.app_id: k.token for k in result.api_keys if k.app_id in gateway_apps}
    new = list(keys)
    for app_id in gateway_apps:
        if app_id in keys:
            continue
        token = state.api_keys.get(app_id)
        if token is not None and await _works(directory, token, app_id):
            keys[app_id] = token
            continue
        try:
            issued = await directory.issue_key(app_id, overlap=dt.timedelta(0))
        except (InvalidEntry, NotFound) as exc:
            raise DemoSetupFailed(f"no API key for {app_id}: {exc.message}") from exc
        keys[app_id] = issued.token
        new.append(app_id)
    if keys != {a: t for a, t in state.api_keys.items() if a in gateway_apps}:
        state.api_keys = dict(keys)
        state.save()
    secrets = {
        s.name: await directory.webhook_secrets(s.name)
        for s in data.subscribers
        if s.mode is DeliveryMode.WEBHOOK
    }
    return DemoDirectory(
        counts=plan.counts(),
        opds=len(data.opds),
        applications=len(data.applications),
        api_keys=keys,
        new_keys=tuple(new),
        webhook_secrets=secrets,
    )


async def _works(directory: Directory, token: str, app_id: str) -> bool:
    try:
        app = await directory.verify_api_key(token)
    except InvalidApiKey:
        return False
    return app.id == app_id


async def pause_webhooks(directory: Directory, names: Collection[str]) -> list[str]:
    """Pause the webhook subscribers the demo's receiver plays, as it stops.

    With the receiver gone every delivery would fail, retry and trip the circuit breaker;
    paused, their events wait in the deliverer's queue until the next ``lintas demo``
    resumes them (the import sets them active again). Returns the names paused.
    """
    paused = []
    for name in names:
        try:
            sub = await directory.get_subscriber(name)
        except NotFound:
            continue
        if sub.status is SubscriberStatus.ACTIVE:
            await directory.set_subscriber_status(name, SubscriberStatus.PAUSED)
            paused.append(name)
    return paused
