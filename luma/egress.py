"""One guarded way out: every connection the server makes on a user's behalf goes through here.

A user hands the server addresses (a video URL to check or fetch, a callback URL to call), and a
server that connects wherever it is told can be steered at itself, at its private network or at a
cloud metadata service (server-side request forgery). The guard sits where the socket is made:
:class:`GuardedBackend` is an httpcore network backend, so every connection of a
:func:`guarded_transport`, the first request and every redirect hop alike, is checked after the
name is resolved and before anything is sent. It then connects to exactly the address it checked,
so a name that answers "public" to the check and "private" to the connect (DNS rebinding) gains
nothing. TLS still verifies the certificate against the name: httpcore starts TLS on the stream
this backend returns with the URL's host as ``server_hostname``.

Refused: every address :mod:`ipaddress` says is not global, in any spelling (``127.1``,
``0x7f.0.0.1``, ``2130706433``, ``[::ffff:7f00:1]``, ...), IPv4 embedded in IPv6 (mapped,
compatible, 6to4, NAT64) judged by the IPv4 inside, and any name that resolves to one of them.
A name with several addresses is refused whole when any one of them is refused, since the
operating system may pick any of them. A deployment can name hosts it trusts anyway
(:attr:`EgressPolicy.allow_hosts`, e.g. an internal file server).

A refusal is an :class:`AddressRefused`, a :class:`httpcore.ConnectError`, so httpx reports it as
:class:`httpx.ConnectError`; :func:`refusal_of` finds it again behind httpx's exception.
"""

from __future__ import annotations

import functools
import ipaddress
import re
import socket
import ssl
import threading
import time
import typing
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field

import anyio
import httpcore
import httpx

__all__ = [
    "AddressRefused",
    "AsyncConnector",
    "AsyncGuardedBackend",
    "Connector",
    "EgressPolicy",
    "GuardedBackend",
    "GuardedTransports",
    "IPAddress",
    "Resolver",
    "guarded_async_transport",
    "guarded_transport",
    "parse_ip_literal",
    "refusal_of",
    "refusal_reason",
    "system_resolver",
]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
#: ``(host, port) -> addresses``: what a name resolves to, as address strings.
Resolver = Callable[[str, int], list[str]]
#: ``(address, port, connect timeout) -> stream``: opens one TCP connection to a checked address.
Connector = Callable[[str, int, float | None], httpcore.NetworkStream]
#: The async twin of :data:`Connector`.
AsyncConnector = Callable[[str, int, float | None], Awaitable[httpcore.AsyncNetworkStream]]

# One part of an IPv4 address as inet_aton reads it: hex, octal or decimal.
_V4_PART = re.compile(r"0[xX][0-9a-fA-F]*|0[0-7]*|[1-9][0-9]*")
_RFC1918 = tuple(ipaddress.IPv4Network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"))
_SHARED = ipaddress.IPv4Network("100.64.0.0/10")  # RFC 6598 carrier-grade NAT
_THIS_NETWORK = ipaddress.IPv4Network("0.0.0.0/8")
_COMPATIBLE = ipaddress.IPv6Network("::/96")  # deprecated IPv4-compatible form
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")  # RFC 6052 well-known prefix
_NAT64_LOCAL = ipaddress.IPv6Network("64:ff9b:1::/48")  # RFC 8215 local-use prefix
_UNIQUE_LOCAL = ipaddress.IPv6Network("fc00::/7")
_SITE_LOCAL = ipaddress.IPv6Network("fec0::/10")  # deprecated, still routed inside some sites
_NAME = re.compile(r"[a-z0-9_](?:[a-z0-9_.-]*[a-z0-9_])?")
_REFUSED_TAIL = "the server does not connect to private or local addresses."


# --- reading and judging addresses ---------------------------------------------------------------


def _parse_ipv4(text: str) -> ipaddress.IPv4Address | None:
    """inet_aton's reading: 1 to 4 parts, each hex/octal/decimal, the last filling what is left."""
    parts = text.split(".")
    if not 1 <= len(parts) <= 4 or not all(_V4_PART.fullmatch(p) for p in parts):
        return None
    values = []
    for part in parts:
        if part[:2] in ("0x", "0X"):
            values.append(int(part[2:] or "0", 16))
        elif len(part) > 1 and part.startswith("0"):
            values.append(int(part, 8))
        else:
            values.append(int(part))
    *leading, last = values
    if any(v > 255 for v in leading) or last >= 256 ** (4 - len(leading)):
        return None
    number = last
    for index, value in enumerate(leading):
        number += value << (8 * (3 - index))
    return ipaddress.IPv4Address(number)


def parse_ip_literal(host: str) -> IPAddress | None:
    """The address a host written as an IP literal names, in any spelling; None for a name.

    IPv4 is read as ``inet_aton`` (and browsers) read it: ``127.1``, ``0x7f.0.0.1``,
    ``0177.0.0.1`` and ``2130706433`` are all 127.0.0.1. IPv6 may come in brackets and with a zone
    id (``[fe80::1%25eth0]``, the ``%`` URL-encoded as RFC 6874 says). One trailing dot is allowed.
    """
    text = host.strip()
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    if ":" in text:
        try:
            return ipaddress.IPv6Address(text.replace("%25", "%", 1))
        except ValueError:
            return None
    if text.endswith(".") and not text.endswith(".."):
        text = text[:-1]
    return _parse_ipv4(text)


def _reason_v4(ip: ipaddress.IPv4Address) -> str | None:
    if ip in _THIS_NETWORK:
        return "an unspecified address (it reaches this machine)"
    if ip.is_loopback:
        return "a loopback address (this machine)"
    if ip.is_link_local:
        return "a link-local address (such as a cloud metadata service)"
    if ip.is_multicast:
        return "a multicast address"
    if ip in _SHARED:
        return "a shared carrier-grade NAT address"
    if ip.is_reserved:
        return "a reserved address"
    if any(ip in net for net in _RFC1918):
        return "a private network address"
    if not ip.is_global:  # documentation, benchmarking, protocol assignments, ...
        return "an address that is not on the public internet"
    return None


def _reason_v6(ip: ipaddress.IPv6Address) -> str | None:
    # An IPv4 address carried inside IPv6 reaches wherever that IPv4 address does.
    if ip.ipv4_mapped is not None:
        return _reason_v4(ip.ipv4_mapped)
    if ip.is_unspecified:
        return "an unspecified address (it reaches this machine)"
    if ip.is_loopback:
        return "a loopback address (this machine)"
    embedded = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    if ip in _COMPATIBLE:
        return _reason_v4(embedded) or "a reserved address"
    if ip.sixtofour is not None:
        inner = _reason_v4(ip.sixtofour)
        if inner:
            return inner
    if ip in _NAT64:
        return _reason_v4(embedded)
    if ip in _NAT64_LOCAL:
        return _reason_v4(embedded) or "a private network address"
    if ip.is_link_local:
        return "a link-local address"
    # Before is_global: Python 3.11 calls ff0e::/16 multicast and fec0::/10 global.
    if ip.is_multicast:
        return "a multicast address"
    if ip in _UNIQUE_LOCAL or ip in _SITE_LOCAL:
        return "a private network address"
    if ip.is_reserved:
        return "a reserved address"
    if not ip.is_global:
        return "an address that is not on the public internet"
    return None


def refusal_reason(ip: IPAddress) -> str | None:
    """Why the server must not connect to ``ip``, in plain words ("a loopback address (this
    machine)", "a private network address", ...); None for a public address."""
    if isinstance(ip, ipaddress.IPv6Address):
        return _reason_v6(ip)
    return _reason_v4(ip)


class AddressRefused(httpcore.ConnectError):
    """The guard refused to connect: the host is, or resolves to, a private or local address.

    A :class:`httpcore.ConnectError`, so httpx raises it as :class:`httpx.ConnectError` (use
    :func:`refusal_of` to find it there). Nothing was sent.
    """

    def __init__(self, host: str, reason: str, *, address: str | None = None) -> None:
        #: The host as the URL wrote it.
        self.host = host
        #: The kind of address, in plain words ("a private network address").
        self.reason = reason
        #: The resolved address that was refused; None when the host was itself a literal.
        self.address = address
        if address is None:
            text = f"{host} is {reason}; {_REFUSED_TAIL}"
        else:
            text = f"{host} resolves to {address}, {reason}; {_REFUSED_TAIL}"
        super().__init__(text)


def refusal_of(exc: BaseException | None) -> AddressRefused | None:
    """The :class:`AddressRefused` behind ``exc`` (itself, or its ``__cause__``/``__context__``)."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, AddressRefused):
            return exc
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return None


# --- the policy ------------------------------------------------------------------------------------


def system_resolver(host: str, port: int) -> list[str]:
    """The operating system's answer for ``host`` (``getaddrinfo``), without duplicates."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def _host_key(host: str) -> str:
    """A host as allow-list entries are kept: lower case, no brackets, a literal in canonical form."""
    text = host.strip().lower()
    ip = parse_ip_literal(text)
    if ip is not None:
        return str(ip)
    return text.strip("[]").rstrip(".")


def _entry_key(entry: str) -> str:
    """An allow-list entry, ``host`` or ``host:port`` (``[v6]:port``), in the form lookups use."""
    text = entry.strip().lower()
    host, port = text, ""
    if text.startswith("["):
        inside, _, rest = text[1:].partition("]")
        host, port = inside, rest[1:] if rest.startswith(":") else ""
    elif text.count(":") == 1:
        host, _, port = text.partition(":")
    key = _host_key(host)
    is_name = _NAME.fullmatch(key) is not None
    if not (is_name or parse_ip_literal(key)) or (port and not port.isdigit()):
        raise ValueError(f"{entry!r} is not a host name, IP address or host:port")
    if not port:
        return key
    return f"[{key}]:{int(port)}" if ":" in key else f"{key}:{int(port)}"


@dataclass(frozen=True)
class EgressPolicy:
    """Which addresses the server may connect to on a user's behalf: public ones, plus a list."""

    allow_hosts: frozenset[str] = frozenset()
    """Hosts (``name``, ``name:port``, IP literals in any spelling) allowed even when private,
    e.g. a named internal file server. Matched by the host as written, before resolution."""
    resolver: Resolver = field(default=system_resolver, repr=False, compare=False)
    """Resolves a name to addresses; injectable so tests never use DNS."""

    def __post_init__(self) -> None:
        entries: Iterable[str] = self.allow_hosts
        if isinstance(entries, str):
            entries = (entries,)
        object.__setattr__(self, "allow_hosts", frozenset(_entry_key(e) for e in entries))

    def allows(self, host: str, port: int | None = None) -> bool:
        """Whether ``host`` (on ``port``) is on the allow-list."""
        key = _host_key(host)
        if key in self.allow_hosts:
            return True
        if port is None:
            return False
        return (f"[{key}]:{port}" if ":" in key else f"{key}:{port}") in self.allow_hosts

    def check_literal(self, host: str, port: int | None = None) -> None:
        """Raise :class:`AddressRefused` if ``host`` is an IP literal that is refused; no DNS.

        A cheap first look before any request (it also reads spellings httpx refuses to parse,
        such as ``0177.0.0.1``); names are judged when they are resolved, at connect time.
        """
        ip = parse_ip_literal(host)
        if ip is None or self.allows(host, port):
            return
        reason = refusal_reason(ip)
        if reason:
            raise AddressRefused(host, reason)

    def addresses(self, host: str, port: int) -> list[str]:
        """The addresses to connect to for ``host``, every one checked; else :class:`AddressRefused`.

        An unresolvable name raises a plain :class:`httpcore.ConnectError`.
        """
        allowed = self.allows(host, port)
        ip = parse_ip_literal(host)
        if ip is not None:
            reason = None if allowed else refusal_reason(ip)
            if reason:
                raise AddressRefused(host, reason)
            return [str(ip)]
        name = host.strip("[]")
        try:
            found = self.resolver(name, port)
        except (OSError, UnicodeError) as exc:
            raise httpcore.ConnectError(f"{name} could not be resolved ({exc})") from exc
        if not found:
            raise httpcore.ConnectError(f"{name} could not be resolved (no addresses)")
        if allowed:
            return list(found)
        for address in found:
            resolved = parse_ip_literal(address)
            reason = "an address that could not be read" if resolved is None else refusal_reason(resolved)
            if reason:
                # Any refused answer refuses the name: the connect could land on any of them.
                raise AddressRefused(host, reason, address=address)
        return list(found)


# --- network backends ------------------------------------------------------------------------------

_SYNC_BACKEND = httpcore.SyncBackend()
_ASYNC_BACKEND = httpcore.AnyIOBackend()


def _connect_tcp(address: str, port: int, timeout: float | None) -> httpcore.NetworkStream:
    return _SYNC_BACKEND.connect_tcp(address, port, timeout=timeout, socket_options=[])


async def _connect_tcp_async(address: str, port: int, timeout: float | None) -> httpcore.AsyncNetworkStream:
    return await _ASYNC_BACKEND.connect_tcp(address, port, timeout=timeout, socket_options=[])


class GuardedBackend(httpcore.NetworkBackend):
    """An httpcore backend that connects only to addresses its :class:`EgressPolicy` allows.

    The guarded transports set no local address and no socket options, so those arguments of
    :meth:`connect_tcp` are not passed on.
    """

    def __init__(self, policy: EgressPolicy | None = None, *, connect: Connector | None = None) -> None:
        self.policy = policy if policy is not None else EgressPolicy()
        self._connect = connect if connect is not None else _connect_tcp

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: typing.Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        failure: Exception | None = None
        for address in self.policy.addresses(host, port):
            try:
                return self._connect(address, port, timeout)
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                failure = exc  # try the next checked address, as create_connection would
        assert failure is not None
        raise failure

    def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: typing.Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        raise httpcore.ConnectError("Unix sockets are local: the server does not connect to them for users.")

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


class AsyncGuardedBackend(httpcore.AsyncNetworkBackend):
    """The async twin of :class:`GuardedBackend` (the resolver runs in a worker thread)."""

    def __init__(self, policy: EgressPolicy | None = None, *, connect: AsyncConnector | None = None) -> None:
        self.policy = policy if policy is not None else EgressPolicy()
        self._connect = connect if connect is not None else _connect_tcp_async

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: typing.Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        # getaddrinfo blocks; the event loop must not.
        addresses = await anyio.to_thread.run_sync(self.policy.addresses, host, port)
        failure: Exception | None = None
        for address in addresses:
            try:
                return await self._connect(address, port, timeout)
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                failure = exc
        assert failure is not None
        raise failure

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: typing.Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("Unix sockets are local: the server does not connect to them for users.")

    async def sleep(self, seconds: float) -> None:
        await anyio.sleep(seconds)


# --- transports ------------------------------------------------------------------------------------

# httpx's own defaults (httpx._config.DEFAULT_LIMITS), restated because that name is private.
_LIMITS = httpx.Limits(max_connections=100, max_keepalive_connections=20, keepalive_expiry=5.0)


@functools.cache
def _default_ssl_context() -> ssl.SSLContext:
    # Loading the CA bundle takes ~45 ms; a server builds several transports (the emulator's
    # fetches and callbacks, page and action clients), and one context serves them all.
    return httpx.create_ssl_context(verify=True, trust_env=False)


def _ssl_context(verify: ssl.SSLContext | str | bool) -> ssl.SSLContext:
    return _default_ssl_context() if verify is True else httpx.create_ssl_context(verify=verify, trust_env=False)


def guarded_transport(
    policy: EgressPolicy | None = None,
    *,
    connect: Connector | None = None,
    verify: ssl.SSLContext | str | bool = True,
    limits: httpx.Limits = _LIMITS,
) -> httpx.HTTPTransport:
    """An :class:`httpx.HTTPTransport` whose every connection goes through :class:`GuardedBackend`.

    Never through a proxy (``trust_env=False``): a proxy would make the connection for us, to an
    address this guard never saw. ``connect`` replaces the TCP connector (tests map addresses to
    a loopback server with it and count every attempt).
    """
    context = _ssl_context(verify)
    transport = httpx.HTTPTransport(verify=context, trust_env=False, limits=limits)
    # The pool httpx built, rebuilt with the same arguments (httpx/_transports/default.py) over
    # the guarded backend; retries=0 so a refused connect is not attempted again.
    transport._pool = httpcore.ConnectionPool(
        ssl_context=context,
        max_connections=limits.max_connections,
        max_keepalive_connections=limits.max_keepalive_connections,
        keepalive_expiry=limits.keepalive_expiry,
        http1=True,
        http2=False,
        retries=0,
        network_backend=GuardedBackend(policy, connect=connect),
    )
    return transport


def guarded_async_transport(
    policy: EgressPolicy | None = None,
    *,
    connect: AsyncConnector | None = None,
    verify: ssl.SSLContext | str | bool = True,
    limits: httpx.Limits = _LIMITS,
) -> httpx.AsyncHTTPTransport:
    """The async twin of :func:`guarded_transport`."""
    context = _ssl_context(verify)
    transport = httpx.AsyncHTTPTransport(verify=context, trust_env=False, limits=limits)
    transport._pool = httpcore.AsyncConnectionPool(
        ssl_context=context,
        max_connections=limits.max_connections,
        max_keepalive_connections=limits.max_keepalive_connections,
        keepalive_expiry=limits.keepalive_expiry,
        http1=True,
        http2=False,
        retries=0,
        network_backend=AsyncGuardedBackend(policy, connect=connect),
    )
    return transport


class GuardedTransports(httpx.BaseTransport, httpx.AsyncBaseTransport):
    """One guarded transport for sync and async clients alike: one policy, a pool for each side.

    For a server that lends one transport to a :class:`~luma.LumaClient` and to short-lived
    :class:`~luma.AsyncLumaClient` s (or as the emulator transport's ``network``). Each pool is
    built on its first request: building one loads the CA bundle (~45 ms), which a server in
    demo mode may never need, and would otherwise pay while its first page loads.
    """

    def __init__(
        self,
        policy: EgressPolicy | None = None,
        *,
        connect: Connector | None = None,
        connect_async: AsyncConnector | None = None,
        verify: ssl.SSLContext | str | bool = True,
    ) -> None:
        #: What every connection of both pools is checked against.
        self.policy = policy if policy is not None else EgressPolicy()
        self._connect = connect
        self._connect_async = connect_async
        self._verify = verify
        self._lock = threading.Lock()
        self._sync_pool: httpx.HTTPTransport | None = None
        self._async_pool: httpx.AsyncHTTPTransport | None = None

    @property
    def _sync(self) -> httpx.HTTPTransport:
        with self._lock:
            if self._sync_pool is None:
                self._sync_pool = guarded_transport(self.policy, connect=self._connect, verify=self._verify)
            return self._sync_pool

    @property
    def _async(self) -> httpx.AsyncHTTPTransport:
        with self._lock:
            if self._async_pool is None:
                # No keep-alive on the async side: callers run it under a new event loop each time
                # (asyncio.run per refresh), and a pooled connection cannot outlive its loop.
                self._async_pool = guarded_async_transport(
                    self.policy,
                    connect=self._connect_async,
                    verify=self._verify,
                    limits=httpx.Limits(max_connections=100, max_keepalive_connections=0),
                )
            return self._async_pool

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        return self._sync.handle_request(request)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        return await self._async.handle_async_request(request)

    def close(self) -> None:
        """Close the sync pool (the async one keeps no connections)."""
        if self._sync_pool is not None:
            self._sync_pool.close()

    async def aclose(self) -> None:
        if self._async_pool is not None:
            await self._async_pool.aclose()

    def __repr__(self) -> str:
        return f"GuardedTransports({self.policy!r})"
