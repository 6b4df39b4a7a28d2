"""Start here: ``streamlit run app.py``.

The server of the Luma video studio: ``st.App`` serves the dashboard script (``dashboard.py``,
where the gate, navigation and pages are) behind the web edge (``studio.edge``: the browser-id
cookie, and ``/media/`` only for browsers past the access gate). The lifespan runs once per
server process: it opens the task ledger and starts the tracker that follows every task, so
tasks are followed from the moment the server is up, whether or not anyone has a tab open. The
server's own routes (``studio.web``): ``POST /api/callbacks/luma/<token>`` (the provider's
callbacks) and ``GET /api/health``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import streamlit as st
from starlette.middleware import Middleware

from studio.access import GRANTS
from studio.edge import EdgeMiddleware
from studio.web import routes

_LOG = logging.getLogger("luma.server")


def _loopback_origin() -> str:
    from streamlit import config

    address = str(config.get_option("server.address") or "")
    host = "127.0.0.1" if address in ("", "0.0.0.0", "::", "localhost") else address
    host = f"[{host}]" if ":" in host else host
    return f"http://{host}:{int(config.get_option('server.port'))}"


def _studio() -> Any:
    """The process's services, for the routes (built from the same secrets the pages read)."""
    from pages._support.runtime import secrets_table
    from studio.config import DeploymentConfig
    from studio.service import studio_for

    studio = studio_for(DeploymentConfig.from_sources(secrets_table()))
    studio.ensure_tracking()
    return studio


def _base_path() -> str:
    from streamlit import config

    return str(config.get_option("server.baseUrlPath") or "")


@asynccontextmanager
async def lifespan(app: Any) -> AsyncIterator[None]:
    # Imported here: the runtime exists once the server starts, not when this module is loaded.
    import anyio
    from streamlit.runtime import Runtime

    from pages._support.runtime import quiet_protocol_errors
    from studio.service import shutdown_all

    # A media grant lasts as long as one of its browser's sessions is connected.
    GRANTS.set_liveness(Runtime.instance().is_active_session)
    quiet_protocol_errors()
    # Where this server answers on loopback: the demo's emulator delivers its callbacks there.
    os.environ["LUMA_SERVER_ORIGIN"] = _loopback_origin()

    def start_tracking() -> None:
        try:
            _studio()
        except Exception as err:  # noqa: BLE001 - the pages say what is wrong and try again
            _LOG.warning("The task ledger could not be opened at start-up (%s); pages will retry.", err)

    # In a worker thread: opening and migrating the database must not hold up the event loop.
    await anyio.to_thread.run_sync(start_tracking)
    try:
        yield None
    finally:
        await anyio.to_thread.run_sync(shutdown_all)


app = st.App(
    "dashboard.py",
    lifespan=lifespan,
    routes=routes(_studio),
    middleware=[Middleware(EdgeMiddleware, grants=GRANTS, base_path=_base_path)],
)
