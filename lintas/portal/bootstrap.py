"""The first operator: ``lintas up`` creates ``admin`` once, with a random password on disk."""

from __future__ import annotations

import os
from pathlib import Path

from lintas.postgres import create_pool

from .users import PortalUsers, Role, new_password

__all__ = ["ADMIN_NAME", "admin_password_file", "ensure_admin"]

ADMIN_NAME = "admin"


def admin_password_file(data_dir: Path) -> Path:
    """Where ``lintas up`` keeps the first operator's password."""
    return data_dir / "secrets" / "portal-admin.password"


async def ensure_admin(dsn: str, data_dir: Path) -> Path | None:
    """Create operator ``admin`` when the portal has no user yet.

    The password is random and written (owner-only) to :func:`admin_password_file`, never
    printed. Returns that path when the user was created, None when users existed already.
    """
    pool = await create_pool(dsn, application_name="lintas-portal-bootstrap", max_size=1)
    try:
        users = PortalUsers(pool)
        if await users.count() > 0:
            return None
        password = new_password()
        path = admin_password_file(data_dir)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.parent.chmod(0o700)
        # Written before the user exists, so a crash in between never leaves an account
        # whose password nobody knows.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(password + "\n")
        await users.add(ADMIN_NAME, Role.OPERATOR, password)
        return path
    finally:
        await pool.close()
