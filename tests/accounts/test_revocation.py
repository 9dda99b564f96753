"""Revoking a key, disabling an account and changing a plan take effect on the very
next request of a running `uvox serve`, done from another process (the CLI), on
SQLite and on PostgreSQL with several HTTP processes: each process remembers keys
it has seen, and forgets them through the database, not after a while."""

from __future__ import annotations

import httpx
import pytest

DECK = "dialprefix,destination,rateinitial,smsrate\n1,USA,0.01,0.0075\n"


def balance(server, key: str) -> str:
    r = httpx.get(server.url + "/api/get-api/v1/balance", headers={"Api-Key": key}, timeout=10)
    return r.json()["code"]


@pytest.mark.parametrize("kind, workers", [("sqlite", "1"), ("postgresql", "2")])
def test_revoked_key_and_disabled_account_are_refused_on_the_next_request(uvox_server, kind, workers):
    server = uvox_server(kind, UVOX_WORKERS=workers, UVOX_SMSC_SIM="0", UVOX_DISPATCHER="0")
    c = server.customer(DECK)
    second = server.admin("apikey", "create", c["accountnumber"])
    # Seen (and remembered) by every HTTP process: connections land on either.
    for _ in range(20):
        assert balance(server, c["apikey"]) == "015"
        assert balance(server, second["apikey"]) == "015"

    keys = server.admin("apikey", "list", c["accountnumber"])
    first_id = next(
        k["id"] for k in keys["keys"] if c["apikey"].startswith(k["hint"][:4]) and c["apikey"].endswith(k["hint"][-4:])
    )
    server.admin("apikey", "revoke", c["accountnumber"], str(first_id))
    assert [balance(server, c["apikey"]) for _ in range(10)] == ["001"] * 10
    assert balance(server, second["apikey"]) == "015"

    server.admin("account", "disable", c["accountnumber"])
    assert [balance(server, second["apikey"]) for _ in range(10)] == ["001"] * 10
    server.admin("account", "enable", c["accountnumber"])
    assert [balance(server, second["apikey"]) for _ in range(10)] == ["015"] * 10
