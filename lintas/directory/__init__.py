"""The directory: who is on the platform, in one place.

PostgreSQL holds it; every change is published to the compacted ``lintas.directory`` topic
so running services follow it without a restart. Components use this package, never the
tables::

    from lintas.directory import Directory

    async with await Directory.open(settings) as directory:
        app, key = await directory.add_application(
            {"id": "siak", "name": "SIAK", "opd": "dukcapil", "method": "sdk",
             "produces": ["dukcapil.kematian_dicatat.v1"]}
        )
"""

from ._base import DEFAULT_ROTATION_OVERLAP, KEY_IN_USE_WINDOW, entity_key, key_refusal
from ._directory import Directory
from .activity import ActivitySink, ActivityTracker
from .exceptions import (
    AlreadyExists,
    ConfirmationRequired,
    DirectoryError,
    InvalidApiKey,
    InvalidEntry,
    NotFound,
    Problem,
)
from .models import (
    PSE_NUMBER_PATTERN,
    ApiKeyInfo,
    Application,
    AppStatus,
    DeliveryMode,
    DirectoryData,
    IntegrationMethod,
    IntegrationStatus,
    IssuedKey,
    Opd,
    Subscriber,
    SubscriberStatus,
    Subscription,
    SubscriptionFilter,
    SubscriptionStatus,
    parse_entry,
)
from .routing import Route, matched_event_types, matches, project, route
from .transfer import (
    FORMAT_VERSION,
    ChangeAction,
    EntryChange,
    EntryKind,
    FieldChange,
    ImportPlan,
    ImportResult,
    apply_import,
    diff_directory,
    dump_yaml,
    export_yaml,
    load_yaml,
    plan_import,
)
from .view import (
    ApiKeyEntry,
    DirectoryChange,
    DirectorySnapshot,
    DirectoryUnavailable,
    DirectoryView,
    EntityKind,
    MalformedChange,
    decode_change,
)

__all__ = [
    # the API
    "Directory",
    "ActivitySink",
    "ActivityTracker",
    "DEFAULT_ROTATION_OVERLAP",
    "KEY_IN_USE_WINDOW",
    "entity_key",
    "key_refusal",
    # entries
    "ApiKeyInfo",
    "AppStatus",
    "Application",
    "DeliveryMode",
    "DirectoryData",
    "IntegrationMethod",
    "IntegrationStatus",
    "IssuedKey",
    "Opd",
    "PSE_NUMBER_PATTERN",
    "Subscriber",
    "SubscriberStatus",
    "Subscription",
    "SubscriptionFilter",
    "SubscriptionStatus",
    "parse_entry",
    # routing
    "Route",
    "matched_event_types",
    "matches",
    "project",
    "route",
    # YAML export and import
    "FORMAT_VERSION",
    "ChangeAction",
    "EntryChange",
    "EntryKind",
    "FieldChange",
    "ImportPlan",
    "ImportResult",
    "apply_import",
    "diff_directory",
    "dump_yaml",
    "export_yaml",
    "load_yaml",
    "plan_import",
    # the live view (running services)
    "ApiKeyEntry",
    "DirectoryChange",
    "DirectorySnapshot",
    "DirectoryView",
    "EntityKind",
    "decode_change",
    # errors
    "AlreadyExists",
    "ConfirmationRequired",
    "DirectoryError",
    "DirectoryUnavailable",
    "InvalidApiKey",
    "InvalidEntry",
    "MalformedChange",
    "NotFound",
    "Problem",
]
