"""What the dispatcher's set-based statements share.

Batches of thousands of ids are cut into chunks so that one ``IN (...)`` list
stays well inside what both databases bind in a statement.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TypeVar

T = TypeVar("T")

#: Ids per ``IN`` list.
CHUNK = 500


def chunks(items: Sequence[T], n: int = CHUNK) -> Iterator[Sequence[T]]:
    for i in range(0, len(items), n):
        yield items[i : i + n]
