"""What the demo keeps between runs: ``<data_dir>/demo/state.json``, readable by its owner only.

Lintas keeps only hashes of API keys, so the keys the demo's gateway applications use
must be kept by the demo itself (like an OPD application keeps its key in its own
configuration); without them a second run would have to issue new ones. The webhook
receiver's port is kept too, so the subscribers' URLs stay the same from run to run.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass, field
from pathlib import Path

import orjson

__all__ = ["DemoState"]


@dataclass(kw_only=True)
class DemoState:
    """The demo's own state in a data directory."""

    path: Path
    api_keys: dict[str, str] = field(default_factory=dict)
    """Application id -> its API key (a secret: never print it)."""
    receiver_port: int = 0

    @classmethod
    def load(cls, data_dir: Path) -> DemoState:
        """The state of ``data_dir``'s demo; empty when there is none (or it is unreadable)."""
        path = data_dir / "demo" / "state.json"
        try:
            doc = orjson.loads(path.read_bytes())
        except (OSError, orjson.JSONDecodeError):
            return cls(path=path)
        keys = doc.get("api_keys") if isinstance(doc, dict) else None
        port = doc.get("receiver_port") if isinstance(doc, dict) else None
        return cls(
            path=path,
            api_keys={str(k): str(v) for k, v in keys.items()} if isinstance(keys, dict) else {},
            receiver_port=port if isinstance(port, int) and 0 <= port < 65536 else 0,
        )

    def save(self) -> None:
        """Write it atomically, owner-only (it holds API keys)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.parent.chmod(0o700)
        tmp = self.path.with_suffix(".tmp")
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(
                orjson.dumps(
                    {"api_keys": self.api_keys, "receiver_port": self.receiver_port},
                    option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS,
                )
            )
            fh.flush()
            os.fsync(fh.fileno())
        tmp.replace(self.path)
