"""The dispatcher's view of a carrier link, as a ``Protocol``.

The dispatcher knows links through this interface only, the way an httpx client
knows ``BaseTransport``: ``uvox.smpp.connector.SmppConnector`` satisfies it
structurally (``smpp_link`` builds those), and a test can run the dispatcher
through a link of its own. What a link promises:

* ``submit_batch(parts, on_done)`` reports every part exactly once, as
  ``on_done(tag, smsc_message_id, None)`` or ``on_done(tag, None, error)``, from
  any thread, possibly before it returns (a link that is not bound fails them at
  once). An error that is a ``uvox.smpp.connector.PermanentSubmitError`` means the
  carrier refused the part for good (the message fails and is refunded); any
  other error means try again later.
* Receipts go to the ``on_receipt`` the factory was given, each with an ``ack``
  the dispatcher calls once the receipt is stored; one never acknowledged must
  come again (SMPP's SMSC redelivers it).
* ``on_bound(up)`` is called when the link comes up or goes down, so the
  dispatcher claims for it at once rather than at its next poll.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from uvox.dispatch.routing import ConnectorSpec
from uvox.smpp.pdu import Receipt

#: (message id, part number): names a part in its result.
Tag = tuple[int, int]
PartDone = Callable[[Tag, str | None, Exception | None], None]
Ack = Callable[[bool], None]
ReceiptHandler = Callable[[Receipt, Ack], None]


@dataclass(frozen=True, slots=True)
class Part:
    """One SMS part to submit, encoded: what travels in a submit_sm."""

    tag: Tag
    sender: str
    recipient: str
    body: bytes
    data_coding: int
    esm_class: int


class Link(Protocol):
    @property
    def is_bound(self) -> bool:
        """True while parts submitted now can reach the carrier."""
        ...

    def start(self) -> object: ...

    def stop(self) -> None:
        """Fail what is unanswered, disconnect; after this no callback comes."""
        ...

    def submit_batch(self, parts: Sequence[Part], on_done: PartDone) -> None: ...


class LinkFactory(Protocol):
    """Makes the (not yet started) link for one connector this dispatcher takes."""

    def __call__(self, spec: ConnectorSpec, on_receipt: ReceiptHandler, on_bound: Callable[[bool], None]) -> Link: ...
