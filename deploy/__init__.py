"""Deployment: the local runner (no Docker), docker-compose and Kubernetes manifests."""

__all__: list[str] = []
