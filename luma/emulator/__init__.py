"""An offline emulator of kie.ai's Luma modify-video API, its upload host and its file host.

Use it in-process (demo mode, tests)::

    emulator = Emulator()
    client = LumaClient(api_key="demo", transport=emulator.transport())

or as a loopback server: ``python -m luma.emulator --host 127.0.0.1 --port 8765`` (see ``--help``).
"""

from __future__ import annotations

from .core import Emulator, EmulatorConfig, SampleClip
from .transport import EmulatorTransport

__all__ = ["Emulator", "EmulatorConfig", "EmulatorTransport", "SampleClip"]
