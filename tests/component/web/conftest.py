"""The projection's own fixtures: a topic namespace and a database schema per module."""

from tests.component.projection.conftest import engine, env  # noqa: F401
