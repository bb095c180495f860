"""Seller feeds: ``POST /sellers/{id}/fetch-products`` imports the seller's ``feed_url``.

Three steps, so that a failed import changes nothing and no transaction waits on the network:

1. fetch the feed over HTTP(S) (no transaction open), within ``timeout_s`` and ``max_bytes``;
   addresses that are not public (loopback, private, link-local, ...) are refused unless
   ``allow_private_hosts`` — the feed URL is user input, and the server must not become a way
   into its own network. The connection goes to the address that was checked (no second look-up).
2. parse it (a JSON array of objects, or CSV with a header row) and check every row;
3. one write: create or update each product by SKU, recording ``stock_sync_started``, the
   product events row by row, ``seller_products_fetched`` and ``stock_sync_completed``.

Columns (CSV header names, JSON keys): ``sku`` (required), ``name``, ``description``, ``price``,
``cost_price``, ``stock``, ``currency``. A new SKU needs ``name`` and a ``price`` or a
``cost_price`` (then the price is the cost plus the user's ``default_markup_percent``). For a
known SKU only the columns given change. Empty cells and nulls count as not given; other columns
are ignored. ``rows.0`` is the first product (the CSV line after the header).
"""

from __future__ import annotations

import codecs
import csv
import ipaddress
import re
import socket
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urljoin, urlsplit, urlunsplit

import anyio
import anyio.lowlevel
import httpx
import msgspec

from domain import events
from domain.errors import InvalidField, NotFound, Unprocessable, UpstreamError, UpstreamTimeout
from domain.services.bulk import new_job_id
from domain.services.common import DEFAULT_THRESHOLD, Row, Values, owned_row
from domain.services.product_writes import CHUNK, MONEY_COLUMNS, pause, products_where, write_products
from domain.tables import Seller
from domain.uow import UnitOfWork
from domain.values import MAX_CENTS, parse_money

MAX_REDIRECTS = 3
COLUMNS = ("sku", "name", "description", "price", "cost_price", "stock", "currency")
_SKU = re.compile(r"^[^\s\x00]([^\x00]*[^\s\x00])?$")
_CURRENCY = re.compile(r"^[A-Z]{3}$")
_LIMITS = {"sku": 100, "name": 300, "description": 10_000}
MAX_STOCK = 1_000_000_000


@dataclass(frozen=True, slots=True)
class FeedSettings:
    timeout_s: float = 10.0
    max_bytes: int = 5 * 1024 * 1024
    max_rows: int = 1000
    allow_private_hosts: bool = False


@dataclass(slots=True)
class FeedRow:
    index: int
    sku: str
    values: dict[str, Any] = field(default_factory=dict)  # column -> value (money in cents)


class FeedService:
    def __init__(self, uow: UnitOfWork, settings: FeedSettings) -> None:
        self.uow = uow
        self.settings = settings

    async def import_products(self, user_id: int, seller_id: int) -> Row:
        seller = await owned_row(Seller, "seller", user_id, seller_id)
        url = seller["feed_url"]
        if not url:
            raise Unprocessable(f"seller {seller_id} has no feed_url: set one with PATCH /sellers/{seller_id}")
        body, content_type = await fetch_feed(url, self.settings)
        feed_format = seller["feed_format"] or sniff_format(url, content_type, body)
        raw_rows = parse_feed(body, feed_format, self.settings.max_rows)
        rows = await check_rows(raw_rows)
        return await self._write(user_id, seller_id, rows)

    async def _write(self, user_id: int, seller_id: int, rows: list[FeedRow]) -> Row:
        job_id = new_job_id()
        db = self.uow.db
        async with self.uow.write(user_id) as change:
            if await db.fetch_one("SELECT id FROM sellers WHERE id = ? AND user_id = ?", seller_id, user_id) is None:
                raise NotFound("seller", seller_id)  # deleted while the feed was downloading
            existing = {row["sku"]: row for row in await products_where(db, user_id, "sku", (row.sku for row in rows))}
            settings = await db.fetch_one(
                "SELECT default_markup_hundredths, currency, low_stock_threshold FROM settings WHERE user_id = ?",
                user_id,
            )
            markup = settings["default_markup_hundredths"] if settings else 3000
            currency = settings["currency"] if settings else "USD"
            threshold = int(settings["low_stock_threshold"]) if settings else DEFAULT_THRESHOLD
            errors: list[InvalidField] = []
            for index, row in enumerate(rows):
                if index and index % CHUNK == 0:
                    await pause()
                errors.extend(_semantic_errors(row, existing.get(row.sku), seller_id))
            if errors:
                raise Unprocessable(f"{_count(errors)} of the feed cannot be imported", errors, source="feed")
            change.record(events.STOCK_SYNC_STARTED, {"job_id": job_id, "seller_id": seller_id, "total": len(rows)})
            writes: list[tuple[Row | None, Values]] = []
            added = 0
            for index, row in enumerate(rows):
                if index and index % CHUNK == 0:
                    await pause()
                before = existing.get(row.sku)
                if before is None:
                    writes.append((None, _new_product(seller_id, row, markup, currency)))
                    added += 1
                    continue
                diff = {key: value for key, value in _columns(row, seller_id).items() if before[key] != value}
                if diff:
                    writes.append((before, diff))
            await write_products(db, change, writes, threshold=threshold)
            updated = len(writes) - added
            counts = {"total": len(rows), "added": added, "updated": updated, "unchanged": len(rows) - added - updated}
            change.record(
                events.SELLER_PRODUCTS_FETCHED,
                {"seller_id": seller_id, "added": added, "updated": updated, "total": len(rows)},
            )
            change.record(events.STOCK_SYNC_COMPLETED, {"job_id": job_id, "seller_id": seller_id, **counts})
        return {"job_id": job_id, "seller_id": seller_id, **counts}


# --- 1. fetching -----------------------------------------------------------------------------------

ACCEPT_ENCODING = "gzip, deflate"
DECODE_STEP = 256 * 1024  # inflate at most this much at a time, yielding to the event loop in between


def check_feed_url(url: str) -> None:
    """Raise :class:`InvalidField` (``feed_url``) unless ``url`` is an http(s) URL with a host and a
    valid port (``http://127.0.0.1:1:80/`` or ``http://[127.0.0.1]:1/`` are not)."""
    try:
        parts = urlsplit(url)
        host = parts.hostname
        parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError as exc:
        raise InvalidField("feed_url", f"is not a valid URL ({exc})") from None
    if parts.scheme not in {"http", "https"} or not host:
        raise InvalidField("feed_url", "must be an http(s) URL with a host")


async def fetch_feed(url: str, settings: FeedSettings) -> tuple[bytes, str]:
    """The feed's body and content type; every failure is a :class:`DomainError` saying what went wrong.

    The body is decoded here, not by httpx, so that ``max_bytes`` caps the *decoded* size while
    decoding (a 2 KB gzip bomb never becomes 1 GiB) and each inflation step is bounded (the event
    loop keeps serving). ``Content-Encoding`` may be ``gzip`` (``x-gzip``), ``deflate`` or
    ``identity``, one at most: stacked or unknown encodings are refused.
    """
    try:
        with anyio.fail_after(settings.timeout_s):
            async with httpx.AsyncClient(timeout=settings.timeout_s, follow_redirects=False, trust_env=False) as client:
                for _ in range(MAX_REDIRECTS + 1):
                    requests = await _pinned_requests(client, url, settings.allow_private_hosts)
                    response = await _send_to_first_that_answers(client, requests)
                    try:
                        if response.is_redirect and "location" in response.headers:
                            url = urljoin(url, response.headers["location"])
                            if urlsplit(url).scheme not in {"http", "https"}:
                                raise UpstreamError(f"the feed redirected to a non-HTTP address: {url}")
                            continue
                        if response.status_code != 200:
                            raise UpstreamError(f"the feed answered HTTP {response.status_code}")
                        return await _read_capped(response, settings.max_bytes), response.headers.get(
                            "content-type", ""
                        )
                    finally:
                        await response.aclose()
                raise UpstreamError(f"the feed redirected more than {MAX_REDIRECTS} times")
    except TimeoutError:
        raise UpstreamTimeout(f"the feed did not answer within {settings.timeout_s:g}s") from None
    except httpx.TimeoutException:
        raise UpstreamTimeout(f"the feed did not answer within {settings.timeout_s:g}s") from None
    except httpx.HTTPError as exc:
        raise UpstreamError(f"the feed could not be reached ({type(exc).__name__})") from None


async def _send_to_first_that_answers(client: httpx.AsyncClient, requests: list[httpx.Request]) -> httpx.Response:
    """Send to each address in turn until one accepts the connection (e.g. ``::1`` then ``127.0.0.1``)."""
    for request in requests[:-1]:
        try:
            return await client.send(request, stream=True)
        except httpx.ConnectError:
            continue
    return await client.send(requests[-1], stream=True)


async def _pinned_requests(client: httpx.AsyncClient, url: str, allow_private: bool) -> list[httpx.Request]:
    """A GET for ``url`` per address of its host, all checked; each keeps the name for Host and TLS."""
    try:
        check_feed_url(url)
    except InvalidField as exc:
        raise Unprocessable(f"feed_url {url!r} {exc.message}") from None
    parts = urlsplit(url)
    host = parts.hostname
    assert host is not None  # checked above
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        infos = await anyio.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise UpstreamError(f"the feed's host {host!r} could not be resolved ({exc.strerror or exc})") from None
    addresses = [ipaddress.ip_address(info[4][0]) for info in infos]
    if not allow_private:
        blocked = [address for address in addresses if not is_public(address)]
        if blocked:
            raise Unprocessable(
                f"feed_url {url!r} points to {blocked[0]}, which is not a public address: such feeds are refused"
            )
    host_header = f"[{host}]" if ":" in host else host
    if parts.port:
        host_header = f"{host_header}:{parts.port}"
    requests = []
    for address in dict.fromkeys(addresses):
        literal = f"[{address}]" if address.version == 6 else str(address)
        netloc = f"{literal}:{parts.port}" if parts.port else literal
        requests.append(
            client.build_request(
                "GET",
                urlunsplit((parts.scheme, netloc, parts.path or "/", parts.query, "")),
                headers={
                    "Host": host_header,
                    "Accept": "application/json, text/csv;q=0.9, */*;q=0.1",
                    "Accept-Encoding": ACCEPT_ENCODING,
                },
                extensions={"sni_hostname": host},
            )
        )
    return requests


_NAT64 = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48"))
_IPV4_TRANSLATED = ipaddress.ip_network("::ffff:0:0:0/96")
_IPV4_COMPATIBLE = ipaddress.ip_network("::/96")


def is_public(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """True for a globally reachable unicast address.

    An IPv6 address that embeds an IPv4 one (mapped ``::ffff:a.b.c.d``, translated
    ``::ffff:0:a.b.c.d``, NAT64 ``64:ff9b::a.b.c.d``, 6to4 ``2002:AABB:CCDD::``) is as public as
    the IPv4 address it carries; the deprecated IPv4-compatible (``::a.b.c.d``) and site-local
    (``fec0::/10``) forms are refused outright.
    """
    if isinstance(address, ipaddress.IPv6Address):
        embedded = _embedded_ipv4(address)
        if embedded is not None:
            return is_public(embedded)
        if address in _IPV4_COMPATIBLE or address.is_site_local:
            return False
    return address.is_global and not address.is_multicast


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address in _IPV4_TRANSLATED or any(address in network for network in _NAT64):
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


async def _read_capped(response: httpx.Response, max_bytes: int) -> bytes:
    """The decoded body, refused as soon as it (or the raw body) passes ``max_bytes``."""
    declared = response.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > max_bytes:
        raise Unprocessable(f"the feed is {int(declared)} bytes, over the limit of {max_bytes}")
    decoder = _decoder_for(response.headers.get_list("content-encoding", split_commas=True))
    chunks: list[bytes] = []
    raw_size = size = 0
    async for raw in response.aiter_raw():
        raw_size += len(raw)
        if raw_size > max_bytes:
            raise Unprocessable(f"the feed is over the limit of {max_bytes} bytes")
        for chunk in decoder.feed(raw, max_bytes - size + 1):
            size += len(chunk)
            if size > max_bytes:
                raise Unprocessable(f"the feed is over the limit of {max_bytes} bytes (once decoded)")
            chunks.append(chunk)
            await anyio.lowlevel.checkpoint()
    tail = decoder.finish()
    if size + len(tail) > max_bytes:
        raise Unprocessable(f"the feed is over the limit of {max_bytes} bytes (once decoded)")
    chunks.append(tail)
    return b"".join(chunks)


class _Identity:
    def feed(self, data: bytes, limit: int) -> Iterator[bytes]:
        yield data

    def finish(self) -> bytes:
        return b""


class _Inflate:
    """gzip (members one after another) or deflate (zlib-wrapped, or raw as some servers send it)."""

    def __init__(self, encoding: str) -> None:
        self.gzip = encoding in {"gzip", "x-gzip"}
        self.inflater = self._new()
        self.first = True

    def _new(self) -> Any:
        return zlib.decompressobj(16 + zlib.MAX_WBITS if self.gzip else zlib.MAX_WBITS)

    def feed(self, data: bytes, limit: int) -> Iterator[bytes]:
        """Inflate ``data`` in steps of at most :data:`DECODE_STEP`, stopping past ``limit`` bytes."""
        produced = 0
        while data and produced <= limit:
            try:
                chunk = self.inflater.decompress(data, DECODE_STEP)
            except zlib.error:
                if self.gzip or not self.first:
                    raise Unprocessable("the feed's compressed body is corrupt") from None
                self.inflater = zlib.decompressobj(-zlib.MAX_WBITS)  # raw deflate
                chunk = self.inflater.decompress(data, DECODE_STEP)
            self.first = False
            produced += len(chunk)
            data = self.inflater.unconsumed_tail
            if self.inflater.eof:
                data = self.inflater.unused_data
                if data and self.gzip:
                    self.inflater = self._new()  # a next gzip member
                elif data:
                    raise Unprocessable("the feed has data after its compressed body")
            yield chunk

    def finish(self) -> bytes:
        if not self.inflater.eof:
            raise Unprocessable("the feed's compressed body is truncated")
        return b""


def _decoder_for(encodings: list[str]) -> _Identity | _Inflate:
    names = [name.strip().lower() for name in encodings if name.strip()]
    if len(names) > 1:
        stacked = ", ".join(names)
        raise Unprocessable(f"the feed's Content-Encoding {stacked!r} is refused: use one of {ACCEPT_ENCODING}")
    if not names or names[0] == "identity":
        return _Identity()
    if names[0] in {"gzip", "x-gzip", "deflate"}:
        return _Inflate(names[0])
    raise Unprocessable(f"the feed's Content-Encoding {names[0]!r} is not supported: use one of {ACCEPT_ENCODING}")


# --- 2. parsing and checking ------------------------------------------------------------------------


def sniff_format(url: str, content_type: str, body: bytes) -> str:
    """``json`` or ``csv``: from the content type, else the URL's extension, else the first byte."""
    kind = content_type.split(";", 1)[0].strip().lower()
    if kind.endswith("json"):
        return "json"
    if kind in {"text/csv", "application/csv"}:
        return "csv"
    path = urlsplit(url).path.lower()
    if path.endswith(".json"):
        return "json"
    if path.endswith(".csv"):
        return "csv"
    return "json" if body.lstrip()[:1] in {b"[", b"{"} else "csv"


def parse_feed(body: bytes, feed_format: str, max_rows: int) -> list[Any]:
    """The feed's rows (each should be an object); :class:`Unprocessable` when it cannot be read."""
    if feed_format == "json":
        try:
            document = msgspec.json.decode(body)
        except msgspec.DecodeError as exc:
            raise Unprocessable(f"the feed is not valid JSON: {exc}") from None
        if isinstance(document, dict) and isinstance(document.get("products"), list):
            document = document["products"]
        if not isinstance(document, list):
            raise Unprocessable('a JSON feed must be an array of objects (or {"products": [...]})')
        rows: list[Any] = document
    else:
        rows = _csv_rows(body)
    if not rows:
        raise Unprocessable("the feed has no products")
    if len(rows) > max_rows:
        raise Unprocessable(f"the feed has {len(rows)} products, over the limit of {max_rows}")
    return rows


def _csv_rows(body: bytes) -> list[Any]:
    try:
        text = codecs.decode(body, "utf-8-sig")
    except UnicodeDecodeError:
        raise Unprocessable("the CSV feed is not UTF-8 text") from None
    if "\x00" in text:
        raise Unprocessable("the CSV feed contains NUL characters")
    reader = csv.reader(text.splitlines())
    try:
        header = next(reader, None)
        if not header:
            raise Unprocessable("the CSV feed is empty: it needs a header row")
        names = [name.strip().lower() for name in header]
        if "sku" not in names:
            raise Unprocessable(f"the CSV header has no sku column (columns: {', '.join(COLUMNS)})")
        rows: list[Any] = []
        for cells in reader:
            if not any(cell.strip() for cell in cells):
                continue
            if len(cells) != len(names):
                rows.append(f"has {len(cells)} cells, the header has {len(names)}")
                continue
            rows.append(dict(zip(names, cells, strict=True)))
    except csv.Error as exc:
        raise Unprocessable(f"the CSV feed cannot be read: {exc}") from None
    return rows


async def check_rows(raw_rows: list[Any]) -> list[FeedRow]:
    """Every row as a :class:`FeedRow`; :class:`Unprocessable` naming each bad cell (``rows.3.price``).

    Yields to the event loop every :data:`~domain.services.product_writes.CHUNK` rows."""
    errors: list[InvalidField] = []
    rows: list[FeedRow] = []
    first_row_of_sku: dict[str, int] = {}
    for index, raw in enumerate(raw_rows):
        if index and index % CHUNK == 0:
            await pause()
        row_errors, row = _check_row(index, raw, first_row_of_sku)
        errors.extend(row_errors)
        if row is not None:
            rows.append(row)
    if errors:
        raise Unprocessable(f"{_count(errors)} of the feed cannot be imported", errors, source="feed")
    return rows


def _check_row(index: int, raw: Any, first_row_of_sku: dict[str, int]) -> tuple[list[InvalidField], FeedRow | None]:
    """The errors of one row, or the row (``first_row_of_sku`` notes its SKU)."""
    key = f"rows.{index}"
    if isinstance(raw, str):  # a CSV line with the wrong number of cells
        return [InvalidField(key, raw)], None
    if not isinstance(raw, dict):
        return [InvalidField(key, "must be an object")], None
    row_errors: list[InvalidField] = []
    values: dict[str, Any] = {}
    for column in COLUMNS:
        value = raw.get(column)
        if value is None or (isinstance(value, str) and not value.strip()):
            continue
        try:
            values[column] = _cell(column, value, f"{key}.{column}")
        except InvalidField as error:
            row_errors.append(error)
    sku = values.get("sku")
    if sku is None and not any(error.field == f"{key}.sku" for error in row_errors):
        row_errors.append(InvalidField(f"{key}.sku", "is required"))
    elif isinstance(sku, str):
        if sku in first_row_of_sku:
            row_errors.append(InvalidField(f"{key}.sku", f"repeats rows.{first_row_of_sku[sku]}"))
        else:
            first_row_of_sku[sku] = index
    if not row_errors and isinstance(sku, str):
        return [], FeedRow(index=index, sku=sku, values=values)
    return row_errors, None


def _cell(column: str, value: Any, key: str) -> Any:
    if column in {"price", "cost_price"}:
        return parse_money(value.strip() if isinstance(value, str) else value, key)
    if column == "stock":
        if isinstance(value, bool):
            raise InvalidField(key, "must be a whole number")
        if isinstance(value, str) and value.strip().isdigit():
            value = int(value.strip())
        if not isinstance(value, int) or value < 0 or value > MAX_STOCK:
            raise InvalidField(key, f"must be a whole number from 0 to {MAX_STOCK}")
        return value
    if not isinstance(value, str):
        raise InvalidField(key, "must be text")
    text = value.strip()
    if "\x00" in text:
        raise InvalidField(key, "must not contain NUL characters")
    if column == "currency":
        if not _CURRENCY.fullmatch(text):
            raise InvalidField(key, "must be an ISO 4217 code such as USD")
        return text
    if len(text) > _LIMITS[column]:
        raise InvalidField(key, f"must be at most {_LIMITS[column]} characters")
    if column == "sku" and not _SKU.fullmatch(text):
        raise InvalidField(key, "must not be blank")
    return text


def _count(errors: list[InvalidField]) -> str:
    rows = {".".join(error.field.split(".")[:2]) for error in errors}
    return f"{len(rows)} row{'s' if len(rows) != 1 else ''}"


# --- 3. writing --------------------------------------------------------------------------------------


def _semantic_errors(row: FeedRow, product: Row | None, seller_id: int) -> list[InvalidField]:
    key = f"rows.{row.index}"
    if product is None:
        errors = []
        if "name" not in row.values:
            errors.append(InvalidField(f"{key}.name", "is required for a new product"))
        if "price" not in row.values and "cost_price" not in row.values:
            errors.append(InvalidField(f"{key}.price", "a new product needs a price or a cost_price"))
        return errors
    if product["seller_id"] is not None and product["seller_id"] != seller_id:
        return [InvalidField(f"{key}.sku", f"belongs to a product of another seller ({product['seller_id']})")]
    return []


def _columns(row: FeedRow, seller_id: int) -> dict[str, Any]:
    """The product columns a row sets (its given cells, and the link to the seller)."""
    columns: dict[str, Any] = {"seller_id": seller_id}
    for column, value in row.values.items():
        if column == "sku":
            continue
        columns[MONEY_COLUMNS.get(column, column)] = value
    return columns


def _new_product(seller_id: int, row: FeedRow, markup: int, currency: str) -> Values:
    """The columns of a new product from a row (the price from the cost and the markup if not given)."""
    values = _columns(row, seller_id)
    if "price_cents" not in values:
        cost = values["cost_price_cents"]
        values["price_cents"] = min((cost * (10_000 + markup) + 5_000) // 10_000, MAX_CENTS - 1)
    values.setdefault("currency", currency)
    return {"sku": row.sku, "status": "active", **values}
