"""The official Python client of the UVox HTTP API (the manual's wire format).

Both ``Client`` (blocking) and ``AsyncClient`` (asyncio) cover every endpoint: SMS send
and status, OTP request and verify, balance and rates. Replies become small frozen
dataclasses with ``Decimal`` amounts; every error code of the manual becomes a
``UVoxError`` carrying that code, so callers branch on ``err.code`` rather than parse text.

    with Client(account="123456", api_key="4D41E00J6KMXABS") as uvox:
        sent = uvox.send_sms("+13058888888", "Hello", sender="UVox")
        print(uvox.sms_status(sent.id).statusmessage)

The request building and reply parsing live in plain functions shared by both clients so
that the two cannot drift apart; only the transport differs.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

import httpx

__all__ = [
    "DEFAULT_URL",
    "MAX_RECIPIENTS",
    "AsyncClient",
    "Balance",
    "Client",
    "MessageStatus",
    "OtpSession",
    "OtpVerification",
    "Rate",
    "SentMessage",
    "UVoxConnectionError",
    "UVoxError",
    "api_base",
    "best_rate",
]

DEFAULT_URL = "https://my.unityvox.com"
API_PATH = "/api/get-api/v1/"
MAX_RECIPIENTS = 200
DEFAULT_TIMEOUT = 10.0

#: Codes that mean "the request did what was asked" (the rest are errors).
SEND_OK = {"005", "009"}
STATUS_PENDING = {"011", "012"}
STATUS_SENT = "013"


class UVoxError(Exception):
    """An error reply of the API. ``code`` is the manual's code ("001", "025"...)."""

    def __init__(
        self,
        code: str | None,
        message: str,
        *,
        http_status: int | None = None,
        body: Any = None,
    ) -> None:
        super().__init__(f"{code}: {message}" if code else message)
        self.code = code
        self.message = message
        self.http_status = http_status
        self.body = body

    @property
    def detail(self) -> str | None:
        """The platform's explanation beyond the manual's fixed text, when it gives one."""
        if isinstance(self.body, Mapping) and self.body.get("detail"):
            return str(self.body["detail"])
        return None

    @property
    def session_id(self) -> str | None:
        """For OTP errors: the session the reply names (021 keeps it: the code waits for a top-up)."""
        if isinstance(self.body, Mapping):
            value = self.body.get("sessionID")
            return None if value is None else str(value)
        return None


class UVoxConnectionError(UVoxError):
    """No usable answer: the platform is unreachable, timed out, or is not a UVox API."""

    def __init__(self, message: str, *, http_status: int | None = None) -> None:
        super().__init__(None, message, http_status=http_status)


@dataclass(frozen=True)
class SentMessage:
    """One recipient's result of a send: accepted (005), queued for balance (009) or refused."""

    to: str
    id: str | None
    code: str
    status: str
    statusmessage: str

    @property
    def accepted(self) -> bool:
        return self.code in SEND_OK

    @property
    def queued_for_balance(self) -> bool:
        return self.code == "009"


@dataclass(frozen=True)
class MessageStatus:
    """Status of one message (011 To send, 012 waiting for credit, 013 SMS Sent, or a 1xx final state)."""

    id: str
    code: str
    status: str
    statusmessage: str
    state: str | None = None
    #: The carrier's reason when a message failed or was not delivered.
    error: str | None = None
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def pending(self) -> bool:
        return self.code in STATUS_PENDING

    @property
    def delivered(self) -> bool:
        return self.state == "delivered" or (
            self.state is None
            and "deliver" in self.statusmessage.lower()
            and "undeliver" not in self.statusmessage.lower()
        )


@dataclass(frozen=True)
class OtpSession:
    session_id: str
    phone_number: str
    code: str
    statusmessage: str
    #: The SMS that carries the code; its delivery can be followed with ``sms_status``.
    message_id: str | None = None


@dataclass(frozen=True)
class OtpVerification:
    session_id: str
    code: str
    statusmessage: str

    @property
    def matched(self) -> bool:
        return self.code == "027"


@dataclass(frozen=True)
class Balance:
    accountnumber: str
    currency: str
    balance: Decimal
    credit: Decimal | None = None


@dataclass(frozen=True)
class Rate:
    dialprefix: str
    destination: str
    rateinitial: Decimal


# ---------------------------------------------------------------------------------------
# Request building and reply parsing, shared by Client and AsyncClient.


def api_base(url: str | None) -> str:
    """The API root for whatever address a user gives: bare site or full endpoint."""
    url = (url or "").strip() or DEFAULT_URL
    if "://" not in url:
        url = "https://" + url.lstrip("/")
    url = url.split("?", 1)[0].split("#", 1)[0]
    cut = url.lower().find("/api/get-api/")
    if cut != -1:
        url = url[:cut]
    return url.rstrip("/") + API_PATH


def _decimal(value: Any) -> Decimal:
    try:
        return Decimal(str(value))
    except (InvalidOperation, ValueError) as exc:
        raise UVoxConnectionError(f"UVox sent an amount that is not a number: {value!r}") from exc


def _decode(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        raise UVoxConnectionError(
            f"UVox replied HTTP {response.status_code} without a UVox answer "
            f"({response.headers.get('content-type', 'no content type')}); check the URL",
            http_status=response.status_code,
        ) from None


def _raise_for_code(body: Any, response: httpx.Response, ok: Iterable[str]) -> Mapping[str, Any]:
    if not isinstance(body, Mapping) or "code" not in body:
        raise UVoxConnectionError(
            f"UVox replied HTTP {response.status_code} with an unexpected body", http_status=response.status_code
        )
    code = str(body["code"])
    if code not in set(ok):
        raise UVoxError(
            code,
            str(body.get("statusmessage") or body.get("resultstring") or "error"),
            http_status=response.status_code,
            body=body,
        )
    return body


def _recipient_items(body: Any) -> list[Mapping[str, Any]] | None:
    """The per-recipient list of a several-recipient reply, or None for one flat object."""
    if isinstance(body, list):
        return [item for item in body if isinstance(item, Mapping)]
    if isinstance(body, Mapping):
        for key in ("results", "messages", "recipients", "data"):
            if isinstance(body.get(key), list):
                return [item for item in body[key] if isinstance(item, Mapping)]
    return None


def _sent(item: Mapping[str, Any], fallback_to: str) -> SentMessage:
    raw_id = item.get("id")
    return SentMessage(
        to=str(item.get("to") or fallback_to),
        id=None if raw_id in (None, "") else str(raw_id),
        code=str(item.get("code", "")),
        status=str(item.get("status", "")),
        statusmessage=str(item.get("statusmessage", "")),
    )


def _parse_send_one(response: httpx.Response, to: str) -> SentMessage:
    body = _decode(response)
    items = _recipient_items(body)
    if items is not None and len(items) == 1:
        body = items[0]
    return _sent(_raise_for_code(body, response, SEND_OK), to)


def _parse_send_many(response: httpx.Response, numbers: Sequence[str]) -> list[SentMessage]:
    body = _decode(response)
    items = _recipient_items(body)
    if items is None:
        # A flat object: the lone recipient's result, or an error for the whole request.
        if len(numbers) == 1 and isinstance(body, Mapping) and body.get("to") is not None:
            return [_sent(body, numbers[0])]
        _raise_for_code(body, response, SEND_OK)
        return [_sent(body, numbers[0])]
    return [_sent(item, numbers[i] if i < len(numbers) else "") for i, item in enumerate(items)]


def _parse_status(response: httpx.Response, message_id: str) -> MessageStatus:
    body = _decode(response)
    if isinstance(body, Mapping) and str(body.get("status", "")).lower() != "error" and "code" in body:
        code = str(body["code"])
        return MessageStatus(
            id=str(body.get("id") or message_id),
            code=code,
            status=str(body.get("status", "")),
            statusmessage=str(body.get("statusmessage", "")),
            state=None if body.get("state") is None else str(body["state"]),
            error=None if not body.get("error") else str(body["error"]),
            raw=dict(body),
        )
    _raise_for_code(body, response, ())
    raise AssertionError("unreachable")  # pragma: no cover


def _parse_otp_request(response: httpx.Response) -> OtpSession:
    body = _raise_for_code(_decode(response), response, {"022"})
    return OtpSession(
        session_id=str(body.get("sessionID", "")),
        phone_number=str(body.get("phone_number", "")),
        code=str(body["code"]),
        statusmessage=str(body.get("statusmessage", "")),
        message_id=None if body.get("id") in (None, "") else str(body["id"]),
    )


def _parse_otp_verify(response: httpx.Response, session_id: str) -> OtpVerification:
    body = _raise_for_code(_decode(response), response, {"027"})
    return OtpVerification(
        session_id=str(body.get("sessionID") or session_id),
        code=str(body["code"]),
        statusmessage=str(body.get("statusmessage", "")),
    )


def _parse_balance(response: httpx.Response) -> Balance:
    body = _raise_for_code(_decode(response), response, {"015"})
    credit = body.get("credit")
    return Balance(
        accountnumber=str(body.get("accountnumber", "")),
        currency=str(body.get("currency", "")),
        balance=_decimal(body.get("balance", "0")),
        credit=None if credit in (None, "") else _decimal(credit),
    )


def _parse_rates(response: httpx.Response) -> list[Rate]:
    body = _decode(response)
    if not isinstance(body, list):
        _raise_for_code(body, response, ())
    return [
        Rate(
            dialprefix=str(row.get("dialprefix", "")),
            destination=str(row.get("destination", "")),
            rateinitial=_decimal(row.get("rateinitial", "0")),
        )
        for row in body
        if isinstance(row, Mapping)
    ]


def best_rate(rates: Iterable[Rate], number: str) -> Rate | None:
    """The rate that applies to ``number``: the longest dial prefix it starts with."""
    digits = "".join(ch for ch in number if ch.isdigit())
    if digits.startswith("00"):
        digits = digits[2:]
    matching = [rate for rate in rates if rate.dialprefix and digits.startswith(rate.dialprefix)]
    return max(matching, key=lambda rate: len(rate.dialprefix), default=None)


def _clean_numbers(to: str | Iterable[str]) -> list[str]:
    pieces = [to] if isinstance(to, str) else list(to)
    numbers: list[str] = []
    for piece in pieces:
        numbers.extend(part.strip() for part in str(piece).split(",") if part.strip())
    return numbers


def _chunks(numbers: Sequence[str]) -> list[list[str]]:
    return [list(numbers[i : i + MAX_RECIPIENTS]) for i in range(0, len(numbers), MAX_RECIPIENTS)]


class _Base:
    def __init__(
        self,
        account: str | None,
        api_key: str,
        url: str | None,
        timeout: float,
    ) -> None:
        if not api_key:
            raise ValueError("an API key is required")
        self.account = account or None
        self.api_key = api_key
        self.base_url = api_base(url)
        self.timeout = timeout

    def _request(self, endpoint: str, variables: Mapping[str, str]) -> tuple[str, dict[str, str], dict[str, str]]:
        """URL, form body and headers of one call. With an account number, auth goes in the
        body (the manual's way); with the key alone, in the Api-Key header, which identifies
        the account by itself. POST keeps the key and the text out of access logs."""
        headers = {"Accept": "application/json", "User-Agent": "uvox-python-client"}
        data: dict[str, str] = {}
        if self.account:
            data.update(accountnumber=self.account, apikey=self.api_key)
        else:
            headers["Api-Key"] = self.api_key
        data.update({k: v for k, v in variables.items() if v is not None})
        return self.base_url + endpoint, data, headers

    @staticmethod
    def _send_vars(to: str, text: str, sender: str | None, idempotency_key: str | None = None) -> dict[str, str]:
        variables = {"to": to, "text": text}
        if sender:
            variables["from"] = sender
        if idempotency_key is not None:
            variables["idempotency_key"] = idempotency_key
        return variables

    @staticmethod
    def _otp_vars(ref_id: str, phone_number: str, idempotency_key: str | None) -> dict[str, str]:
        variables = {"ref_id": ref_id, "phone_number": phone_number}
        if idempotency_key is not None:
            variables["idempotency_key"] = idempotency_key
        return variables


def _transport_error(exc: httpx.HTTPError, url: str) -> UVoxConnectionError:
    if isinstance(exc, httpx.TimeoutException):
        return UVoxConnectionError(f"UVox did not answer in time ({url})")
    return UVoxConnectionError(f"UVox unreachable at {url}: {exc}")


class Client(_Base):
    """Blocking client; one keep-alive connection pool, so reuse it for many calls."""

    def __init__(
        self,
        account: str | None = None,
        api_key: str = "",
        *,
        url: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        super().__init__(account, api_key, url, timeout)
        self._http = httpx.Client(timeout=timeout, transport=transport)

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def _post(self, endpoint: str, variables: Mapping[str, str]) -> httpx.Response:
        url, data, headers = self._request(endpoint, variables)
        try:
            return self._http.post(url, data=data, headers=headers)
        except httpx.HTTPError as exc:
            raise _transport_error(exc, url) from exc

    def send_sms(
        self, to: str, text: str, sender: str | None = None, *, idempotency_key: str | None = None
    ) -> SentMessage:
        """Send to one number; any refusal (002, 003, 014...) raises ``UVoxError``. With an
        ``idempotency_key``, calling again with the same arguments within 24 hours (after a
        timeout, say) returns the first message and sends nothing."""
        variables = self._send_vars(to, text, sender, idempotency_key)
        return _parse_send_one(self._post("sms-api", variables), to)

    def send_bulk(self, to: str | Iterable[str], text: str, sender: str | None = None) -> list[SentMessage]:
        """Send one text to many numbers (200 per request, more are split). A refused number
        is a result with ``accepted`` False; an error of the whole request raises."""
        results: list[SentMessage] = []
        for chunk in _chunks(_clean_numbers(to)):
            response = self._post("sms-api", self._send_vars(",".join(chunk), text, sender))
            results.extend(_parse_send_many(response, chunk))
        return results

    def sms_status(self, message_id: str) -> MessageStatus:
        return _parse_status(self._post("sms-api/status", {"messageId": str(message_id)}), str(message_id))

    def otp_request(self, ref_id: str, phone_number: str, *, idempotency_key: str | None = None) -> OtpSession:
        return _parse_otp_request(self._post("OTP-api", self._otp_vars(ref_id, phone_number, idempotency_key)))

    def otp_verify(self, session_id: str, otp_code: str) -> OtpVerification:
        response = self._post("OTP-api/verify", {"sessionid": session_id, "otp_code": otp_code})
        return _parse_otp_verify(response, session_id)

    def balance(self) -> Balance:
        return _parse_balance(self._post("balance", {}))

    def rates(self) -> list[Rate]:
        return _parse_rates(self._post("rates", {}))


class AsyncClient(_Base):
    """The same API for asyncio code: ``async with AsyncClient(...) as uvox: await uvox.balance()``."""

    def __init__(
        self,
        account: str | None = None,
        api_key: str = "",
        *,
        url: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        super().__init__(account, api_key, url, timeout)
        self._http = httpx.AsyncClient(timeout=timeout, transport=transport)

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _post(self, endpoint: str, variables: Mapping[str, str]) -> httpx.Response:
        url, data, headers = self._request(endpoint, variables)
        try:
            return await self._http.post(url, data=data, headers=headers)
        except httpx.HTTPError as exc:
            raise _transport_error(exc, url) from exc

    async def send_sms(
        self, to: str, text: str, sender: str | None = None, *, idempotency_key: str | None = None
    ) -> SentMessage:
        variables = self._send_vars(to, text, sender, idempotency_key)
        return _parse_send_one(await self._post("sms-api", variables), to)

    async def send_bulk(self, to: str | Iterable[str], text: str, sender: str | None = None) -> list[SentMessage]:
        results: list[SentMessage] = []
        for chunk in _chunks(_clean_numbers(to)):
            response = await self._post("sms-api", self._send_vars(",".join(chunk), text, sender))
            results.extend(_parse_send_many(response, chunk))
        return results

    async def sms_status(self, message_id: str) -> MessageStatus:
        response = await self._post("sms-api/status", {"messageId": str(message_id)})
        return _parse_status(response, str(message_id))

    async def otp_request(self, ref_id: str, phone_number: str, *, idempotency_key: str | None = None) -> OtpSession:
        variables = self._otp_vars(ref_id, phone_number, idempotency_key)
        return _parse_otp_request(await self._post("OTP-api", variables))

    async def otp_verify(self, session_id: str, otp_code: str) -> OtpVerification:
        response = await self._post("OTP-api/verify", {"sessionid": session_id, "otp_code": otp_code})
        return _parse_otp_verify(response, session_id)

    async def balance(self) -> Balance:
        return _parse_balance(await self._post("balance", {}))

    async def rates(self) -> list[Rate]:
        return _parse_rates(await self._post("rates", {}))
