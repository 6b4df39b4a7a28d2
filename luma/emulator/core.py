"""The emulator as callers hold it: the backend, plus the in-process transport made from it.

:class:`Emulator` is :class:`~luma.emulator.backend.EmulatorBackend` (state, routes, the one
handler) with :meth:`Emulator.transport`, which builds the httpx adapter around it. This module is
the one place that knows both sides, like moto's ``mock_aws``: the backend never imports an
adapter, and the adapters (``transport.py``, ``server.py``) import only :mod:`luma.emulator.wire`.

The settings and wire types are re-exported here so that imports written against the former
single module (``from luma.emulator.core import DEFAULT_PUBLIC_BASE``) keep working.
"""

from __future__ import annotations

import httpx

from .backend import EmulatorBackend
from .config import DEFAULT_PUBLIC_BASE, EmulatorConfig, SampleClip
from .transport import EmulatorTransport
from .wire import EmulatorRequest, EmulatorResponse, parse_multipart

__all__ = [
    "DEFAULT_PUBLIC_BASE",
    "Emulator",
    "EmulatorConfig",
    "EmulatorRequest",
    "EmulatorResponse",
    "SampleClip",
    "parse_multipart",
]


class Emulator(EmulatorBackend):
    """An offline stand-in for kie.ai's Luma modify-video API, its upload host and its file host.

    Everything but :meth:`transport` is the backend's: see
    :class:`~luma.emulator.backend.EmulatorBackend`.
    """

    def transport(self, *, network: httpx.BaseTransport | httpx.AsyncBaseTransport | None = None) -> EmulatorTransport:
        """An httpx transport (sync and async) answering from this emulator.

        It answers the API and upload paths for any host (it is the provider) and ``/files/`` on
        the emulator's own ``public_base``; any other request goes to ``network`` (give a
        :func:`luma.egress.guarded_transport`), and without one fails as an unreachable host.
        """
        return EmulatorTransport(self, network=network)
