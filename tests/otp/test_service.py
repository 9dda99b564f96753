"""One-time codes at the service level (uvox.otp.service), on SQLite and PostgreSQL:
templates, codes, sessions and verification as OTP-api relies on them.

Verification answers with the manual's codes: 027 matched, 025 mismatch, 026 already
used, 023 expired, 024 no such session, 103 too many attempts.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import threading
from datetime import timedelta

import pytest
import sqlalchemy as sa

from uvox.accounts import service as accounts
from uvox.clock import aware, now
from uvox.db import schema as t
from uvox.db.session import read, write
from uvox.errors import NotFound
from uvox.otp import service as otp

PHONE = "+13055550100"


@pytest.fixture
def account(platform):
    return accounts.create_account(platform.engine, email="otp@example.com")


@pytest.fixture
def template(platform, account):
    return otp.create_template(platform.engine, account.id, "Your code is {code}", "login", "UVox")


def start(platform, account, template, code: str, phone: str = PHONE, ttl: int | None = None) -> str:
    """Open a session for ``code`` as OTP-api does; returns its session id."""
    ttl = platform.settings.otp_ttl_seconds if ttl is None else ttl
    with write(platform.engine) as conn:
        return otp.open_session(
            conn,
            platform.secret,
            account_id=account.id,
            template_id=template.id,
            phone=phone,
            code=code,
            message_id=None,
            ttl_seconds=ttl,
        )


def check(platform, account_id: int, session_id: str, code: str) -> str:
    """Verify as OTP-api/verify does, in a write transaction of its own."""
    with write(platform.engine) as conn:
        return otp.verify(conn, platform.secret, account_id, session_id, code, platform.settings.otp_max_attempts)


def session_row(platform, session_id: str):
    with platform.engine.connect() as c:
        return c.execute(sa.select(t.otp_sessions).where(t.otp_sessions.c.session_id == session_id)).one()


# --- codes ---------------------------------------------------------------------------


def test_a_code_has_the_configured_number_of_decimal_digits(platform):
    digits = platform.settings.otp_digits
    assert digits == 6  # the documented default
    codes = {otp.new_code(digits) for _ in range(300)}
    assert all(re.fullmatch(r"\d{6}", c) for c in codes)
    assert len(codes) > 290  # random, not a sequence or a constant
    for n in (4, 8):
        assert all(re.fullmatch(rf"\d{{{n}}}", otp.new_code(n)) for _ in range(50))


def test_a_small_random_number_keeps_its_leading_zeros(monkeypatch):
    asked = []

    def randbelow(n):
        asked.append(n)
        return 42

    monkeypatch.setattr(otp.secrets, "randbelow", randbelow)
    assert otp.new_code(6) == "000042"
    assert asked == [10**6]  # every 6-digit code is possible


def test_session_ids_are_long_random_and_url_safe():
    ids = {otp.new_session_id() for _ in range(100)}
    assert len(ids) == 100
    assert all(re.fullmatch(r"[A-Za-z0-9_-]{32}", s) for s in ids)  # 192 bits


# --- storage ---------------------------------------------------------------------------


def test_the_code_is_stored_only_as_a_keyed_hash_bound_to_its_session(platform, account, template):
    code = "428913"
    sid = start(platform, account, template, code)
    other = start(platform, account, template, code)
    row = session_row(platform, sid)
    assert row.code_hash == hmac.new(platform.secret, f"{sid}:{code}".encode(), hashlib.sha256).hexdigest()
    assert row.code_hash == otp.code_hash(platform.secret, sid, code)
    # Without the instance secret the hash is of no use: not a plain hash of the code.
    assert row.code_hash not in {
        hashlib.sha256(code.encode()).hexdigest(),
        hashlib.sha256(f"{sid}:{code}".encode()).hexdigest(),
    }
    # The same code in another session hashes differently (no precomputed table).
    assert session_row(platform, other).code_hash != row.code_hash
    with platform.engine.connect() as c:
        rows = c.execute(sa.select(t.otp_sessions)).all()
    assert len(rows) == 2
    # Nowhere in clear; timestamps hold no text, so they are left out of the search.
    texts = [str(v) for r in rows for k, v in r._mapping.items() if k not in ("created_at", "expires_at", "used_at")]
    assert not any(code in v for v in texts)
    assert (row.account_id, row.template_id, row.phone, row.attempts, row.used_at) == (
        account.id,
        template.id,
        PHONE,
        0,
        None,
    )


def test_a_session_expires_after_its_ttl(platform, account, template):
    before = now()
    sid = start(platform, account, template, "111111", ttl=90)
    row = session_row(platform, sid)
    assert aware(row.expires_at) - aware(row.created_at) == timedelta(seconds=90)
    assert before <= aware(row.created_at) <= now()


# --- verification --------------------------------------------------------------------


def test_the_right_code_verifies_once_and_only_once(platform, account, template):
    sid = start(platform, account, template, "246810")
    assert check(platform, account.id, sid, "246810") == "027"
    assert session_row(platform, sid).used_at is not None
    assert check(platform, account.id, sid, "246810") == "026"
    assert check(platform, account.id, sid, "000000") == "026"


def test_a_code_is_compared_after_trimming_spaces(platform, account, template):
    sid = start(platform, account, template, "135790")
    assert check(platform, account.id, sid, " 135790\n") == "027"


def test_a_wrong_code_fails_and_is_counted(platform, account, template):
    sid = start(platform, account, template, "123456")
    for n, wrong in enumerate(["654321", "12345", "1234567", "", "123456 7"], start=1):
        assert check(platform, account.id, sid, wrong) == "025", wrong
        assert session_row(platform, sid).attempts == n
        if n == platform.settings.otp_max_attempts - 1:
            break
    # Below the limit the right code still works.
    assert check(platform, account.id, sid, "123456") == "027"


def test_the_session_locks_after_max_attempts_even_for_the_right_code(platform, account, template):
    limit = platform.settings.otp_max_attempts
    assert limit == 5  # the documented default
    sid = start(platform, account, template, "777777")
    # The attempt that reaches the limit still learns only "mismatch".
    assert [check(platform, account.id, sid, "000000") for _ in range(limit)] == ["025"] * limit
    assert check(platform, account.id, sid, "777777") == "103"
    assert check(platform, account.id, sid, "000000") == "103"
    row = session_row(platform, sid)
    assert row.attempts == limit and row.used_at is None  # locked attempts are not counted further


def test_the_attempt_limit_is_the_callers(platform, account, template):
    sid = start(platform, account, template, "222222")
    with write(platform.engine) as conn:
        assert otp.verify(conn, platform.secret, account.id, sid, "000000", 1) == "025"
    with write(platform.engine) as conn:
        assert otp.verify(conn, platform.secret, account.id, sid, "222222", 1) == "103"


def test_an_expired_code_is_refused(platform, account, template):
    sid = start(platform, account, template, "314159")
    # The clock cannot be moved (uvox.clock reads the real time): move the expiry.
    with platform.engine.begin() as c:
        c.execute(
            sa.update(t.otp_sessions)
            .where(t.otp_sessions.c.session_id == sid)
            .values(expires_at=now() - timedelta(seconds=1))
        )
    assert check(platform, account.id, sid, "314159") == "023"
    assert session_row(platform, sid).used_at is None
    # Still within its TTL, another session verifies.
    live = start(platform, account, template, "314159", ttl=5)
    assert check(platform, account.id, live, "314159") == "027"


def test_an_unknown_or_malformed_session_is_not_found(platform, account, template):
    sid = start(platform, account, template, "999999")
    for bad in ["", "   ", otp.new_session_id(), sid[:-1], "x" * 129, sid[:10] + "\x00" + sid[10:]]:
        assert check(platform, account.id, bad, "999999") == "024", repr(bad)
    assert session_row(platform, sid).attempts == 0
    assert check(platform, account.id, f"  {sid} ", "999999") == "027"


def test_a_session_belongs_to_the_account_that_opened_it(platform, account, template):
    intruder = accounts.create_account(platform.engine, email="intruder@example.com")
    sid = start(platform, account, template, "505050")
    assert check(platform, intruder.id, sid, "505050") == "024"
    assert check(platform, intruder.id, sid, "000000") == "024"
    assert session_row(platform, sid).attempts == 0  # the intruder's guesses did not lock it
    assert check(platform, account.id, sid, "505050") == "027"


def test_a_new_code_is_a_new_session_each_checked_against_its_own_code(platform, account, template):
    """A resend opens another session with another code; the codes do not cross over.
    (The service does not close the earlier session: it stays valid until it expires,
    is used or locks.)"""
    first = start(platform, account, template, "101010")
    second = start(platform, account, template, "202020")
    assert first != second
    assert check(platform, account.id, second, "101010") == "025"
    assert check(platform, account.id, first, "202020") == "025"
    assert check(platform, account.id, second, "202020") == "027"
    assert check(platform, account.id, first, "101010") == "027"


def test_concurrent_right_answers_win_once(platform, account, template):
    sid = start(platform, account, template, "868686")
    results: list[str] = []
    barrier = threading.Barrier(10)

    def answer():
        barrier.wait()
        results.append(check(platform, account.id, sid, "868686"))

    threads = [threading.Thread(target=answer) for _ in range(10)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(30)
    assert sorted(results) == ["026"] * 9 + ["027"]


def test_concurrent_wrong_guesses_cannot_pass_the_attempt_limit(platform, account, template):
    limit = platform.settings.otp_max_attempts
    sid = start(platform, account, template, "414141")
    results: list[str] = []
    barrier = threading.Barrier(12)

    def guess(i):
        barrier.wait()
        results.append(check(platform, account.id, sid, f"{i:06d}"))

    threads = [threading.Thread(target=guess, args=(i,)) for i in range(12)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(30)
    assert sorted(results) == ["025"] * limit + ["103"] * (12 - limit)
    assert session_row(platform, sid).attempts == limit


# --- sends per number ----------------------------------------------------------------


def test_recent_sends_counts_this_accounts_codes_to_this_number_in_the_window(platform, account, template):
    window = platform.settings.otp_send_window_seconds
    other = accounts.create_account(platform.engine, email="other@example.com")
    other_tpl = otp.create_template(platform.engine, other.id, "{code}")

    def sends(account_id=account.id, phone=PHONE):
        with read(platform.engine) as conn:
            return otp.recent_sends(conn, account_id, phone, window)

    assert sends() == 0
    old = start(platform, account, template, "000001")
    start(platform, account, template, "000002")
    start(platform, account, template, "000003", phone="+13055550199")
    start(platform, other, other_tpl, "000004")
    assert sends() == 2
    assert sends(phone="+13055550199") == 1
    assert sends(account_id=other.id) == 1
    # A send older than the window no longer counts.
    with platform.engine.begin() as c:
        c.execute(
            sa.update(t.otp_sessions)
            .where(t.otp_sessions.c.session_id == old)
            .values(created_at=now() - timedelta(seconds=window + 1))
        )
    assert sends() == 1


# --- templates -----------------------------------------------------------------------


def test_a_template_needs_the_code_placeholder_and_fits_the_limits(platform, account):
    assert otp.validate_template_text("  Code: {code}  ") == "Code: {code}"
    for text, why in [
        ("no placeholder", "must contain {code}"),
        ("", "must contain {code}"),
        ("{code}\x00", "NUL"),
        ("{code}" + "x" * 475, "too long"),
    ]:
        with pytest.raises(ValueError, match=re.escape(why)):
            otp.create_template(platform.engine, account.id, text)
    assert otp.validate_template_text("{code}" + "x" * 474) == "{code}" + "x" * 474  # 480 exactly
    assert otp.list_templates(platform.engine, account.id) == []  # nothing stored by the refusals


def test_templates_are_found_edited_and_deleted_only_by_their_account(platform, account, template):
    intruder = accounts.create_account(platform.engine, email="intruder@example.com")
    assert re.fullmatch(r"[0-9a-f]{16}", template.ref_id)
    assert otp.create_template(platform.engine, account.id, "{code}").ref_id != template.ref_id
    with read(platform.engine) as conn:
        assert otp.find_template(conn, account.id, f" {template.ref_id} ") == template
        assert otp.find_template(conn, intruder.id, template.ref_id) is None
    with pytest.raises(NotFound):
        otp.update_template(platform.engine, intruder.id, template.id, text="pwned {code}")
    with pytest.raises(NotFound):
        otp.delete_template(platform.engine, intruder.id, template.id)
    assert otp.list_templates(platform.engine, intruder.id) == []
    changed = otp.update_template(platform.engine, account.id, template.id, text=" New {code} ", name="n", sender="S")
    assert (changed.ref_id, changed.text, changed.name, changed.sender) == (template.ref_id, "New {code}", "n", "S")
    with pytest.raises(ValueError):
        otp.update_template(platform.engine, account.id, template.id, text="no placeholder")
    otp.delete_template(platform.engine, account.id, template.id)
    with pytest.raises(NotFound):
        otp.delete_template(platform.engine, account.id, template.id)
    assert template.ref_id not in [x.ref_id for x in otp.list_templates(platform.engine, account.id)]
