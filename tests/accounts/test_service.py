"""Accounts, API keys and passwords at the service level (uvox.accounts), on SQLite
and on PostgreSQL: what the CLI, the API and the portal all rely on."""

from __future__ import annotations

import hashlib
import re
from decimal import Decimal
from types import SimpleNamespace

import pytest
import sqlalchemy as sa

from uvox.accounts import apikeys, service
from uvox.billing import plans
from uvox.db import schema as t
from uvox.db.session import read
from uvox.errors import Conflict, NotFound

PASSWORD = "correct horse 42"


def _row(platform, table, **where):
    with platform.engine.connect() as c:
        return c.execute(sa.select(table).where(*(table.c[k] == v for k, v in where.items()))).one()


def _all_values(platform, table) -> list[str]:
    """Every value of every row of ``table``, as text."""
    with platform.engine.connect() as c:
        return [str(v) for row in c.execute(sa.select(table)) for v in row]


# --- creating an account -------------------------------------------------------------


def test_a_new_account_has_a_random_8_digit_number_and_starts_empty(platform):
    a = service.create_account(platform.engine, email="  Ana@Example.COM ")
    assert re.fullmatch(r"[1-9]\d{7}", a.number)
    assert a.email == "ana@example.com"  # stored normalised
    assert (a.balance, a.credit_limit, a.available) == (Decimal(0), Decimal(0), Decimal(0))
    assert a.currency == "US$" and a.plan_id is None
    assert not a.disabled and not a.is_staff and a.rate_limit is None and a.callback_url is None
    assert _row(platform, t.accounts, id=a.id).number == a.number
    # Found again by number or by e-mail, whatever its case and spaces.
    assert service.find(platform.engine, a.number) == a
    assert service.find(platform.engine, " ANA@example.com") == a
    b = service.create_account(platform.engine)
    assert b.number != a.number and b.email is None


def test_a_colliding_random_number_is_drawn_again(platform, monkeypatch):
    first = service.create_account(platform.engine)
    draws = iter([int(first.number) - 10_000_000, 12_345_678 - 10_000_000])
    monkeypatch.setattr(service, "secrets", SimpleNamespace(randbelow=lambda n: next(draws)))
    second = service.create_account(platform.engine)
    assert second.number == "12345678"


def test_an_account_on_a_plan_takes_the_plans_currency(platform):
    plans.create_plan(platform.engine, "euro", "EUR")
    a = service.create_account(platform.engine, plan="euro")
    assert a.currency == "EUR" and a.plan_id == plans.get_plan(platform.engine, "euro").id
    assert service.create_account(platform.engine, currency="CLP").currency == "CLP"


def test_bad_input_is_refused_with_the_documented_error(platform):
    service.create_account(platform.engine, email="dup@example.com")
    with pytest.raises(Conflict, match="already exists"):
        service.create_account(platform.engine, email=" DUP@example.com")
    with pytest.raises(NotFound, match="no plan named 'nope'"):
        service.create_account(platform.engine, email="new@example.com", plan="nope")
    # Neither refusal left an account behind.
    with platform.engine.connect() as c:
        assert c.execute(sa.select(t.accounts.c.email)).scalars().all() == ["dup@example.com"]
    with pytest.raises(NotFound):
        service.find(platform.engine, "99999999")
    with pytest.raises(NotFound):
        service.find(platform.engine, "nobody@example.com")
    with read(platform.engine) as conn, pytest.raises(ValueError, match="name the account"):
        service.get(conn)
    a = service.create_account(platform.engine)
    with pytest.raises(Conflict):
        service.set_rate_limit(platform.engine, a.id, -1)
    assert service.set_rate_limit(platform.engine, a.id, 5).rate_limit == 5
    assert service.set_rate_limit(platform.engine, a.id, 0).rate_limit is None  # 0: no limit


# --- passwords -----------------------------------------------------------------------


def test_a_password_is_stored_as_salted_argon2id_and_verifies(platform):
    a = service.create_account(platform.engine, email="p@example.com", password=PASSWORD)
    b = service.create_account(platform.engine, email="q@example.com", password=PASSWORD)
    stored = _row(platform, t.accounts, id=a.id).password_hash
    assert stored.startswith("$argon2id$") and PASSWORD not in stored
    assert stored != _row(platform, t.accounts, id=b.id).password_hash  # salted
    assert service.check_password(stored, PASSWORD)
    assert not service.check_password(stored, PASSWORD + " ")
    assert not service.check_password(None, PASSWORD)
    assert not service.check_password("not a hash", PASSWORD)
    assert service.authenticate_password(platform.engine, " P@Example.com", PASSWORD) == a
    assert service.authenticate_password(platform.engine, "p@example.com", "wrong") is None
    assert service.authenticate_password(platform.engine, "nobody@example.com", PASSWORD) is None


def test_an_account_without_a_password_cannot_sign_in_until_one_is_set(platform):
    a = service.create_account(platform.engine, email="nopass@example.com")
    assert _row(platform, t.accounts, id=a.id).password_hash is None
    assert service.authenticate_password(platform.engine, "nopass@example.com", "") is None
    assert service.authenticate_password(platform.engine, "nopass@example.com", PASSWORD) is None
    service.set_password(platform.engine, a.id, PASSWORD)
    assert _row(platform, t.accounts, id=a.id).password_hash.startswith("$argon2id$")
    assert service.authenticate_password(platform.engine, "nopass@example.com", PASSWORD) == a


def test_setting_a_new_password_retires_the_old_one(platform):
    a = service.create_account(platform.engine, email="change@example.com", password=PASSWORD)
    service.set_password(platform.engine, a.id, "another pass")
    stored = _row(platform, t.accounts, id=a.id).password_hash
    assert stored.startswith("$argon2id$") and "another pass" not in stored
    assert service.authenticate_password(platform.engine, "change@example.com", PASSWORD) is None
    assert service.authenticate_password(platform.engine, "change@example.com", "another pass") == a


# --- API keys ------------------------------------------------------------------------


def test_an_api_key_is_shown_once_and_stored_only_as_its_sha256(platform):
    a = service.create_account(platform.engine)
    key, created = apikeys.create(platform.engine, a.id, "  my server  ")
    assert re.fullmatch(r"[A-Z2-7]{32}", key)  # 160 bits in base32
    assert created.hint == key[:4] + "…" + key[-4:] and created.description == "my server"
    assert created.revoked_at is None
    row = _row(platform, t.api_keys, id=created.id)
    assert row.key_hash == hashlib.sha256(key.encode()).hexdigest()
    assert row.account_id == a.id and row.hint == created.hint and row.description == "my server"
    # Nowhere in the table in clear, not even as part of a value.
    values = _all_values(platform, t.api_keys)
    assert values and not any(key in v for v in values)
    assert not any(key in v for v in _all_values(platform, t.accounts))
    assert [k.id for k in apikeys.list_keys(platform.engine, a.id)] == [created.id]


def test_a_key_authenticates_its_own_account_and_nothing_else_does(platform):
    a = service.create_account(platform.engine)
    b = service.create_account(platform.engine)
    key_a, _ = apikeys.create(platform.engine, a.id)
    key_b, _ = apikeys.create(platform.engine, b.id)
    assert key_a != key_b
    assert apikeys.authenticate(platform.engine, key_a) == a
    assert apikeys.authenticate(platform.engine, key_b) == b
    assert apikeys.authenticate(platform.engine, f" {key_a}\n") == a  # pasted with spaces
    assert apikeys.authenticate(platform.engine, key_a.lower()) is None
    assert apikeys.authenticate(platform.engine, key_a[:-1]) is None
    assert apikeys.authenticate(platform.engine, apikeys.new_key()) is None
    assert apikeys.authenticate(platform.engine, "") is None
    assert apikeys.authenticate(platform.engine, key_a + " " * 200) is None  # over 200 characters


def test_at_most_three_active_keys_and_revoking_one_frees_a_place(platform):
    a = service.create_account(platform.engine)
    made = [apikeys.create(platform.engine, a.id, f"k{i}") for i in range(apikeys.MAX_ACTIVE)]
    with pytest.raises(Conflict, match="at most 3 active API keys"):
        apikeys.create(platform.engine, a.id, "one too many")
    assert len(apikeys.list_keys(platform.engine, a.id, include_revoked=True)) == 3  # the refused one not stored
    apikeys.revoke(platform.engine, a.id, made[0][1].id)
    key, _ = apikeys.create(platform.engine, a.id, "replacement")
    assert apikeys.authenticate(platform.engine, key) == a
    # Another account's keys do not count against this one.
    other = service.create_account(platform.engine)
    assert apikeys.authenticate(platform.engine, apikeys.create(platform.engine, other.id)[0]) == other
    # The operator's own limit is honoured too.
    with pytest.raises(Conflict, match="at most 1 active"):
        apikeys.create(platform.engine, other.id, limit=1)


def test_a_revoked_key_stops_working_at_once_even_when_remembered(platform):
    a = service.create_account(platform.engine)
    key, created = apikeys.create(platform.engine, a.id, "leaked")
    keep, kept = apikeys.create(platform.engine, a.id, "kept")
    assert apikeys.authenticate(platform.engine, key) == a
    assert apikeys.authenticate(platform.engine, keep) == a
    if platform.engine.dialect.name == "sqlite":  # PostgreSQL caches once its listener is up
        assert apikeys.cached(platform.engine, key) == a
    apikeys.revoke(platform.engine, a.id, created.id)
    assert apikeys.cached(platform.engine, key) is None
    assert apikeys.authenticate(platform.engine, key) is None
    assert apikeys.authenticate(platform.engine, keep) == a
    assert [k.id for k in apikeys.list_keys(platform.engine, a.id)] == [kept.id]
    revoked = [k for k in apikeys.list_keys(platform.engine, a.id, include_revoked=True) if k.id == created.id]
    assert revoked and revoked[0].revoked_at is not None
    assert _row(platform, t.api_keys, id=created.id).revoked_at is not None
    with pytest.raises(NotFound):  # already revoked
        apikeys.revoke(platform.engine, a.id, created.id)


def test_a_key_cannot_be_revoked_by_another_account(platform):
    a = service.create_account(platform.engine)
    intruder = service.create_account(platform.engine)
    key, created = apikeys.create(platform.engine, a.id)
    with pytest.raises(NotFound):
        apikeys.revoke(platform.engine, intruder.id, created.id)
    with pytest.raises(NotFound):
        apikeys.revoke(platform.engine, a.id, created.id + 1000)
    assert apikeys.authenticate(platform.engine, key) == a
    assert apikeys.list_keys(platform.engine, intruder.id, include_revoked=True) == []


# --- disabling -----------------------------------------------------------------------


def test_a_disabled_account_is_refused_by_key_and_password_until_enabled(platform):
    a = service.create_account(platform.engine, email="off@example.com", password=PASSWORD)
    key, _ = apikeys.create(platform.engine, a.id)
    assert apikeys.authenticate(platform.engine, key) == a  # remembered now
    off = service.set_disabled(platform.engine, a.id, True)
    assert off.disabled and _row(platform, t.accounts, id=a.id).disabled
    assert apikeys.cached(platform.engine, key) is None
    assert apikeys.authenticate(platform.engine, key) is None
    assert service.authenticate_password(platform.engine, "off@example.com", PASSWORD) is None
    # Disabling keeps the keys (enabling gives them back), it does not revoke them.
    assert len(apikeys.list_keys(platform.engine, a.id)) == 1
    on = service.set_disabled(platform.engine, a.id, False)
    assert not on.disabled
    assert apikeys.authenticate(platform.engine, key) == on
    assert service.authenticate_password(platform.engine, "off@example.com", PASSWORD) == on
