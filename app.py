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


def _warm_up() -> None:
    """Pay, in the background at start-up, what the first page of a process would wait for.

    Measured on the first Submit page (python -m bench --only cold): page_icon's emoji check
    imports Streamlit's emoji catalogue (~0.14 s of regex compiling; an icon given any other way
    goes through ``image_to_url``, which imports numpy, twice that). And the first element of a
    process runs Streamlit's "not under streamlit run?" check, an ``inspect.stack()`` that reads
    the source of every frame (~0.06 s): inside the server the answer is known, so it is marked
    done instead of run.
    """
    try:
        import streamlit.emojis  # noqa: F401
        from streamlit import delta_generator

        delta_generator._use_warning_has_been_displayed = True  # once per process; silent under streamlit run
    except Exception:  # noqa: BLE001 - an optimisation only: a newer Streamlit may lack these names
        _LOG.debug("Start-up warm-up skipped.", exc_info=True)


def _base_path() -> str:
    from streamlit import config

    return str(config.get_option("server.baseUrlPath") or "")


@asynccontextmanager
async def lifespan(app: Any) -> AsyncIterator[None]:
    # Imported here: the runtime exists once the server starts, not when this module is loaded.
    import threading

    import anyio
    from streamlit.runtime import Runtime

    from studio.edge import quiet_protocol_errors

    # A media grant lasts as long as one of its browser's sessions is connected.
    GRANTS.set_liveness(Runtime.instance().is_active_session)
    quiet_protocol_errors()
    # Where this server answers on loopback: the demo's emulator delivers its callbacks there.
    os.environ["LUMA_SERVER_ORIGIN"] = _loopback_origin()

    def start_tracking() -> None:
        _warm_up()
        try:
            studio = _studio()
        except Exception as err:  # noqa: BLE001 - the pages say what is wrong and try again
            _LOG.warning("The task ledger could not be opened at start-up (%s); pages will retry.", err)
            return
        if studio.config.api_key is None:
            # Demo mode: the first page reads credits and lists samples from the emulator, and
            # the emulator starts drawing the sample clips: build it before anyone asks.
            studio.emulator()

    # Started, not awaited: importing the ledger's and the pages' libraries, migrating the
    # database and (in demo mode) starting the emulator take a couple of seconds, and the server
    # answers meanwhile, so a browser loads Streamlit's page while they run. A first page that
    # needs them waits for the same objects (built once, see studio.registry), never builds twice.
    starter = threading.Thread(target=start_tracking, name="luma-start", daemon=True)
    starter.start()

    def stop() -> None:
        from studio.service import shutdown_all

        starter.join(timeout=60)
        shutdown_all()

    try:
        yield None
    finally:
        await anyio.to_thread.run_sync(stop)


app = st.App(
    "dashboard.py",
    lifespan=lifespan,
    routes=routes(_studio),
    middleware=[Middleware(EdgeMiddleware, grants=GRANTS, base_path=_base_path)],
)
