"""Fetching an image from a URL with a size cap, a time limit and an address check.

A prediction may name its image by URL, and the server fetches it. Unchecked, that
lets any caller make the server read its own loopback services or the private
network behind it. `fetch_image_bytes` therefore:

- accepts ``http`` and ``https`` only;
- resolves the host once and refuses it when any of its addresses is loopback,
  private, link-local, multicast, reserved, unspecified or otherwise not global
  (unless the operator allows private addresses), then connects to the address it
  checked, so a second DNS answer cannot swap in another one;
- follows at most `MAX_REDIRECTS` redirects, checking every hop the same way;
- refuses a body larger than ``max_bytes`` (by its ``Content-Length`` or while
  streaming) and stops when ``timeout_s`` has passed.

Every refusal is a `ValidationError` whose message names the URL and the reason.

Example:
    >>> data = fetch_image_bytes(
    ...     "https://example.com/cat.jpg", max_bytes=10 << 20, timeout_s=10
    ... )  # doctest: +SKIP
"""

from __future__ import annotations

import ipaddress
import logging
import socket
import time
from dataclasses import dataclass

import httpx

from pigeonhole.errors import ValidationError

logger = logging.getLogger(__name__)

#: Redirects followed before the fetch is refused.
MAX_REDIRECTS = 5

_SCHEMES = frozenset({"http", "https"})
_DEFAULT_PORTS = {"http": 80, "https": 443}
_REDIRECTS = frozenset({301, 302, 303, 307, 308})

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass(frozen=True)
class _Target:
    """One hop: the URL as given and the checked address to connect to."""

    url: httpx.URL
    address: str


def fetch_image_bytes(
    url: str, *, max_bytes: int, timeout_s: float, allow_private: bool = False
) -> bytes:
    """Downloads an image's bytes from an ``http`` or ``https`` URL, safely.

    The time limit covers name resolution, every redirect and the whole body; one
    blocked network read can overrun it by at most the time that was left when
    its request started.

    Args:
        url: The image URL.
        max_bytes: Largest body accepted, in bytes.
        timeout_s: Time allowed for the whole fetch, in seconds.
        allow_private: Also fetch from loopback, private and link-local addresses
            (for an operator whose images live on the local network).

    Returns:
        The body, which is not checked to be an image (decoding does that).

    Raises:
        ValidationError: The URL is not http(s), its host cannot be resolved or
            resolves to a refused address, the server answers with an error or too
            many redirects, the body is larger than ``max_bytes``, the network
            fails, or the fetch takes longer than ``timeout_s``.

    Example:
        >>> fetch_image_bytes(
        ...     "http://10.0.0.5/cam.jpg", max_bytes=5 << 20, timeout_s=5,
        ...     allow_private=True,
        ... )  # doctest: +SKIP
    """
    if max_bytes < 1:
        raise ValidationError(f"max_bytes={max_bytes!r} must be 1 or more")
    if not timeout_s > 0:
        raise ValidationError(f"timeout_s={timeout_s!r} must be above 0")
    deadline = time.monotonic() + timeout_s
    current = _parse(url)
    with httpx.Client(follow_redirects=False, trust_env=False) as client:
        for _ in range(MAX_REDIRECTS + 1):
            target = _resolve(current, allow_private, url)
            location = _get(client, target, url, max_bytes, deadline, timeout_s)
            if isinstance(location, bytes):
                return location
            current = _parse(str(current.join(location)), original=url)
    raise ValidationError(
        f"{url}: more than {MAX_REDIRECTS} redirects; give the image's final URL"
    )


def refusal_reason(address: IPAddress) -> str | None:
    """Why an address may not be fetched from without ``allow_private``, or None."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    checks = (
        ("loopback", address.is_loopback),
        ("link-local", address.is_link_local),
        ("multicast", address.is_multicast),
        ("unspecified", address.is_unspecified),
        ("reserved", address.is_reserved),
        ("private", address.is_private),
        ("not globally routable", not address.is_global),
    )
    return next((reason for reason, hit in checks if hit), None)


def _parse(url: str, *, original: str | None = None) -> httpx.URL:
    shown = url if original is None else f"{original} (redirected to {url})"
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError) as error:
        raise ValidationError(f"{shown}: not a valid URL ({error})") from None
    if parsed.scheme not in _SCHEMES:
        raise ValidationError(
            f"{shown}: scheme {parsed.scheme or 'none'!r} is not accepted; images "
            "are fetched over http or https only"
        )
    if not parsed.host:
        raise ValidationError(f"{shown}: the URL has no host name")
    return parsed


def _resolve(url: httpx.URL, allow_private: bool, original: str) -> _Target:
    port = url.port or _DEFAULT_PORTS[url.scheme]
    try:
        found = socket.getaddrinfo(url.host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as error:
        raise ValidationError(
            f"{original}: host {url.host!r} cannot be resolved ({error})"
        ) from None
    addresses = [ipaddress.ip_address(str(item[4][0]).split("%")[0]) for item in found]
    if not addresses:
        raise ValidationError(f"{original}: host {url.host!r} has no address")
    if not allow_private:
        for address in addresses:
            reason = refusal_reason(address)
            if reason:
                raise ValidationError(
                    f"{original}: host {url.host!r} resolves to {address}, a "
                    f"{reason} address; images are fetched from public addresses "
                    "only unless the operator allows private ones"
                )
    return _Target(url, str(addresses[0]))


def _get(
    client: httpx.Client,
    target: _Target,
    original: str,
    max_bytes: int,
    deadline: float,
    timeout_s: float,
) -> bytes | str:
    """The body, or the ``Location`` of a redirect."""
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise _too_slow(original, timeout_s)
    url = target.url
    pinned = url.copy_with(host=target.address)
    headers = {
        "Host": url.netloc.decode("ascii"),
        "Accept": "image/*",
        "Accept-Encoding": "identity",
    }
    request = client.build_request(
        "GET",
        pinned,
        headers=headers,
        timeout=httpx.Timeout(remaining),
        extensions={"sni_hostname": url.host},
    )
    try:
        response = client.send(request, stream=True)
        try:
            return _read(response, original, max_bytes, deadline, timeout_s)
        finally:
            response.close()
    except httpx.TimeoutException:
        raise _too_slow(original, timeout_s) from None
    except httpx.HTTPError as error:
        raise ValidationError(
            f"{original}: the image cannot be fetched ({type(error).__name__}: {error})"
        ) from None


def _read(
    response: httpx.Response,
    original: str,
    max_bytes: int,
    deadline: float,
    timeout_s: float,
) -> bytes | str:
    if response.status_code in _REDIRECTS:
        location = response.headers.get("location")
        if not location:
            raise ValidationError(
                f"{original}: redirect {response.status_code} without a Location"
            )
        return location
    if response.status_code != 200:
        raise ValidationError(
            f"{original}: the server answered {response.status_code} "
            f"{response.reason_phrase}; expected 200 with the image"
        )
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise _too_big(original, max_bytes, f"declares {int(declared)} bytes")
    body = bytearray()
    for chunk in response.iter_bytes():
        body += chunk
        if len(body) > max_bytes:
            raise _too_big(original, max_bytes, "sent more")
        if time.monotonic() > deadline:
            raise _too_slow(original, timeout_s)
    return bytes(body)


def _too_big(url: str, max_bytes: int, what: str) -> ValidationError:
    return ValidationError(
        f"{url}: the image is larger than the limit of {max_bytes} bytes (the "
        f"server {what}); use a smaller image or raise the limit"
    )


def _too_slow(url: str, timeout_s: float) -> ValidationError:
    return ValidationError(
        f"{url}: the fetch took longer than the limit of {timeout_s:g} s; use a "
        "faster host or raise the limit"
    )


@dataclass(frozen=True)
class UrlLimits:
    """How a predictor fetches images given by URL.

    Attributes:
        max_bytes: Largest image accepted, in bytes.
        timeout_s: Time allowed for one whole fetch, in seconds.
        allow_private: Also fetch from loopback, private and link-local addresses.
    """

    max_bytes: int = 20 << 20
    timeout_s: float = 10.0
    allow_private: bool = False

    def fetch(self, url: str) -> bytes:
        """`fetch_image_bytes` with these limits."""
        return fetch_image_bytes(
            url,
            max_bytes=self.max_bytes,
            timeout_s=self.timeout_s,
            allow_private=self.allow_private,
        )


def is_url(value: object) -> bool:
    """Whether ``value`` is a string that names an image by URL (any scheme)."""
    return isinstance(value, str) and "://" in value[:16]
