"""API keys and webhook signing secrets: generated with ``secrets``, kept hashed or sealed.

API keys only need verifying, so only a hash is stored. They are 256-bit random, which makes
a plain SHA-256 as strong as a password hash here (there is nothing to brute-force) and keeps
verification cheap on every gateway request. Webhook secrets must be usable for signing, so
they are sealed with Fernet under a key kept outside the database.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
import secrets
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

from lintas.exceptions import ConfigurationError

from .exceptions import InvalidApiKey

__all__ = [
    "API_KEY_PREFIX",
    "SecretBox",
    "hash_secret",
    "new_api_key",
    "new_webhook_secret",
    "parse_api_key",
    "secret_matches",
]

API_KEY_PREFIX = "lk"
_KEY = re.compile(r"^lk_([0-9a-f]{12})_([A-Za-z0-9_-]{43})$")


def hash_secret(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


def secret_matches(secret: str, digest: bytes) -> bool:
    return hmac.compare_digest(hash_secret(secret), digest)


def new_api_key() -> tuple[str, str, bytes]:
    """A fresh key: its public id, the whole token (shown once) and the hash to store."""
    key_id = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    return key_id, f"{API_KEY_PREFIX}_{key_id}_{secret}", hash_secret(secret)


def parse_api_key(token: str) -> tuple[str, str]:
    """Split a presented token into (key id, secret).

    Raises:
        InvalidApiKey: the token is not shaped like a Lintas key.
    """
    match = _KEY.fullmatch(token.strip())
    if match is None:
        raise InvalidApiKey("malformed key (expected lk_<12 hex>_<43 characters>)")
    return match.group(1), match.group(2)


def new_webhook_secret() -> str:
    """A Standard Webhooks signing secret: ``whsec_`` and 32 random bytes in base64."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


class SecretBox:
    """Seals secrets at rest with a Fernet key read from (or created in) ``key_file``."""

    def __init__(self, key_file: Path) -> None:
        self.key_file = key_file
        self._fernet: Fernet | None = None

    @property
    def fernet(self) -> Fernet:
        # Loaded on first use, so opening the directory only to read creates no key file.
        if self._fernet is None:
            self._fernet = Fernet(self._load_or_create(self.key_file))
        return self._fernet

    @staticmethod
    def _load_or_create(path: Path) -> bytes:
        field = "LINTAS_DIRECTORY__SECRET_KEY_FILE"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            # O_EXCL: two processes creating the key at once must not end with two keys.
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:
                pass
            else:
                with os.fdopen(fd, "wb") as out:
                    out.write(Fernet.generate_key())
        try:
            key = path.read_bytes().strip()
            Fernet(key)
        except OSError as exc:
            raise ConfigurationError(field, f"cannot read {path}: {exc.strerror}") from exc
        except ValueError as exc:
            raise ConfigurationError(field, f"{path} does not hold a Fernet key") from exc
        return key

    def seal(self, secret: str) -> bytes:
        return self.fernet.encrypt(secret.encode())

    def open(self, sealed: bytes) -> str:
        try:
            return self.fernet.decrypt(sealed).decode()
        except InvalidToken as exc:
            raise ConfigurationError(
                "LINTAS_DIRECTORY__SECRET_KEY_FILE",
                f"{self.key_file} is not the key the webhook secrets were sealed with",
            ) from exc
