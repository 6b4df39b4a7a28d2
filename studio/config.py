"""The deployment's own settings, from its secrets and environment (never from a browser session).

The dashboard reads them through ``st.secrets``; the headless tracker (``python -m studio track``)
reads the same ``.streamlit/secrets.toml`` itself, so both agree on the database, the key and
the hosts. Nothing here imports Streamlit.

Where things live: a data folder (``LUMA_DATA_DIR``, else ``[storage] data_dir``, else ``data/``
next to the app, git-ignored) holds the embedded SQLite ledger (``ledger.sqlite``) and the demo
emulator's files (``emulator/``). A hosted team sets a SQLAlchemy URL instead, in
``[connections.tasks] url`` (Streamlit's ``st.connection`` convention) or ``LUMA_DATABASE_URL``.
"""

from __future__ import annotations

import hashlib
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from luma import DEFAULT_API_BASE, DEFAULT_UPLOAD_BASE

from .schedule import DEMO_MIN, LIVE_MIN, MAX_INTERVAL

__all__ = ["APP_ROOT", "DeploymentConfig", "host_of", "key_ref", "read_secrets_file"]

APP_ROOT = Path(__file__).resolve().parent.parent
"""The repository (app) folder: the default data folder sits in it."""

# Every visitor of a hosted demo shares the one demo account: the emulator's default 1,000
# credits (100 tasks) would leave the demo stuck on "out of credits" within a busy day.
_DEMO_DEFAULTS: dict[str, Any] = {"credits": 100_000}


def key_ref(api_key: str) -> str:
    """A name for an API key that the ledger may store: a hash, useless to anyone without the key."""
    return hashlib.sha256(("luma-key:" + api_key).encode("utf-8")).hexdigest()[:32]


def host_of(url: str) -> str:
    """The lower-case host of a URL ("" when there is none)."""
    try:
        return (urlsplit(url).hostname or "").lower()
    except ValueError:
        return ""


def _hosts(value: Any) -> frozenset[str]:
    items = value if isinstance(value, (list, tuple)) else [value] if isinstance(value, str) else []
    return frozenset(str(item).strip().lower().rstrip(".") for item in items if str(item).strip())


def _table(secrets: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    table = secrets.get(name)
    return table if isinstance(table, Mapping) else {}


def _float(value: Any, default: float) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return default
    return number if number > 0 else default


def _archive_url(table: Mapping[str, Any], data_dir: Path) -> str | None:
    url = str(table.get("url") or "").strip()
    if url:
        return url
    return str(data_dir / "archive") if table.get("enabled") is True else None


def read_secrets_file(path: Path | None = None) -> dict[str, Any]:
    """``.streamlit/secrets.toml`` as a dict (empty when missing): for processes without Streamlit."""
    target = path if path is not None else APP_ROOT / ".streamlit" / "secrets.toml"
    try:
        with open(target, "rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        return {}


@dataclass(frozen=True)
class DeploymentConfig:
    """What the deployment configured; sessions may narrow it (their own key), never widen it."""

    api_key: str | None = field(default=None, repr=False)
    """The deployment's key (secrets, else ``LUMA_API_KEY``); None: demo mode unless a session brings one."""
    key_source: str | None = None
    """"secrets" or "environment" when there is a key."""
    api_base: str = DEFAULT_API_BASE
    """The configured API origin."""
    upload_base: str = DEFAULT_UPLOAD_BASE
    """The configured upload origin."""
    key_hosts: frozenset[str] = frozenset()
    """Hosts the deployment's key may be sent to: its configured bases and ``[luma] key_hosts``."""
    network_hosts: frozenset[str] = frozenset()
    """Private or local hosts the server may connect to: configured bases and ``[network] allow_hosts``."""
    data_dir: Path = APP_ROOT / "data"
    """The local data folder (embedded ledger, demo emulator files)."""
    database_url: str = ""
    """The ledger's SQLAlchemy URL."""
    emulator_dir: Path = APP_ROOT / "data" / "emulator"
    """The demo emulator's data folder (kept across restarts, like the provider's storage)."""
    demo_options: tuple[tuple[str, Any], ...] = ()
    """Emulator options from ``[demo]``."""
    refresh_min: float | None = None
    """``[refresh] min_seconds``: the tracker's first read of a task (None: the mode's default)."""
    refresh_max: float = MAX_INTERVAL
    """``[refresh] max_seconds``: the tracker's longest gap between reads."""
    callback_base: str | None = None
    """``[callbacks] public_url``: the public origin the provider can POST callbacks to (None: polling)."""
    callback_key: str | None = field(default=None, repr=False)
    """``[callbacks] hmac_key``: the provider's webhook HMAC key; callbacks must then be signed with it."""
    server_origin: str | None = None
    """This server on loopback (``LUMA_SERVER_ORIGIN``, set by app.py): where the demo's emulator delivers."""
    health_token: str | None = field(default=None, repr=False)
    """``[health] token``: when set, ``/api/health`` wants it as a bearer token."""
    archive_url: str | None = None
    """``[archive] url`` (a folder or an fsspec URL), or ``archive/`` in the data folder with
    ``[archive] enabled = true``: where finished results are copied once (None: no archive)."""

    @property
    def key_ref(self) -> str | None:
        """The ledger's name for the deployment's key."""
        return key_ref(self.api_key) if self.api_key else None

    def first_read(self, demo: bool) -> float:
        """Seconds to a task's first read in this mode."""
        return self.refresh_min if self.refresh_min is not None else (DEMO_MIN if demo else LIVE_MIN)

    @property
    def identity(self) -> tuple[Any, ...]:
        """What makes two configurations need different process-wide services (never the key)."""
        return (
            self.key_ref,
            self.api_base,
            self.upload_base,
            self.network_hosts,
            self.database_url,
            str(self.emulator_dir),
            self.demo_options,
            self.refresh_min,
            self.refresh_max,
            self.server_origin,
            bool(self.callback_key),
            self.archive_url,
        )

    @classmethod
    def from_sources(cls, secrets: Mapping[str, Any], environ: Mapping[str, str] | None = None) -> DeploymentConfig:
        """Read the configuration from a secrets mapping and the environment."""
        env = os.environ if environ is None else environ
        luma = _table(secrets, "luma")
        secret_key = str(luma.get("api_key") or "").strip() or None
        env_key = (env.get("LUMA_API_KEY") or "").strip() or None
        api_key = secret_key or env_key
        source = "secrets" if secret_key else "environment" if env_key else None
        api_base = str(luma.get("api_base") or env.get("LUMA_API_BASE") or DEFAULT_API_BASE).strip()
        upload_base = str(luma.get("upload_base") or env.get("LUMA_UPLOAD_BASE") or DEFAULT_UPLOAD_BASE).strip()
        configured = frozenset({host_of(api_base), host_of(upload_base)} - {""})
        storage = _table(secrets, "storage")
        data_dir = Path(env.get("LUMA_DATA_DIR") or storage.get("data_dir") or APP_ROOT / "data")
        demo = _table(secrets, "demo")
        emulator_dir = Path(env.get("LUMA_EMULATOR_DIR") or demo.get("data_dir") or data_dir / "emulator")
        connection = _table(_table(secrets, "connections"), "tasks")
        database_url = str(
            env.get("LUMA_DATABASE_URL") or connection.get("url") or f"sqlite:///{data_dir / 'ledger.sqlite'}"
        )
        options = {**_DEMO_DEFAULTS, **{k: v for k, v in demo.items() if k != "data_dir"}}
        refresh = _table(secrets, "refresh")
        callbacks = _table(secrets, "callbacks")
        public_url = str(callbacks.get("public_url") or env.get("LUMA_PUBLIC_URL") or "").strip().rstrip("/")
        return cls(
            api_key=api_key,
            key_source=source,
            api_base=api_base,
            upload_base=upload_base,
            key_hosts=configured | _hosts(luma.get("key_hosts")),
            # The callback receiver's public host is the deployment's own ("send a test callback").
            network_hosts=configured | _hosts(_table(secrets, "network").get("allow_hosts")) | _hosts(host_of(public_url)),
            data_dir=data_dir,
            database_url=database_url,
            emulator_dir=emulator_dir,
            demo_options=tuple(sorted((k, tuple(v) if isinstance(v, list) else v) for k, v in options.items())),
            refresh_min=_float(refresh.get("min_seconds"), 0.0) or None,
            refresh_max=_float(refresh.get("max_seconds"), MAX_INTERVAL),
            callback_base=public_url or None,
            callback_key=str(callbacks.get("hmac_key") or env.get("LUMA_CALLBACK_HMAC_KEY") or "").strip() or None,
            server_origin=(env.get("LUMA_SERVER_ORIGIN") or "").strip().rstrip("/") or None,
            health_token=str(_table(secrets, "health").get("token") or "").strip() or None,
            archive_url=_archive_url(_table(secrets, "archive"), data_dir),
        )
