"""Errors of the portal.

Tree::

    LintasError
    └── PortalError
        ├── InvalidUser          a user name, role or password breaks a rule (names which)
        ├── UserExists           a portal user with that name exists already
        ├── UserNotFound         no portal user with that name
        ├── SignInFailed         wrong name or password, or a disabled user (one message for
        │                        all, so a caller cannot probe which names exist)
        ├── Forbidden            the signed-in user's role may not do this (HTTP 403)
        └── CsrfRejected         a form came without this session's CSRF token (HTTP 403)

Domain errors know nothing of HTTP; the routes map ``Forbidden`` and ``CsrfRejected`` to 403.
"""

from __future__ import annotations

from lintas.exceptions import LintasError

__all__ = [
    "CsrfRejected",
    "Forbidden",
    "InvalidUser",
    "PortalError",
    "SignInFailed",
    "UserExists",
    "UserNotFound",
]


class PortalError(LintasError):
    """Base of the portal's errors."""


class InvalidUser(PortalError):
    """A user entry breaks a rule; ``field`` names the field, ``rule`` the rule."""

    def __init__(self, field: str, rule: str) -> None:
        super().__init__(f"Invalid portal user: {field} {rule}.")
        self.field = field
        self.rule = rule


class UserExists(PortalError):
    def __init__(self, name: str) -> None:
        super().__init__(
            f"A portal user named {name!r} already exists.",
            hint="Choose another name, or set a new password with --reset.",
        )
        self.name = name


class UserNotFound(PortalError):
    def __init__(self, name: str) -> None:
        super().__init__(f"No portal user named {name!r}.", hint="See `lintas portal user list`.")
        self.name = name


class SignInFailed(PortalError):
    """Wrong name or password, or a disabled user; deliberately one error for all three."""

    def __init__(self) -> None:
        super().__init__("Sign-in failed: wrong user name or password.")


class Forbidden(PortalError):
    """The user is signed in but their role does not allow the action."""

    def __init__(self, action: str, role: str) -> None:
        super().__init__(f"The {role} role may not {action}.")
        self.action = action
        self.role = role


class CsrfRejected(PortalError):
    """A state-changing request without this session's CSRF token."""

    def __init__(self) -> None:
        super().__init__("The form's security token is missing or does not match this session.")
