"""An offline emulator of kie.ai's Luma modify-video API, its upload host and its file host.

Use it in-process (demo mode, tests)::

    emulator = Emulator()
    client = LumaClient(api_key="demo", transport=emulator.transport())

or as a loopback server: ``python -m luma.emulator --host 127.0.0.1 --port 8765`` (see ``--help``).

Layout, after moto's: ``config`` (settings, plain data), ``wire`` (the request and answer types
both adapters share), ``backend`` (state, routes, the one handler; PyAV is loaded on first use),
``store`` (the state files a restart on the same data dir reloads), the adapters ``transport``
(httpx, in-process) and ``server`` (loopback HTTP), and ``core``, where :class:`Emulator` joins
the backend to its in-process transport. The backend never imports an adapter and the adapters
never import the backend.

State lives in the data dir and outlives the emulator (unless the dir is the temp one made when
``data_dir`` is None): a new emulator on the same dir answers for every task the last one knew.
Several live emulators on one data dir are not supported; the second raises
:class:`DataDirInUse`.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .config import EmulatorConfig, SampleClip

if TYPE_CHECKING:
    from .core import Emulator
    from .store import DataDirInUse
    from .transport import EmulatorTransport

__all__ = ["DataDirInUse", "Emulator", "EmulatorConfig", "EmulatorTransport", "SampleClip"]

# Loaded on first use: every submodule import runs this file first, and importing one side
# (``luma.emulator.transport``, ``luma.emulator.backend``) must not load the other behind its back.
_LAZY = {"DataDirInUse": ".store", "Emulator": ".core", "EmulatorTransport": ".transport"}


def __getattr__(name: str) -> Any:
    home = _LAZY.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(home, __name__), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
