"""Test harness for Lintas and for OPD developers: a real broker and database for tests.

``lintas.testing.services`` chooses, in this order: addresses given in
``LINTAS_KAFKA_BOOTSTRAP`` / ``LINTAS_PG_DSN``; a reachable Docker engine through
testcontainers; otherwise the local runner. The pytest fixtures built on it live in
``tests/conftest.py``.
"""

from .services import TestServices, docker_available, start_services

__all__ = ["TestServices", "docker_available", "start_services"]
