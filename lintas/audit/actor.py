"""Who is acting: set once where a request or a command enters, read where it is recorded.

The components that record entries (the directory, ``lintas.security``, the registry) do
not know who called them, so the entry point says it::

    with acting_as("portal:siti"):
        await directory.issue_key("siak")     # recorded as portal:siti

Without it, the actor is the operating system user running the process (``os:root``):
what a ``lintas`` command run from a shell is. The value lives in a context variable, so
concurrent requests of one server never see each other's actor, and threads started with
:func:`asyncio.to_thread` inherit it.
"""

from __future__ import annotations

import getpass
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

__all__ = ["acting_as", "current_actor", "process_actor"]

_ACTOR: ContextVar[str | None] = ContextVar("lintas_audit_actor", default=None)


def process_actor() -> str:
    """``os:<login>``: the operating system user of this process."""
    try:
        return f"os:{getpass.getuser()}"
    except (KeyError, OSError):  # no passwd entry (some containers): the uid still says who
        import os

        return f"os:uid-{os.getuid()}"


def current_actor() -> str:
    """The actor set by the nearest :func:`acting_as`, else :func:`process_actor`."""
    return _ACTOR.get() or process_actor()


@contextmanager
def acting_as(actor: str) -> Iterator[str]:
    """Record everything inside the block as done by ``actor``.

    Raises:
        ValueError: ``actor`` is empty.
    """
    if not actor.strip():
        raise ValueError("an actor must not be empty")
    token = _ACTOR.set(actor)
    try:
        yield actor
    finally:
        _ACTOR.reset(token)
