"""The Lintas portal: dashboard, event catalog, applications and subscriptions.

A server-rendered Starlette application in Bahasa Indonesia (English on a switch), with
operator and viewer sign-in. It reads the platform only through its public APIs: the
directory (:mod:`lintas.directory`), the catalog and registry (:mod:`lintas.schemas`), and
Kafka's own offsets and topics. Serve it with ``lintas portal`` (``lintas up`` does)::

    from lintas.portal import PortalConfig, create_app

    app = create_app(PortalConfig.from_settings(settings))
"""

from .app import PortalConfig, create_app, serve, session_secret
from .asyncapi import AVRO_FORMAT, asyncapi_document, asyncapi_json
from .exceptions import (
    CsrfRejected,
    Forbidden,
    InvalidUser,
    PortalError,
    SignInFailed,
    UserExists,
    UserNotFound,
)
from .i18n import DEFAULT_LANGUAGE, LANGUAGES, Translator, messages
from .users import MIN_PASSWORD_LENGTH, PortalUser, PortalUsers, Role, new_password

__all__ = [
    # the application
    "PortalConfig",
    "create_app",
    "serve",
    "session_secret",
    # users
    "MIN_PASSWORD_LENGTH",
    "PortalUser",
    "PortalUsers",
    "Role",
    "new_password",
    # language
    "DEFAULT_LANGUAGE",
    "LANGUAGES",
    "Translator",
    "messages",
    # the published catalog
    "AVRO_FORMAT",
    "asyncapi_document",
    "asyncapi_json",
    # errors
    "CsrfRejected",
    "Forbidden",
    "InvalidUser",
    "PortalError",
    "SignInFailed",
    "UserExists",
    "UserNotFound",
]
