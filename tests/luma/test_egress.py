"""The egress guard: every spelling of a private address, names that resolve to one, redirect hops.

Every connection the guard allows lands on one loopback test site (``fake_net``), and the
connector records the address the guard chose: "no connection was attempted" is checked on
that record, not inferred from an error message.
"""

from __future__ import annotations

import asyncio
import ipaddress

import httpcore
import httpx
import pytest

from luma.egress import (
    AddressRefused,
    EgressPolicy,
    GuardedBackend,
    GuardedTransports,
    guarded_transport,
    parse_ip_literal,
    refusal_of,
    refusal_reason,
)

from .conftest import PRIVATE_NAMES, PRIVATE_SPELLINGS, PUBLIC_IP, UNPARSEABLE_SPELLINGS, FakeNet, Page

# --- reading and judging addresses -----------------------------------------------------------------

SPELLED = {
    "127.1": "127.0.0.1",
    "0x7f.0.0.1": "127.0.0.1",
    "0177.0.0.1": "127.0.0.1",
    "2130706433": "127.0.0.1",
    "0x7f000001": "127.0.0.1",
    "10.1": "10.0.0.1",
    "169.254.43518": "169.254.169.254",
    "0.0.0.0": "0.0.0.0",
    "0": "0.0.0.0",
    "127.0.0.1.": "127.0.0.1",
    "[::]": "::",
    "[::1]": "::1",
    "[::7f00:1]": "::7f00:1",
    "[::ffff:127.0.0.1]": "::ffff:7f00:1",
    "[fe80::1%25eth0]": "fe80::1%eth0",
    "fe80::1%eth0": "fe80::1%eth0",
    "93.184.216.34": "93.184.216.34",
}


@pytest.mark.parametrize(("host", "canonical"), SPELLED.items())
def test_every_spelling_of_an_ip_literal_is_read(host: str, canonical: str) -> None:
    assert str(parse_ip_literal(host)) == canonical


@pytest.mark.parametrize("host", ["example.com", "1.2.3.4.5", "256.1", "08.1.1.1", "4294967296", "", "[nope]"])
def test_names_and_broken_literals_are_not_addresses(host: str) -> None:
    assert parse_ip_literal(host) is None


@pytest.mark.parametrize(
    ("host", "words"),
    [
        ("127.1", "loopback"), ("0x7f.0.0.1", "loopback"), ("0177.0.0.1", "loopback"), ("2130706433", "loopback"),
        ("10.1", "private"), ("169.254.43518", "link-local"), ("0.0.0.0", "unspecified"), ("[::]", "unspecified"),
        ("[::1]", "loopback"), ("[::7f00:1]", "loopback"), ("[::a9fe:a9fe]", "link-local"),
        ("[::ffff:127.0.0.1]", "loopback"), ("[::ffff:7f00:1]", "loopback"), ("[fc00::1]", "private"),
        ("[fe80::1%25eth0]", "link-local"), ("[2002:7f00:1::]", "loopback"), ("[64:ff9b::7f00:1]", "loopback"),
        ("224.0.0.1", "multicast"), ("[ff0e::1]", "multicast"), ("100.64.0.1", "carrier-grade NAT"),
        ("240.0.0.1", "reserved"), ("192.0.2.1", "not on the public internet"), ("[fec0::1]", "private"),
        ("[64:ff9b:1::a00:1]", "private"),
    ],
)
def test_refused_addresses_say_why_in_plain_words(host: str, words: str) -> None:
    ip = parse_ip_literal(host)
    assert ip is not None
    reason = refusal_reason(ip)
    assert reason is not None and words in reason


@pytest.mark.parametrize(
    "address",
    [PUBLIC_IP, "8.8.8.8", "2606:4700::1", "::ffff:93.184.216.34", "64:ff9b::5db8:d822", "2002:5db8:d822::1"],
)
def test_public_addresses_and_their_ipv6_forms_pass(address: str) -> None:
    assert refusal_reason(ipaddress.ip_address(address)) is None


def test_policy_normalises_its_allow_list() -> None:
    policy = EgressPolicy(allow_hosts=frozenset({"Files.Internal.", "127.0.0.1", "[fd00::1]:8443", "nas:8080"}))
    assert policy.allows("files.internal") and policy.allows("FILES.INTERNAL.")
    assert policy.allows("0x7f.0.0.1") and policy.allows("[::ffff:127.0.0.1]") is False  # v6 form is another host
    assert policy.allows("fd00::1", 8443) and not policy.allows("fd00::1", 443)
    assert policy.allows("nas", 8080) and not policy.allows("nas", 80)
    for bad in ("a b", "x/y", "h:port", ""):
        with pytest.raises(ValueError):
            EgressPolicy(allow_hosts=frozenset({bad}))


def test_refusal_message_names_host_address_and_rule() -> None:
    policy = EgressPolicy(resolver=lambda host, port: ["10.0.0.5"])
    with pytest.raises(AddressRefused) as caught:
        policy.addresses("videos.example.com", 443)
    assert str(caught.value) == (
        "videos.example.com resolves to 10.0.0.5, a private network address; the server does not "
        "connect to private or local addresses."
    )
    assert (caught.value.host, caught.value.address) == ("videos.example.com", "10.0.0.5")
    assert isinstance(caught.value, httpcore.ConnectError)


# --- the backend: nothing is dialled for a refused address ------------------------------------------


@pytest.mark.parametrize("host", [h.strip("[]") for h in PRIVATE_SPELLINGS + UNPARSEABLE_SPELLINGS])
def test_backend_dials_nothing_for_any_private_spelling(fake_net: FakeNet, host: str) -> None:
    backend = GuardedBackend(fake_net.policy(), connect=fake_net.recorder)
    with pytest.raises(AddressRefused):
        backend.connect_tcp(host, 80)
    assert fake_net.recorder.attempts == [] and fake_net.resolver.asked == []


@pytest.mark.parametrize("host", PRIVATE_SPELLINGS)
def test_transport_refuses_every_private_spelling(fake_net: FakeNet, host: str) -> None:
    with httpx.Client(transport=fake_net.transport()) as http, pytest.raises(httpx.ConnectError) as caught:
        http.get(f"http://{host}/x.mp4")
    refused = refusal_of(caught.value)
    assert refused is not None and "does not connect to private or local addresses" in str(caught.value)
    assert fake_net.recorder.attempts == [] and fake_net.seen == []


@pytest.mark.parametrize("name", PRIVATE_NAMES)
def test_names_resolving_to_private_addresses_are_refused(fake_net: FakeNet, name: str) -> None:
    with httpx.Client(transport=fake_net.transport()) as http, pytest.raises(httpx.ConnectError) as caught:
        http.get(f"https://{name}/x.mp4")
    refused = refusal_of(caught.value)
    assert refused is not None and refused.host == name and refused.address is not None
    assert fake_net.resolver.asked == [name]
    assert fake_net.recorder.attempts == []


def test_mixed_answer_is_refused_whole_even_though_one_address_is_public(fake_net: FakeNet) -> None:
    with pytest.raises(AddressRefused) as caught:
        fake_net.policy().addresses("mixed.test", 443)
    assert caught.value.address == "10.0.0.1"


def test_public_name_and_literal_connect_to_the_checked_address(fake_net: FakeNet) -> None:
    fake_net.pages["/x.mp4"] = Page(b"video bytes", "video/mp4")
    with httpx.Client(transport=fake_net.transport()) as http:
        assert http.get("http://public.test/x.mp4").content == b"video bytes"
        assert http.get(f"http://{PUBLIC_IP}:8080/x.mp4").status_code == 200
    assert fake_net.recorder.attempts == [(PUBLIC_IP, 80), (PUBLIC_IP, 8080)]
    # The Host header (and TLS SNI) still carry the name; only the socket uses the address.
    assert fake_net.seen[0] == ("GET", "public.test", "/x.mp4")


def test_allowed_hosts_connect_even_when_private(fake_net: FakeNet) -> None:
    fake_net.pages["/x.mp4"] = Page(b"inside", "video/mp4")
    with httpx.Client(transport=fake_net.transport("internal.test", "127.0.0.1")) as http:
        assert http.get("http://internal.test/x.mp4").content == b"inside"
        assert http.get("http://127.1/x.mp4").content == b"inside"  # any spelling of an allowed literal
        with pytest.raises(httpx.ConnectError):
            http.get("http://loop.test/x.mp4")  # allowed by address is not allowed by every name
    assert fake_net.recorder.addresses == ["10.0.0.5", "127.0.0.1"]


def test_redirect_hop_to_a_private_address_is_refused_at_connect(fake_net: FakeNet) -> None:
    for target in ("http://127.1/latest", "http://internal.test/latest", "http://[::ffff:7f00:1]/latest"):
        fake_net.recorder.attempts.clear()
        fake_net.pages["/hop"] = Page(status=302, location=target)
        with (
            httpx.Client(transport=fake_net.transport(), follow_redirects=True) as http,
            pytest.raises(httpx.ConnectError) as caught,
        ):
            http.get("http://public.test/hop")
        assert refusal_of(caught.value) is not None, target
        assert fake_net.recorder.addresses == [PUBLIC_IP], target  # the hop was never dialled


def test_rebinding_name_is_resolved_once_per_connection_and_judged_each_time(fake_net: FakeNet) -> None:
    answers = iter([[PUBLIC_IP], ["127.0.0.1"]])
    policy = EgressPolicy(resolver=lambda host, port: next(answers))
    fake_net.pages["/x"] = Page(b"ok")
    with httpx.Client(transport=guarded_transport(policy, connect=fake_net.recorder)) as http:
        assert http.get("http://flip.test/x").content == b"ok"  # the test site closes each connection
        with pytest.raises(httpx.ConnectError) as caught:
            http.get("http://flip.test/x")
    assert refusal_of(caught.value) is not None
    assert fake_net.recorder.addresses == [PUBLIC_IP]


def test_unresolvable_name_is_a_plain_connect_error_not_a_refusal(fake_net: FakeNet) -> None:
    with httpx.Client(transport=fake_net.transport()) as http, pytest.raises(httpx.ConnectError) as caught:
        http.get("http://nowhere.test/")
    assert refusal_of(caught.value) is None and fake_net.recorder.attempts == []


def test_async_transport_guards_the_same_way(fake_net: FakeNet) -> None:
    fake_net.pages["/x.mp4"] = Page(b"async bytes", "video/mp4")

    async def run() -> tuple[bytes, list[BaseException]]:
        refused: list[BaseException] = []
        async with httpx.AsyncClient(transport=fake_net.async_transport(), follow_redirects=True) as http:
            body = (await http.get("http://public.test/x.mp4")).content
            for url in ("http://loop.test/x.mp4", "http://[::ffff:7f00:1]/x.mp4", "http://mixed.test/x.mp4"):
                try:
                    await http.get(url)
                except httpx.ConnectError as exc:
                    refused.append(exc)
        return body, refused

    body, refused = asyncio.run(run())
    assert body == b"async bytes"
    assert len(refused) == 3 and all(refusal_of(exc) is not None for exc in refused)
    assert fake_net.recorder.addresses == [PUBLIC_IP]


def test_one_guarded_transport_serves_sync_and_async_clients_across_event_loops(fake_net: FakeNet) -> None:
    fake_net.pages["/x.mp4"] = Page(b"both", "video/mp4")
    shared = GuardedTransports(fake_net.policy(), connect=fake_net.recorder,
                               connect_async=fake_net.recorder.connect_async)

    async def fetch(url: str) -> bytes:
        async with httpx.AsyncClient(transport=shared) as http:
            return (await http.get(url)).content

    with httpx.Client(transport=shared) as http:
        assert http.get("http://public.test/x.mp4").content == b"both"
        with pytest.raises(httpx.ConnectError):
            http.get("http://internal.test/x.mp4")
    # A dashboard runs each async refresh under a fresh event loop (asyncio.run), on one transport.
    assert asyncio.run(fetch("http://public.test/x.mp4")) == b"both"
    assert asyncio.run(fetch("http://public.test/x.mp4")) == b"both"
    with pytest.raises(httpx.ConnectError) as caught:
        asyncio.run(fetch("http://[::ffff:a9fe:a9fe]/x.mp4"))
    assert refusal_of(caught.value) is not None
    assert fake_net.recorder.addresses == [PUBLIC_IP] * 3


def test_a_guarded_transport_loads_the_ca_bundle_only_when_first_used(
    fake_net: FakeNet, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Building one is free: a demo server builds several at start-up and may never use them, and
    loading the CA bundle (~45 ms each) would otherwise delay its first page."""
    from luma import egress

    loads: list[object] = []
    real = httpx.create_ssl_context
    monkeypatch.setattr(httpx, "create_ssl_context", lambda *a, **k: loads.append(1) or real(*a, **k))
    egress._default_ssl_context.cache_clear()
    fake_net.pages["/x.mp4"] = Page(b"late", "video/mp4")
    shared = GuardedTransports(fake_net.policy(), connect=fake_net.recorder)
    assert loads == [], "nothing loaded to build it"
    with httpx.Client(transport=shared) as http:
        assert http.get("http://public.test/x.mp4").content == b"late"
        assert http.get("http://public.test/x.mp4").content == b"late"
    assert loads == [1], "loaded once, at the first request"
    shared.close()
    egress._default_ssl_context.cache_clear()
