"""producers component (see its issue)."""

__all__: list[str] = []
