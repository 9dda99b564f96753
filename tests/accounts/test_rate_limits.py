"""Per-account request rate limits set by the operator, counted across every API
process (two `uvox serve` HTTP processes on PostgreSQL share one count)."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

DECK = "dialprefix,destination,rateinitial,smsrate\n1,USA,0.01,0.0075\n"


def _at_second_start() -> None:
    # Start a burst just after a second begins, so it falls in one window.
    time.sleep(1 - (time.time() % 1) + 0.02)


def _burst_in_one_second(ask, keys: list[str]) -> list[httpx.Response]:
    """The replies to one burst that began and ended within one second, so one window
    counted all of it. A loaded machine can stretch a burst over a second's end,
    where the next window rightly lets more through: such a burst is tried again
    (a second later, in a fresh window), never judged."""
    for _ in range(5):
        # A client each (a connection each, so both HTTP processes get some), made
        # before the burst: making one costs more than its request.
        clients = [httpx.Client(timeout=10) for _ in keys]
        try:
            _at_second_start()
            started = time.time()
            with ThreadPoolExecutor(8) as pool:
                replies = list(pool.map(ask, clients, keys))
            if int(time.time()) == int(started):
                return replies
        finally:
            for c in clients:
                c.close()
    pytest.fail("no burst of requests fitted in one second in five tries: the machine is too slow for this test")


@pytest.mark.parametrize("kind, workers", [("sqlite", "1"), ("postgresql", "2")])
def test_requests_over_the_limit_get_107_and_retry_after_and_others_are_not_limited(uvox_server, kind, workers):
    server = uvox_server(kind, UVOX_WORKERS=workers, UVOX_SMSC_SIM="0", UVOX_DISPATCHER="0")
    limited = server.customer(DECK)
    other = server.admin("account", "create", "--email", "other@example.com", "--plan", "retail")
    other_key = server.admin("apikey", "create", other["accountnumber"])["apikey"]
    assert server.admin("account", "set-limit", limited["accountnumber"], "--per-second", "5")["per_second"] == 5
    assert server.admin("account", "show", limited["accountnumber"])["per_second"] == 5

    def ask(client: httpx.Client | None, key: str) -> httpx.Response:
        if client is None:
            with httpx.Client(timeout=10) as c:
                return c.get(server.url + "/api/get-api/v1/balance", headers={"Api-Key": key})
        return client.get(server.url + "/api/get-api/v1/balance", headers={"Api-Key": key})

    replies = _burst_in_one_second(ask, [limited["apikey"]] * 12 + [other_key] * 12)
    mine, theirs = replies[:12], replies[12:]
    codes = sorted(r.json()["code"] for r in mine)
    assert codes == ["015"] * 5 + ["107"] * 7, codes
    refused = next(r for r in mine if r.json()["code"] == "107")
    assert refused.status_code == 429 and refused.headers["retry-after"] == "1"
    assert "5 requests" in refused.json()["detail"]
    assert all(r.json()["code"] == "015" for r in theirs)

    time.sleep(1.1)  # the next second: allowed again
    assert ask(None, limited["apikey"]).json()["code"] == "015"
    server.admin("account", "set-limit", limited["accountnumber"], "--per-second", "0")
    _at_second_start()
    with ThreadPoolExecutor(8) as pool:
        assert {r.json()["code"] for r in pool.map(ask, [None] * 12, [limited["apikey"]] * 12)} == {"015"}
