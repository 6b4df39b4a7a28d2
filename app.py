"""Start here: ``streamlit run app.py``.

The server of the Luma video studio: ``st.App`` serves the dashboard script (``dashboard.py``,
where the gate, navigation and pages are) behind the web edge (``studio.edge``: the browser-id
cookie, and ``/media/`` only for browsers past the access gate). The lifespan runs once per
server process.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import streamlit as st
from starlette.middleware import Middleware

from studio.access import GRANTS
from studio.edge import EdgeMiddleware


def _base_path() -> str:
    from streamlit import config

    return str(config.get_option("server.baseUrlPath") or "")


@asynccontextmanager
async def lifespan(app: Any) -> AsyncIterator[None]:
    # Imported here: the runtime exists once the server starts, not when this module is loaded.
    from streamlit.runtime import Runtime

    from pages._support.runtime import quiet_protocol_errors

    # A media grant lasts as long as one of its browser's sessions is connected.
    GRANTS.set_liveness(Runtime.instance().is_active_session)
    quiet_protocol_errors()
    yield None


app = st.App(
    "dashboard.py",
    lifespan=lifespan,
    middleware=[Middleware(EdgeMiddleware, grants=GRANTS, base_path=_base_path)],
)
