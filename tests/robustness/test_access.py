"""Across accounts and secrets, on the real `uvox serve` with node-smpp delivering.

One account's key reads nothing of another's: message status, OTP sessions and
templates, calls, balance, rates. The unit-level checks of each rule live beside the
endpoints (tests/api/v1/test_sms_api.py: a foreign id is 010; test_otp_api.py: a
foreign template is 020; tests/portal/test_security.py: no page shows another
account's data); here every API endpoint is tried in one place, against the process a
user runs.

Secrets: after a session of sends, one-time codes and portal sign-ins with the log at
DEBUG, neither the log nor the database (every value of every table, and the SQLite
files' bytes) holds an API key, a password or a one-time code in clear.
"""

import re
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from tests.dispatch.conftest import poll
from tests.robustness.harness import provision
from uvox.config import Settings
from uvox.platform import Platform

pytestmark = pytest.mark.timeout(120)
API = "/api/get-api/v1/"
PASSWORD = "Corr3ct-Horse-Battery"


def api(srv, endpoint, auth, **params) -> dict:
    return httpx.post(srv.url + API + endpoint, data={**auth, **params}, timeout=30).json()


def otp_template(url: str, account_id: int) -> str:
    from uvox.otp import service

    p = Platform.open(Settings.from_env({"UVOX_DATABASE_URL": url}))
    try:
        return service.create_template(p.engine, account_id, "Your code is {code}").ref_id
    finally:
        p.close()


def code_received(smsc, phone: str) -> str:
    got = poll(lambda: [m for m in smsc.messages(phone) if m["outcome"] == "accepted"], timeout=30)
    assert got, smsc.messages()
    return re.search(r"\b(\d{6})\b", got[-1]["text"]).group(1)


def add_call(url: str, account_id: int) -> None:
    """A call record of the kind Kamailio's accounting leaves (calls need Kamailio to be
    placed; what is tried here is who may read the record)."""
    from tests.voice.test_cli import _call
    from uvox.db import schema as t

    eng = sa.create_engine(url)
    with eng.begin() as c:
        c.execute(
            sa.insert(t.calls), [_call(account_id, datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC), sip_call_id="idor")]
        )
    eng.dispose()


def test_one_accounts_key_reads_nothing_of_another(serve, node_smsc, figures):
    smsc = node_smsc()
    srv, a = serve("sqlite", smsc)
    b = provision(srv.database_url, email="other@example.com")
    a_auth, b_auth = a.auth, b.auth
    ref = otp_template(srv.database_url, a.account_id)
    add_call(srv.database_url, a.account_id)

    sent = api(srv, "sms-api", a_auth, to="+13125550001", text="mine")
    assert sent["code"] == "005"
    otp = api(srv, "OTP-api", a_auth, ref_id=ref, phone_number="+13125550002")
    assert otp["code"] == "022", otp
    code = code_received(smsc, "13125550002")
    poll(lambda: api(srv, "sms-api/status", a_auth, messageId=sent["id"])["state"] == "delivered")

    mixed = {"accountnumber": a_auth["accountnumber"], "apikey": b_auth["apikey"]}
    header_b = {"Api-Key": b_auth["apikey"]}
    tries = {
        "status of A's message": api(srv, "sms-api/status", b_auth, messageId=sent["id"]),
        "A's OTP session with the right code": api(
            srv, "OTP-api/verify", b_auth, sessionid=otp["sessionID"], otp_code=code
        ),
        "A's OTP template": api(srv, "OTP-api", b_auth, ref_id=ref, phone_number="+13125550003"),
        "A's calls": api(srv, "calls", b_auth),
        "A's balance by A's number and B's key": api(srv, "balance", mixed),
        "A's calls by A's number and B's key": api(srv, "calls", mixed),
        "A's rates by A's number and B's key": httpx.post(srv.url + API + "rates", data=mixed).json(),
        "A's status by A's number and B's key in the header": httpx.post(
            srv.url + API + "sms-api/status",
            headers=header_b,
            data={"accountnumber": a_auth["accountnumber"], "messageId": sent["id"]},
        ).json(),
    }
    codes = {what: r["code"] if isinstance(r, dict) else r for what, r in tries.items()}
    figures.update(tries=len(tries), codes=codes)
    assert codes == {
        "status of A's message": "010",
        "A's OTP session with the right code": "024",
        "A's OTP template": "020",
        "A's calls": "120",
        "A's balance by A's number and B's key": "001",
        "A's calls by A's number and B's key": "001",
        "A's rates by A's number and B's key": "001",
        "A's status by A's number and B's key in the header": "001",
    }
    assert tries["A's calls"]["calls"] == [] and len(api(srv, "calls", a_auth)["calls"]) == 1
    # B's attempt used up nothing of A's: A's code still verifies, once.
    assert api(srv, "OTP-api/verify", a_auth, sessionid=otp["sessionID"], otp_code=code)["code"] == "027"
    assert not any(str(v) in str(tries) for v in (a_auth["apikey"], "13125550001", code))


def test_no_key_password_or_code_in_clear_in_the_log_or_database(serve, node_smsc, figures):
    smsc = node_smsc(system_id="carrier", password="smppPw9")
    srv, a = serve("sqlite", smsc, UVOX_LOG_LEVEL="DEBUG")
    acct = provision(srv.database_url, email="secret@example.com", password=PASSWORD)
    key = acct.auth["apikey"]
    ref = otp_template(srv.database_url, acct.account_id)
    # The key every way a client sends it: query string, form body, JSON body, header.
    assert httpx.get(srv.url + API + "balance", params=acct.auth).json()["code"] == "015"
    assert api(srv, "sms-api", acct.auth, to="+13125550010", text="hello")["code"] == "005"
    assert httpx.post(srv.url + API + "balance", json=acct.auth).json()["code"] == "015"
    assert httpx.get(srv.url + API + "balance", headers={"Api-Key": key}).json()["code"] == "015"
    assert httpx.get(srv.url + API + "balance", params={**acct.auth, "apikey": key[:-1] + "x"}).json()["code"] == "001"
    codes = []
    for n, phone in enumerate(["+13125550011", "+13125550012"]):
        otp = api(srv, "OTP-api", acct.auth, ref_id=ref, phone_number=phone)
        code = code_received(smsc, phone.lstrip("+"))
        codes.append(code)
        wrong = f"{(int(code) + 1) % 1_000_000:06d}"
        assert api(srv, "OTP-api/verify", acct.auth, sessionid=otp["sessionID"], otp_code=wrong)["code"] == "025"
        if n == 0:
            assert api(srv, "OTP-api/verify", acct.auth, sessionid=otp["sessionID"], otp_code=code)["code"] == "027"
    # The portal's password, right and wrong.
    with httpx.Client(base_url=srv.url) as web:
        token = re.search(r'name="csrf_token" value="([^"]+)"', web.get("/sign_in").text).group(1)
        bad = web.post(
            "/sign_in", data={"csrf_token": token, "email": "secret@example.com", "password": PASSWORD + "!"}
        )
        assert bad.status_code == 401
        ok = web.post("/sign_in", data={"csrf_token": token, "email": "secret@example.com", "password": PASSWORD})
        assert ok.status_code in (302, 303), ok.status_code
    srv.stop()

    log = srv.log.read_text()
    assert "DEBUG" in log or "debug" in log.lower()  # the log was as verbose as it gets
    db_path = Path(sa.engine.make_url(srv.database_url).database)
    raw = b"".join(p.read_bytes() for p in db_path.parent.glob(db_path.name + "*"))
    values = _text_values(srv.database_url)
    secrets = {"API key": key, "portal password": PASSWORD}
    found = {
        f"{what} in the {where}": True
        for what, s in secrets.items()
        for where, hay in (("log", log), ("database", values), ("database file", raw.decode("latin1")))
        if s in hay
    }
    # The carrier's SMPP password is stored as it is (the SMSC wants it at each bind,
    # db/schema.py says so), but never logged.
    if "smppPw9" in log:
        found["SMPP password in the log"] = True
    for code in codes:
        pattern = re.compile(rf"(?<!\d){code}(?!\d)")
        for where, hay in (("log", log), ("database", values)):
            if pattern.search(hay):
                found[f"one-time code {code} in the {where}"] = True
    figures.update(
        log_lines=log.count("\n"),
        database_bytes=len(raw),
        secrets_checked=len(secrets) + 1 + len(codes),
        found_in_clear=found,
    )
    assert found == {}, found


def _text_values(url: str) -> str:
    """Every value of every table as text, times left out (they hold no secret and their
    digits could match a code by chance)."""
    eng = sa.create_engine(url)
    out = []
    try:
        meta = sa.MetaData()
        meta.reflect(eng)
        with eng.connect() as c:
            for table in meta.sorted_tables:
                cols = [
                    col
                    for col in table.columns
                    if not isinstance(col.type, sa.DateTime | sa.Date) and not col.name.endswith("_at")
                ]
                for row in c.execute(sa.select(*cols)):
                    out += [str(v) for v in row]
    finally:
        eng.dispose()
    return "\n".join(out)
