"""Fixtures shared by every test folder (keep this small; folder-specific ones live beside their tests)."""

from __future__ import annotations

import pytest


@pytest.fixture
def anyio_backend() -> str:
    """Run ``@pytest.mark.anyio`` tests on asyncio only (the clients use asyncio primitives)."""
    return "asyncio"
