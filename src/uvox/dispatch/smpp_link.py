"""The dispatcher's default links: SMPP connectors to the carriers' SMSCs."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from uvox import secretbox
from uvox.dispatch.link import Link, Part, PartDone, ReceiptHandler
from uvox.dispatch.routing import ConnectorSpec
from uvox.smpp.connector import ConnectorConfig, SmppConnector


class SmppLinks:
    """A :class:`~uvox.dispatch.link.LinkFactory` of SMPP connectors.

    ``options`` are extra ``ConnectorConfig`` fields (timeouts, backoff) for every
    connector, which the spec in the database does not hold. ``secret`` (the instance
    secret) opens each connector's sealed bind password as its link is made: the
    clear password lives only in that link's config (never in a repr or a log line).
    """

    def __init__(self, options: dict[str, Any] | None = None, secret: bytes | None = None) -> None:
        self.options = options or {}
        self._secret = secret

    def __call__(self, spec: ConnectorSpec, on_receipt: ReceiptHandler, on_bound: Callable[[bool], None]) -> Link:
        password = ""
        if spec.sealed_password:
            if self._secret is None:
                raise ValueError(f"connector {spec.name} has a sealed password and no secret was given to open it")
            password = secretbox.open_(self._secret, spec.sealed_password, secretbox.SMPP_PASSWORD)
        cfg = ConnectorConfig(
            host=spec.host,
            port=spec.port,
            system_id=spec.system_id,
            password=password,
            system_type=spec.system_type,
            name=spec.name,
            bind_mode=spec.bind_mode,
            window=spec.window or 64,
            tps=float(spec.tps or 0),
            **self.options,
        )
        tx = SmppConnector(cfg, on_receipt=on_receipt, on_bound=on_bound)
        if spec.bind_mode != "transmitter":
            return tx
        rx_cfg = ConnectorConfig(**{**cfg.__dict__, "bind_mode": "receiver", "name": spec.name + "/rx"})
        return _WithReceiver(tx, SmppConnector(rx_cfg, on_receipt=on_receipt))


class _WithReceiver:
    """A transmitter bind gets no receipts; a receiver bind beside it does."""

    def __init__(self, transmitter: SmppConnector, receiver: SmppConnector) -> None:
        self.transmitter, self.receiver = transmitter, receiver

    @property
    def is_bound(self) -> bool:
        return self.transmitter.is_bound

    def start(self) -> _WithReceiver:
        self.transmitter.start()
        self.receiver.start()
        return self

    def stop(self) -> None:
        self.transmitter.stop()
        self.receiver.stop()

    def submit_batch(self, parts: Sequence[Part], on_done: PartDone) -> None:
        self.transmitter.submit_batch(parts, on_done)
