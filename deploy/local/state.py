"""The local stack's state file: which component runs where, written by ``lintas up``.

``<data_dir>/stack.json`` is what ``lintas status`` reports and what components and tests
read to find the broker and the database when no address is configured.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from lintas.exceptions import DataDirCorrupt

STATE_FILE = "stack.json"


@dataclass(kw_only=True)
class ComponentState:
    """One running (or last known) component of the local stack."""

    name: str
    pid: int | None = None
    port: int | None = None
    ports: dict[str, int] = field(default_factory=dict)
    marker: str | None = None
    """A string in the process's command line that proves a pid is still ours."""
    log: str | None = None
    started_s: float | None = None
    """Seconds it took to become ready at its last start."""

    @property
    def address(self) -> str | None:
        """``127.0.0.1:<port>``, or None for a component that does not listen."""
        return f"127.0.0.1:{self.port}" if self.port else None

    @property
    def url(self) -> str | None:
        """``http://127.0.0.1:<port>`` for an HTTP service."""
        return f"http://{self.address}" if self.address else None


@dataclass(kw_only=True)
class StackState:
    data_dir: str
    components: dict[str, ComponentState] = field(default_factory=dict)
    kafka_user: str | None = None
    kafka_password_file: str | None = None
    kafka_ca_file: str | None = None
    """The local CA certificate that clients of the TLS listener trust."""
    pg_user: str | None = None
    pg_passfile: str | None = None
    pg_dir: str | None = None

    @classmethod
    def path_for(cls, data_dir: Path) -> Path:
        return data_dir / STATE_FILE

    @classmethod
    def load(cls, data_dir: Path) -> StackState | None:
        path = cls.path_for(data_dir)
        if not path.exists():
            return None
        try:
            raw: dict[str, Any] = json.loads(path.read_text())
            comps = {k: ComponentState(**v) for k, v in raw.pop("components", {}).items()}
            return cls(components=comps, **raw)
        except (ValueError, TypeError) as exc:
            raise DataDirCorrupt(str(path), f"the state file is not valid ({exc})") from exc

    def save(self) -> None:
        path = self.path_for(Path(self.data_dir))
        path.parent.mkdir(parents=True, exist_ok=True)
        # Write then rename, so a crash never leaves a half-written state file behind.
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".stack.", suffix=".json")
        with os.fdopen(fd, "w") as fh:
            json.dump(asdict(self), fh, indent=2, sort_keys=True)
        os.replace(tmp, path)
