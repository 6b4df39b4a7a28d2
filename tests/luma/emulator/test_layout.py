"""The emulator's import directions, as moto keeps them: the backend never imports an adapter,
and the adapters never import the backend (both speak the wire types). Checked in fresh
interpreters, since this test process has long imported everything."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ADAPTERS = ("luma.emulator.transport", "luma.emulator.server")
BACKEND = ("luma.emulator.core", "luma.emulator.backend", "luma.emulator.media", "av")
REPO = Path(__file__).resolve().parents[3]


def loaded_after(*modules: str) -> set[str]:
    """Which ``luma.emulator`` modules (and PyAV) a fresh interpreter holds after importing ``modules``."""
    code = (
        f"import sys\nfor name in {modules!r}: __import__(name)\n"
        "print(' '.join(m for m in sys.modules if m.startswith('luma.emulator') or m == 'av'))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True,
                          cwd=REPO)
    return set(done.stdout.split())


@pytest.mark.parametrize("adapter", ADAPTERS)
def test_an_adapter_never_loads_the_backend(adapter: str) -> None:
    loaded = loaded_after("luma.emulator.wire", adapter)
    assert adapter in loaded
    assert not loaded & set(BACKEND), loaded


def test_the_backend_never_loads_an_adapter() -> None:
    loaded = loaded_after("luma.emulator.backend")
    assert "luma.emulator.backend" in loaded
    assert not loaded & set(ADAPTERS), loaded


def test_the_package_names_still_resolve_where_the_dashboard_imports_them() -> None:
    loaded = loaded_after("luma.emulator")
    assert not loaded & {*ADAPTERS, *BACKEND}, loaded  # importing the package loads only the settings
    from luma.emulator import Emulator, EmulatorConfig, EmulatorTransport, SampleClip
    from luma.emulator.core import DEFAULT_PUBLIC_BASE

    with Emulator(EmulatorConfig()) as emulator:
        assert isinstance(emulator.transport(), EmulatorTransport)
        assert emulator.public_base == DEFAULT_PUBLIC_BASE
    assert SampleClip.__module__ == "luma.emulator.config"
