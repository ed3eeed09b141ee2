from __future__ import annotations

import pytest

from services.grouping.config import GroupingConfig, load


@pytest.fixture(scope="session")
def config() -> GroupingConfig:
    """The shipped configuration (services/grouping/config/)."""
    return load({})
