"""What ``lintas apps`` and ``lintas subscribers`` do on Kafka: principals, ACLs, passwords.

The directory change comes first and is committed on its own; the broker is told
afterwards. When Kafka cannot be reached the change stays made, the operator is told what
failed and which command finishes the job, and the command exits non-zero. A password is
printed once and never logged.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import typer

from lintas.exceptions import LintasError

from ._app import console, err_console, settings_of
from ._dir_common import escape

if TYPE_CHECKING:
    from lintas.directory import Application, Subscriber
    from lintas.kafka import KafkaConnection
    from lintas.security import IssuedCredential, SecurityContext

__all__ = [
    "APP_NOTE",
    "SUBSCRIBER_NOTE",
    "KafkaAccess",
    "access_json",
    "app_principal",
    "issue_password",
    "remove_access",
    "report",
    "resync_access",
    "talks_to_kafka",
]

APP_NOTE = (
    "Store it now: it is not shown again (Kafka keeps only a salted hash). It lets the "
    "application publish to Kafka directly (producer SDK, capture adapter), to its own "
    "OPD's topics only."
)
SUBSCRIBER_NOTE = (
    "Store it now: it is not shown again (Kafka keeps only a salted hash). It lets the "
    "subscriber read its own delivery topic only (subscriber SDK)."
)


@dataclass(kw_only=True)
class KafkaAccess:
    """The outcome of a Kafka step: a new credential, what changed, or why it failed."""

    principal: str | None = None
    credential: IssuedCredential | None = None
    changes: tuple[str, ...] = ()
    error: LintasError | None = None


def _security(ctx: typer.Context) -> tuple[SecurityContext, KafkaConnection]:
    from lintas.endpoints import kafka_connection
    from lintas.security import SecurityContext

    settings = settings_of(ctx)
    return SecurityContext.from_settings(settings), kafka_connection(settings)


def app_principal(ctx: typer.Context, app_id: str, method: Any) -> str | None:
    """``User:app-<id>`` for an application that talks to Kafka itself, else None."""
    from lintas.directory import IntegrationMethod
    from lintas.security import PrincipalNames, principal_of

    if IntegrationMethod(method) is IntegrationMethod.GATEWAY:
        return None
    prefix = settings_of(ctx).security.principal_prefix
    return principal_of(PrincipalNames(prefix).app(app_id))


def talks_to_kafka(app: Application) -> bool:
    """Whether an application has (or had) a Kafka principal of its own."""
    from lintas.security import needs_principal

    return app.kafka_principal is not None or needs_principal(app)


def issue_password(ctx: typer.Context, entry: Application | Subscriber) -> KafkaAccess:
    """ACLs and a new SCRAM password for the entry (the old password ends)."""
    from lintas.security import provision

    try:
        security, conn = _security(ctx)
        credential = provision(security, conn, entry)
    except LintasError as exc:
        return KafkaAccess(error=exc)
    return KafkaAccess(principal=credential.principal, credential=credential)


def remove_access(
    ctx: typer.Context, entry: Application | Subscriber, *, keep_acls: bool
) -> KafkaAccess:
    """Delete the entry's SCRAM credential (and its ACLs unless ``keep_acls``)."""
    from lintas.security import deprovision

    try:
        security, conn = _security(ctx)
        principal = deprovision(security, conn, entry, keep_acls=keep_acls)
    except LintasError as exc:
        return KafkaAccess(error=exc)
    return KafkaAccess(principal=principal)


def resync_access(ctx: typer.Context, entry: Application | Subscriber) -> KafkaAccess:
    """Bring the entry's ACLs in line with it; its credential stays."""
    from lintas.security import sync_entry

    try:
        security, conn = _security(ctx)
        changes = sync_entry(security, conn, entry)
    except LintasError as exc:
        return KafkaAccess(error=exc)
    return KafkaAccess(changes=tuple(changes))


def access_json(access: KafkaAccess | None) -> dict[str, Any] | None:
    """The ``kafka`` part of a command's ``--json`` output."""
    if access is None:
        return None
    doc: dict[str, Any] = {"principal": access.principal}
    if access.credential is not None:
        doc |= {
            "username": access.credential.user,
            "password": access.credential.password,
            "mechanism": access.credential.mechanism,
        }
    if access.changes:
        doc["acl_changes"] = list(access.changes)
    if access.error is not None:
        doc["error"] = access.error.message
    return doc


def report(access: KafkaAccess | None, *, json: bool, retry: str, note: str = APP_NOTE) -> None:
    """Print a new credential once (unless ``json`` printed it), or the failure and how to
    finish; a failure exits 1 after everything else was shown.

    Args:
        access: the outcome; None when the entry has nothing to do with Kafka.
        json: the command printed JSON (which holds the credential) already.
        retry: the command that finishes the job once Kafka is reachable.
        note: what to do with a new password, printed under it.
    """
    if access is None:
        return
    if access.error is not None:
        err_console.print(
            f"[bold red]error:[/] Kafka: {escape(access.error.message)}", highlight=False
        )
        err_console.print(
            f"The directory change is saved. Once Kafka is reachable, run `{retry}`.",
            highlight=False,
        )
        raise typer.Exit(1)
    if json or access.credential is None:
        return
    cred = access.credential
    console.print(
        f"Kafka credential ({cred.mechanism}, principal {cred.principal}):", highlight=False
    )
    typer.echo(f"\n    username: {cred.user}\n    password: {cred.password}\n")
    console.print(f"[bold yellow]{note}[/]", highlight=False)
