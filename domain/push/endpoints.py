"""Where the server may send a Web Push request: a subscription's ``endpoint`` is user input.

The same guard as seller feeds (:func:`domain.services.feeds.is_public`): every address the host
resolves to must be public, checked when the subscription is made and again before every send,
and the connection goes to an address that was checked (no second look-up a DNS rebinding could
answer differently). ``https`` only; with ``allow_loopback`` (tests, with fake push services on
this machine) loopback addresses are accepted too, over ``http`` as well.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import anyio

MAX_ENDPOINT_LENGTH = 2048
RESOLVE_TIMEOUT_S = 5.0
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class EndpointRefused(ValueError):
    """The endpoint cannot be used; the message says why (safe to show to its owner)."""


@dataclass(frozen=True, slots=True)
class Target:
    """A checked endpoint: its origin (the VAPID audience) and one URL per checked address."""

    origin: str
    host_header: str
    sni_hostname: str
    urls: tuple[str, ...]


def origin_of(url: str) -> str:
    """``scheme://host[:port]`` of ``url`` (the ``aud`` claim of a VAPID token)."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc.rpartition("@")[2], "", "", ""))


def check_syntax(url: str, *, allow_loopback: bool) -> None:
    """What can be checked without the network; :class:`EndpointRefused` naming the problem."""
    if len(url) > MAX_ENDPOINT_LENGTH:
        raise EndpointRefused(f"must be at most {MAX_ENDPOINT_LENGTH} characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise EndpointRefused("is not a valid URL") from None
    if parts.scheme not in {"https", "http"} or not parts.hostname:
        raise EndpointRefused("must be an https:// URL")
    if parts.scheme == "http" and not allow_loopback:
        raise EndpointRefused("must be an https:// URL (push services are reached over TLS)")
    if parts.username is not None or parts.password is not None:
        raise EndpointRefused("must not carry credentials")
    if port == 0:
        raise EndpointRefused("has port 0")
    if any(character.isspace() or ord(character) < 0x20 for character in url):
        raise EndpointRefused("must not contain spaces or control characters")


async def resolve(url: str, *, allow_loopback: bool) -> Target:
    """The endpoint's checked addresses; :class:`EndpointRefused` if any of them is not allowed."""
    # Imported here: domain.services imports domain.push (the push service is one of the services).
    from domain.services.feeds import is_public  # noqa: PLC0415

    check_syntax(url, allow_loopback=allow_loopback)
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    infos: list[Any] = []
    try:
        with anyio.move_on_after(RESOLVE_TIMEOUT_S):
            infos = list(await anyio.getaddrinfo(host, port, type=socket.SOCK_STREAM))
    except OSError:
        raise EndpointRefused(f"host {host!r} cannot be resolved") from None
    addresses: list[IPAddress] = list(dict.fromkeys(ipaddress.ip_address(info[4][0]) for info in infos))
    for address in addresses:
        loopback = allow_loopback and address.is_loopback
        if not loopback and not is_public(address):
            raise EndpointRefused(f"points to {address}, which is not a public address")
        if parts.scheme == "http" and not loopback:
            raise EndpointRefused("must be an https:// URL (push services are reached over TLS)")
    if not addresses:
        raise EndpointRefused(f"host {host!r} cannot be resolved")
    host_header = f"[{host}]" if ":" in host else host
    if parts.port:
        host_header = f"{host_header}:{parts.port}"
    urls = []
    for address in addresses:
        literal = f"[{address}]" if address.version == 6 else str(address)
        netloc = f"{literal}:{parts.port}" if parts.port else literal
        urls.append(urlunsplit((parts.scheme, netloc, parts.path or "/", parts.query, "")))
    return Target(origin=origin_of(url), host_header=host_header, sni_hostname=host, urls=tuple(urls))
