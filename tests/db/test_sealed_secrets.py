"""Carrier passwords at rest: sealed in the database, opened with the instance secret;
migration 0010 seals clear rows of an older database; ``uvox db reseal`` moves them
to a new key; ``set-password`` reads the password from standard input. On SQLite and
PostgreSQL."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import sqlalchemy as sa
from cryptography.exceptions import InvalidTag

from tests.conftest import new_database_url, uvox_env
from uvox import secretbox
from uvox.config import Settings
from uvox.db import migrate, reseal
from uvox.db.engine import make_engine
from uvox.smpp import registry
from uvox.voice import trunks

SMPP_PW = "Sm9pw!x"
TRUNK_PW = "tr-unk:S3cret"


def _dump(engine, table: str) -> str:
    """Every value of every row of ``table``, as one string."""
    with engine.connect() as c:
        return " ".join(str(v) for row in c.execute(sa.text(f"SELECT * FROM {table}")) for v in row)


def _sealed(engine, table: str, name: str) -> str:
    with engine.connect() as c:
        return c.execute(sa.text(f"SELECT sealed_password FROM {table} WHERE name = :n"), {"n": name}).scalar_one()


def test_the_database_never_holds_a_carrier_password(platform):
    e = platform.engine
    registry.add(e, "carrier", host="127.0.0.1", port=2775, system_id="acme", password=SMPP_PW, secret=platform.secret)
    trunks.add_trunk(e, "t1", "sip.example.com", username="acme", password=TRUNK_PW, secret=platform.secret)
    assert SMPP_PW not in _dump(e, "connectors") and TRUNK_PW not in _dump(e, "trunks")
    smpp = _sealed(e, "connectors", "carrier")
    assert secretbox.open_(platform.secret, smpp, secretbox.SMPP_PASSWORD) == SMPP_PW
    assert trunks.get_trunk(e, "t1").password(platform.secret) == TRUNK_PW
    # Each kind under a key of its own: a connector's token does not open as a trunk's.
    with pytest.raises(InvalidTag):
        secretbox.open_(platform.secret, smpp, secretbox.TRUNK_PASSWORD)
    assert TRUNK_PW not in repr(trunks.get_trunk(e, "t1"))

    trunks.set_password(e, "t1", "n3w-pw", platform.secret, username="other")
    assert "n3w-pw" not in _dump(e, "trunks")
    tr = trunks.get_trunk(e, "t1")
    assert (tr.username, tr.password(platform.secret)) == ("other", "n3w-pw")
    registry.set_password(e, "carrier", "n3w", platform.secret)
    assert "n3w" not in _dump(e, "connectors")
    assert secretbox.open_(platform.secret, _sealed(e, "connectors", "carrier"), secretbox.SMPP_PASSWORD) == "n3w"


def test_reseal_moves_every_sealed_value_to_the_new_key(platform):
    e, old, new = platform.engine, platform.secret, b"the new instance secret"
    registry.add(e, "carrier", host="127.0.0.1", port=2775, system_id="acme", password=SMPP_PW, secret=old)
    trunks.add_trunk(e, "t1", "sip.example.com", username="acme", password=TRUNK_PW, secret=old)
    trunks.add_trunk(e, "open", "sip.example.com")  # no credentials: nothing to seal
    with pytest.raises(reseal.ResealError, match="opens with neither"):
        reseal.reseal(e, b"a wrong old key", new)
    assert trunks.get_trunk(e, "t1").password(old) == TRUNK_PW  # nothing was changed

    counts = reseal.reseal(e, old, new)
    assert (counts["connector_passwords"], counts["trunk_passwords"]) == (1, 1)
    assert trunks.get_trunk(e, "t1").password(new) == TRUNK_PW
    assert secretbox.open_(new, _sealed(e, "connectors", "carrier"), secretbox.SMPP_PASSWORD) == SMPP_PW
    with pytest.raises(InvalidTag):
        trunks.get_trunk(e, "t1").password(old)
    # A second run finds everything under the new key already.
    assert reseal.reseal(e, old, new)["trunk_passwords"] == 0


@pytest.fixture
def database(backend, tmp_path_factory, pg_databases) -> str:
    return new_database_url(backend, tmp_path_factory, pg_databases)


def test_migration_0010_seals_clear_rows_and_downgrade_opens_them(database):
    engine = make_engine(Settings.from_env({"UVOX_DATABASE_URL": database}))
    try:
        migrate.upgrade(engine, "0009_test_mode")
        with engine.begin() as c:
            c.execute(
                sa.text(
                    "INSERT INTO connectors (name, host, port, system_id, password, system_type, bind_mode,"
                    " tps, \"window\", accepts_alphanumeric, enabled, created_at) VALUES ('carrier',"
                    " 'h', 2775, 'acme', :pw, '', 'transceiver', 0, 64, true, true, CURRENT_TIMESTAMP)"
                ),
                {"pw": SMPP_PW},
            )
            c.execute(
                sa.text(
                    "INSERT INTO connectors (name, host, port, system_id, password, system_type, bind_mode,"
                    " tps, \"window\", accepts_alphanumeric, enabled, created_at) VALUES ('nopw',"
                    " 'h', 2775, 'x', '', '', 'transceiver', 0, 64, true, true, CURRENT_TIMESTAMP)"
                )
            )
            # 0004 makes ``trunks`` from today's schema; a database made at 0004 by an
            # older release has the clear ``password`` column instead: make it so.
            if "password" not in {col["name"] for col in sa.inspect(c).get_columns("trunks")}:
                c.execute(sa.text("ALTER TABLE trunks RENAME COLUMN sealed_password TO password"))
            c.execute(
                sa.text(
                    "INSERT INTO trunks (name, host, port, transport, priority, strip, add_prefix,"
                    " username, password, max_channels, enabled, created_at) VALUES ('t1',"
                    " 'sip.example.com', 5060, 'udp', 10, 0, '', 'acme', :pw, 0, true,"
                    " CURRENT_TIMESTAMP)"
                ),
                {"pw": TRUNK_PW},
            )
        assert SMPP_PW in _dump(engine, "connectors") and TRUNK_PW in _dump(engine, "trunks")

        migrate.upgrade(engine)
        secret = migrate.instance_secret(engine)
        assert SMPP_PW not in _dump(engine, "connectors")
        assert secretbox.open_(secret, _sealed(engine, "connectors", "carrier"), secretbox.SMPP_PASSWORD) == SMPP_PW
        assert _sealed(engine, "connectors", "nopw") == ""
        spec = registry.get(engine, "carrier")  # the registry reads the migrated table
        assert spec.system_id == "acme"
        assert TRUNK_PW not in _dump(engine, "trunks")
        assert trunks.get_trunk(engine, "t1").password(secret) == TRUNK_PW

        migrate.downgrade(engine, "0009_test_mode")
        with engine.connect() as c:
            assert c.execute(sa.text("SELECT password FROM connectors WHERE name = 'carrier'")).scalar_one() == SMPP_PW
            assert c.execute(sa.text("SELECT password FROM trunks WHERE name = 't1'")).scalar_one() == TRUNK_PW
        migrate.upgrade(engine)  # and up again: sealed again
        assert SMPP_PW not in _dump(engine, "connectors") and TRUNK_PW not in _dump(engine, "trunks")
    finally:
        engine.dispose()


def test_migration_0010_uses_the_configured_key(database):
    engine = make_engine(Settings.from_env({"UVOX_DATABASE_URL": database}))
    try:
        migrate.upgrade(engine, "0009_test_mode", secret_key="from-the-environment")
        with engine.begin() as c:
            c.execute(
                sa.text(
                    "INSERT INTO connectors (name, host, port, system_id, password, system_type, bind_mode,"
                    " tps, \"window\", accepts_alphanumeric, enabled, created_at) VALUES ('carrier',"
                    " 'h', 2775, 'acme', :pw, '', 'transceiver', 0, 64, true, true, CURRENT_TIMESTAMP)"
                ),
                {"pw": SMPP_PW},
            )
        migrate.upgrade(engine, secret_key="from-the-environment")
        token = _sealed(engine, "connectors", "carrier")
        assert secretbox.open_(b"from-the-environment", token, secretbox.SMPP_PASSWORD) == SMPP_PW
    finally:
        engine.dispose()


def _uvox(database: str, args: list[str], stdin: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "uvox", *args],
        input=stdin,
        env=uvox_env(database, **env),
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_cli_set_password_from_stdin_and_reseal(database):
    def ok(args: list[str], stdin: str = "", **env: str) -> dict:
        res = _uvox(database, [*args, "--json"], stdin, **env)
        assert res.returncode == 0, res.stdout + res.stderr
        return json.loads(res.stdout.strip().splitlines()[-1])

    ok(
        [
            "admin",
            "connector",
            "add",
            "carrier",
            "--host",
            "127.0.0.1",
            "--port",
            "2775",
            "--system-id",
            "acme",
            "--password",
            "old",
        ]
    )
    ok(["admin", "trunk", "add", "t1", "--host", "sip.example.com"])
    assert ok(["admin", "connector", "set-password", "carrier"], "s3cr\n") == {"name": "carrier", "password": "changed"}
    out = ok(["admin", "trunk", "set-password", "t1", "--username", "acme"], "tr-pw\n")
    assert out["username"] == "acme" and out["auth"] is True and "tr-pw" not in json.dumps(out)
    res = _uvox(database, ["admin", "trunk", "set-password", "nope", "--json"], "x\n")
    assert res.returncode == 1 and "no trunk" in json.loads(res.stdout)["error"]
    res = _uvox(database, ["admin", "connector", "set-password", "carrier", "--json"], "")
    assert res.returncode == 1 and "no password" in json.loads(res.stdout)["error"]

    engine = make_engine(Settings.from_env({"UVOX_DATABASE_URL": database}))
    try:
        generated = migrate.instance_secret(engine)
        assert "s3cr" not in _dump(engine, "connectors") and "tr-pw" not in _dump(engine, "trunks")
        assert trunks.get_trunk(engine, "t1").password(generated) == "tr-pw"

        # Moving to UVOX_SECRET_KEY: reseal from the database's generated key.
        counts = ok(["db", "reseal", "--from-database"], UVOX_SECRET_KEY="k" * 40)
        assert (counts["connector_passwords"], counts["trunk_passwords"]) == (1, 1)
        assert trunks.get_trunk(engine, "t1").password(b"k" * 40) == "tr-pw"
        # And on to another key, the old one typed (here: piped).
        ok(["db", "reseal"], "k" * 40 + "\n", UVOX_SECRET_KEY="n" * 40)
        assert trunks.get_trunk(engine, "t1").password(b"n" * 40) == "tr-pw"
        assert secretbox.open_(b"n" * 40, _sealed(engine, "connectors", "carrier"), secretbox.SMPP_PASSWORD) == "s3cr"
        res = _uvox(database, ["db", "reseal", "--json"], "wrong\n", UVOX_SECRET_KEY="z" * 40)
        assert res.returncode == 1 and "neither" in json.loads(res.stdout)["error"]
    finally:
        engine.dispose()
