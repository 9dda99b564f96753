"""Fixtures of the softphone tests: a fresh database per test module, on
SQLite and on the real PostgreSQL server, migrated with the platform's own
migrations, and a customer account with a plan to hang SIP accounts on."""

from __future__ import annotations

import os
import secrets
from datetime import datetime, timezone
from decimal import Decimal

import pytest
import sqlalchemy as sa

from uvox.config import Settings
from uvox.db import migrate, schema
from uvox.db.engine import make_engine

PG_ADMIN_URL = os.environ.get("UVOX_TEST_PG_ADMIN_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def require(condition: bool, reason: str) -> None:
    if condition:
        return
    if os.environ.get("UVOX_REQUIRE_ALL") == "1":
        pytest.fail(reason)
    pytest.skip(reason)


@pytest.fixture(scope="module")
def pg_url():
    """URL of a brand-new PostgreSQL database, dropped afterwards."""
    name = f"uvox_sp_{secrets.token_hex(6)}"
    admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as c:
            c.exec_driver_sql(f'CREATE DATABASE "{name}"')
    except sa.exc.OperationalError as exc:
        require(False, f"PostgreSQL not reachable at {PG_ADMIN_URL}: {exc}")
    url = sa.engine.make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    yield url
    with admin.connect() as c:
        c.exec_driver_sql(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
            (name,),
        )
        c.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}"')
    admin.dispose()


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def db_url(request, tmp_path_factory):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path_factory.mktemp('sp') / 'uvox.db'}"
    return request.getfixturevalue("pg_url")


def _engine_for(url: str):
    engine = make_engine(Settings(database_url=url))
    migrate.upgrade(engine)
    return engine


@pytest.fixture(scope="module")
def engine(db_url):
    e = _engine_for(db_url)
    yield e
    e.dispose()


@pytest.fixture(scope="module")
def pg_engine(pg_url):
    e = _engine_for(pg_url)
    yield e
    e.dispose()


def _make_customer(engine, *, balance="12.50", currency="US$", rates=()):
    """Insert a plan with ``rates`` [(prefix, destination, per_minute, sms)] and
    an account on it; returns (account_id, account_number)."""
    now = datetime.now(timezone.utc)
    number = str(secrets.randbelow(10**9) + 10**9)
    with engine.begin() as c:
        plan_id = c.execute(
            sa.insert(schema.plans).values(name=f"plan-{number}", currency=currency, created_at=now)
        ).inserted_primary_key[0]
        for prefix, dest, minute, sms in rates:
            c.execute(sa.insert(schema.rates).values(
                plan_id=plan_id, prefix=prefix, destination=dest,
                rate_initial=Decimal(minute), sms_rate=Decimal(sms)))
        account_id = c.execute(sa.insert(schema.accounts).values(
            number=number, email=f"{number}@example.com", currency=currency, plan_id=plan_id,
            balance=Decimal(balance), credit_limit=Decimal(0), is_staff=False, disabled=False,
            created_at=now)).inserted_primary_key[0]
    return account_id, number


@pytest.fixture(scope="session")
def make_customer():
    """``make_customer(engine, balance=..., currency=..., rates=[...])`` -> (account_id, number)."""
    return _make_customer
