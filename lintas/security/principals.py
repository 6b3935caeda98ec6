"""Who is who on the broker: one Kafka principal per application, subscriber and service.

Names (the SCRAM user name; the principal is ``User:<name>``)::

    app-<application id>    an OPD application that publishes  (User:app-siak)
    sub-<subscriber name>   a system that reads its own delivery topic  (User:sub-sikesra)
    svc-<role>              a platform service  (User:svc-worker)

A principal prefix (``LINTAS_SECURITY__PRINCIPAL_PREFIX=t1.``) puts a second platform, or a
test, on a shared cluster without touching the first one's principals: ``t1.app-siak``.
Application ids and subscriber names are slugs (lowercase letters, digits, ``-``), so the
kinds never collide. The platform's own super-user (``lintas``) is none of these: it is
never managed here.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

__all__ = [
    "APP_KIND",
    "SERVICE_KIND",
    "SUBSCRIBER_KIND",
    "PrincipalNames",
    "ServiceRole",
    "principal_of",
    "user_of",
]

APP_KIND = "app-"
SUBSCRIBER_KIND = "sub-"
SERVICE_KIND = "svc-"
_USER = "User:"


class ServiceRole(StrEnum):
    """Platform services that talk to Kafka, each with a principal of its own.

    The schema registry is not one of them: it keeps schemas in PostgreSQL and never
    connects to Kafka, so it gets no Kafka credential at all.
    """

    GATEWAY = "gateway"
    WORKER = "worker"
    SINK = "sink"
    DELIVER = "deliver"
    PORTAL = "portal"
    DIRECTORY = "directory"
    """The directory publisher: ``lintas apps|subscribers|directory`` and ``lintas up``."""


def principal_of(user: str) -> str:
    """``User:<user>`` for a SCRAM user name (a principal is returned unchanged)."""
    return user if user.startswith(_USER) else _USER + user


def user_of(principal: str) -> str:
    """The SCRAM user name of ``User:<name>`` (a bare name is returned unchanged).

    Raises:
        ValueError: a principal of another type (``Group:...``) or an empty name.
    """
    name = principal.removeprefix(_USER)
    if not name or (":" in name and not principal.startswith(_USER)):
        raise ValueError(f"{principal!r} is not a Kafka user principal (User:<name>)")
    return name


@dataclass(frozen=True, slots=True)
class PrincipalNames:
    """The names of managed principals under one prefix.

    Usage::

        names = PrincipalNames()
        names.app("siak")            # 'app-siak'
        names.service("worker")      # 'svc-worker'
        PrincipalNames("t1.").subscriber("sikesra")  # 't1.sub-sikesra'
    """

    prefix: str = ""

    def app(self, app_id: str) -> str:
        return f"{self.prefix}{APP_KIND}{app_id}"

    def subscriber(self, name: str) -> str:
        return f"{self.prefix}{SUBSCRIBER_KIND}{name}"

    def service(self, role: ServiceRole | str) -> str:
        return f"{self.prefix}{SERVICE_KIND}{ServiceRole(role).value}"

    def is_managed(self, user: str) -> bool:
        """True for a user name this prefix's applications, subscribers or services own."""
        rest = user.removeprefix(_USER)
        if not rest.startswith(self.prefix):
            return False
        rest = rest[len(self.prefix) :]
        return rest.startswith((APP_KIND, SUBSCRIBER_KIND, SERVICE_KIND))
