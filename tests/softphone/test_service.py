"""SIP accounts through the service API, on SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
from datetime import timedelta
from decimal import Decimal

import pytest
import sqlalchemy as sa

from tests.conftest import uvox_require
from uvox.db import schema
from uvox.softphone import service, subscriber
from uvox.softphone.tokens import hash_token

DOMAIN = "sip.test.example"


@pytest.fixture
def engine(platform):
    return platform.engine


def md5(s: str) -> str:
    return hashlib.md5(s.encode()).hexdigest()


def _subscriber_rows(engine, username):
    if engine.dialect.name != "postgresql":
        return None
    with engine.connect() as c:
        return c.execute(sa.select(subscriber.subscriber).where(subscriber.subscriber.c.username == username)).all()


def test_create_stores_digest_hashes_not_the_password(engine, make_customer):
    c = make_customer()
    account_id, number = c.id, c.number
    creds = service.create_sip_account(
        engine, account_id, domain=DOMAIN, label="Office", transport="TLS", caller_id="+13055550100"
    )
    a = creds.account
    assert a.username.startswith(number) and a.domain == DOMAIN and a.transport == "tls"
    assert a.label == "Office" and a.caller_id == "+13055550100"
    assert len(creds.password) >= 12
    with engine.connect() as c:
        row = c.execute(sa.select(schema.sip_accounts).where(schema.sip_accounts.c.id == a.id)).one()
    assert row.ha1 == md5(f"{a.username}:{DOMAIN}:{creds.password}")
    assert row.ha1b == md5(f"{a.username}@{DOMAIN}:{DOMAIN}:{creds.password}")
    assert creds.password not in " ".join(str(v) for v in row)
    subs = _subscriber_rows(engine, a.username)
    if subs is not None:  # PostgreSQL: Kamailio's row written with the account
        assert [(s.domain, s.ha1, s.ha1b, s.password) for s in subs] == [(DOMAIN, row.ha1, row.ha1b, "")]


def test_list_rename_and_ownership(engine, make_customer):
    account_id, other_id = make_customer().id, make_customer().id
    first = service.create_sip_account(engine, account_id, domain=DOMAIN, label="one").account
    second = service.create_sip_account(engine, account_id, domain=DOMAIN, label="two").account
    service.create_sip_account(engine, other_id, domain=DOMAIN)
    assert [a.id for a in service.list_sip_accounts(engine, account_id)] == [first.id, second.id]
    renamed = service.rename_sip_account(engine, account_id, second.id, "  Mobile  ")
    assert renamed.label == "Mobile"
    assert service.get_sip_account(engine, account_id, second.id).label == "Mobile"
    with pytest.raises(service.SipAccountNotFound):
        service.rename_sip_account(engine, other_id, second.id, "stolen")
    with pytest.raises(service.SipAccountNotFound):
        service.delete_sip_account(engine, other_id, first.id)
    with pytest.raises(service.InvalidSipInput):
        service.rename_sip_account(engine, account_id, first.id, "x" * 201)
    with pytest.raises(service.InvalidSipInput):
        service.create_sip_account(engine, account_id, domain=DOMAIN, transport="sctp")
    with pytest.raises(service.InvalidSipInput):
        service.create_sip_account(engine, account_id, domain=DOMAIN, caller_id="<script>")
    with pytest.raises(service.InvalidSipInput):
        service.create_sip_account(engine, account_id, domain="d" * 65)


def test_reset_and_delete_change_what_authenticates(engine, make_customer):
    account_id = make_customer(balance="7.25").id
    creds = service.create_sip_account(engine, account_id, domain=DOMAIN)
    user = service.authenticate(engine, creds.account.username, creds.password, DOMAIN)
    assert user is not None and user.balance == Decimal("7.25") and user.currency == "US$"
    assert service.authenticate(engine, creds.account.username, creds.password + "x", DOMAIN) is None
    assert service.authenticate(engine, creds.account.username, creds.password, "other.example") is None
    assert service.authenticate(engine, f"{creds.account.username}@{DOMAIN}", creds.password, DOMAIN) is not None
    assert service.authenticate(engine, f"{creds.account.username}@evil.example", creds.password, DOMAIN) is None

    new = service.reset_sip_password(engine, account_id, creds.account.id)
    assert new.password != creds.password
    assert service.authenticate(engine, creds.account.username, creds.password, DOMAIN) is None
    assert service.authenticate(engine, creds.account.username, new.password, DOMAIN) is not None
    subs = _subscriber_rows(engine, creds.account.username)
    if subs is not None:
        assert subs[0].ha1 == md5(f"{creds.account.username}:{DOMAIN}:{new.password}")

    service.delete_sip_account(engine, account_id, creds.account.id)
    assert service.authenticate(engine, creds.account.username, new.password, DOMAIN) is None
    assert service.list_sip_accounts(engine, account_id) == []
    subs = _subscriber_rows(engine, creds.account.username)
    if subs is not None:
        assert subs == []


def test_linphone_token_is_single_use_and_stored_hashed(engine, make_customer):
    account_id = make_customer().id
    creds = service.create_sip_account(engine, account_id, domain=DOMAIN)
    token = service.create_provisioning_token(engine, account_id, creds.account.id, "linphone")
    with engine.connect() as c:
        stored = c.execute(sa.select(schema.provisioning_tokens.c.token_hash)).scalars().all()
    assert hash_token(token) in stored and token not in stored
    assert service.token_is_valid(engine, token, "linphone")
    assert not service.token_is_valid(engine, token, "zoiper")
    with pytest.raises(service.InvalidToken):
        service.redeem_zoiper_token(engine, token)  # a Linphone code is not a Zoiper code
    sip, ha1 = service.redeem_linphone_token(engine, token)
    assert sip.id == creds.account.id and ha1 == md5(f"{sip.username}:{DOMAIN}:{creds.password}")
    with pytest.raises(service.InvalidToken):
        service.redeem_linphone_token(engine, token)
    assert not service.token_is_valid(engine, token, "linphone")


def test_expired_and_cancelled_tokens_are_refused(engine, make_customer):
    account_id = make_customer().id
    creds = service.create_sip_account(engine, account_id, domain=DOMAIN)
    expired = service.create_provisioning_token(
        engine, account_id, creds.account.id, "linphone", ttl=timedelta(seconds=-1)
    )
    with pytest.raises(service.InvalidToken):
        service.redeem_linphone_token(engine, expired)
    pending = service.create_provisioning_token(engine, account_id, creds.account.id, "zoiper")
    service.reset_sip_password(engine, account_id, creds.account.id)
    with pytest.raises(service.InvalidToken):
        service.redeem_zoiper_token(engine, pending)
    with pytest.raises(service.InvalidToken):
        service.redeem_zoiper_token(engine, "no-such-token")


def test_zoiper_token_issues_a_fresh_password_once(engine, make_customer):
    account_id = make_customer().id
    creds = service.create_sip_account(engine, account_id, domain=DOMAIN)
    token = service.create_provisioning_token(engine, account_id, creds.account.id, "zoiper")
    got = service.redeem_zoiper_token(engine, token)
    assert got.account.username == creds.account.username
    assert service.authenticate(engine, got.account.username, got.password, DOMAIN) is not None
    assert service.authenticate(engine, got.account.username, creds.password, DOMAIN) is None
    with pytest.raises(service.InvalidToken):
        service.redeem_zoiper_token(engine, token)


def test_rate_is_the_longest_prefix_on_the_account_plan(engine, make_customer):
    account_id = make_customer().id  # plan "test": 1 USA, 1305 Miami, 58 Venezuela, 58412 Digitel...
    creds = service.create_sip_account(engine, account_id, domain=DOMAIN)
    user = service.authenticate(engine, creds.account.username, creds.password, DOMAIN)
    assert service.rate_for(engine, user.plan_id, "+1 305-555-0100").price_per_minute == Decimal("0.012")
    assert service.rate_for(engine, user.plan_id, "0012125550100").destination == "USA"
    assert service.rate_for(engine, user.plan_id, "582125550100").sms_price == Decimal("0.05")
    assert service.rate_for(engine, user.plan_id, "+58 412 555 0100").destination == "Venezuela Mobile Digitel"
    assert service.rate_for(engine, user.plan_id, "44207") is None
    assert service.rate_for(engine, None, "1305") is None


def test_provision_device_gives_the_portal_both_qr_codes(engine, make_customer, tmp_path):
    import base64
    import shutil
    import subprocess
    from urllib.parse import parse_qs, urlsplit

    account_id = make_customer().id
    creds = service.create_sip_account(engine, account_id, domain=DOMAIN, transport="tls")
    p = service.provision_device(
        engine, account_id, creds.account.id, base_url="https://voip.example.com/", zoiper_provider_id="prov42"
    )
    assert p.linphone_url.startswith("https://voip.example.com/prov/")
    q = parse_qs(urlsplit(p.zoiper_qr).query, keep_blank_values=True)
    assert q["provider_id"] == ["prov42"] and q["h"] == [DOMAIN] and q["tr"] == ["2"] and q["p"] == [""]
    zoiper_token, linphone_token = q["t"][0], p.linphone_url.rsplit("/", 1)[1]
    assert service.token_is_valid(engine, zoiper_token, "zoiper")
    assert service.token_is_valid(engine, linphone_token, "linphone")
    assert service.provision_device(engine, account_id, creds.account.id, base_url="https://x").zoiper_qr is None
    uvox_require(shutil.which("zbarimg") is not None, "zbarimg is not installed (apt: zbar-tools)")
    assert p.linphone_qr.startswith("data:image/png;base64,")
    (tmp_path / "qr.png").write_bytes(base64.b64decode(p.linphone_qr.split(",", 1)[1]))
    out = subprocess.run(["zbarimg", "--raw", "-q", str(tmp_path / "qr.png")], capture_output=True, text=True)
    assert out.stdout.strip() == p.linphone_url


def test_sync_subscribers_follows_disabled_accounts_and_repairs(engine, make_customer):
    from uvox.db.session import write

    account_id, other_id = make_customer().id, make_customer().id
    mine = service.create_sip_account(engine, account_id, domain=DOMAIN).account
    theirs = service.create_sip_account(engine, other_id, domain=DOMAIN).account
    if engine.dialect.name != "postgresql":
        with write(engine) as c:
            assert service.sync_subscribers(c) == {"inserted": 0, "updated": 0, "deleted": 0}
        return
    with write(engine) as c:
        c.execute(sa.update(schema.accounts).where(schema.accounts.c.id == account_id).values(disabled=True))
        assert service.sync_subscribers(c, account_id) == {"inserted": 0, "updated": 0, "deleted": 1}
    assert _subscriber_rows(engine, mine.username) == [] and len(_subscriber_rows(engine, theirs.username)) == 1
    with write(engine) as c:
        c.execute(sa.update(schema.accounts).where(schema.accounts.c.id == account_id).values(disabled=False))
        c.execute(sa.update(subscriber.subscriber).values(ha1="tampered"))
        assert service.sync_subscribers(c) == {"inserted": 1, "updated": 1, "deleted": 0}
    with engine.connect() as c:
        ha1 = c.execute(sa.select(schema.sip_accounts.c.ha1).where(schema.sip_accounts.c.id == theirs.id)).scalar()
    assert _subscriber_rows(engine, theirs.username)[0].ha1 == ha1
    assert len(_subscriber_rows(engine, mine.username)) == 1
