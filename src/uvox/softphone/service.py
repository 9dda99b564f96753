"""SIP accounts of a customer account, and what softphones ask about them.

This is the API the portal, the CLI and the HTTP endpoints call. Every function
takes a SQLAlchemy ``Engine`` and opens its own transaction; none knows HTTP.

Password policy: the platform never stores a SIP password, only the digest
hashes Kamailio needs (see credentials.py). A password is therefore shown
exactly once: when the account is created, when it is reset, or when a Zoiper
scan redeems a provisioning token (which issues a fresh password to that
device, so a SIP account is one device; create one account per device).

Kamailio sync: on PostgreSQL the ``subscriber`` row is written in the same
transaction as the ``sip_accounts`` change, so a new account registers at once
and a deleted or reset one is refused at once. On SQLite there is no Kamailio;
the accounts still work inside the platform (provisioning, balance, rates).

Errors: ``SipAccountNotFound`` (unknown id, or not this customer's),
``InvalidSipInput`` (a ValueError with a message fit for the user),
``InvalidToken`` (unknown, used or expired provisioning token).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from uvox.billing.plans import lookup as rate_lookup
from uvox.clock import aware
from uvox.clock import now as _now
from uvox.db import schema
from uvox.db.session import read, write
from uvox.errors import NotFound

from . import credentials, tokens
from . import subscriber as kam

LABEL_MAX = 200
CALLER_ID_MAX = 32
_CALLER_ID_RE = re.compile(r"^[\w +\-.()]*$")
_USERNAME_ATTEMPTS = 20


class SipAccountNotFound(NotFound, LookupError):
    """No such SIP account for this customer account."""


class InvalidSipInput(ValueError):
    """A value the user typed that cannot be used; the message says why."""


class InvalidToken(NotFound, LookupError):
    """The provisioning token is unknown, already used, or expired."""


class AccountNotFound(NotFound, LookupError):
    """No customer account with that number."""


@dataclass(frozen=True)
class SipAccount:
    id: int
    account_id: int
    username: str
    domain: str
    transport: str  # udp, tcp or tls
    caller_id: str
    label: str
    created_at: datetime | None

    @property
    def address(self) -> str:
        return f"{self.username}@{self.domain}"


@dataclass(frozen=True)
class SipCredentials:
    """A SIP account with its plain password: shown once, never stored."""

    account: SipAccount
    password: str

    def as_dict(self) -> dict[str, str]:
        a = self.account
        return {
            "id": str(a.id),
            "username": a.username,
            "password": self.password,
            "domain": a.domain,
            "transport": a.transport.upper(),
            "caller_id": a.caller_id,
            "label": a.label,
        }


@dataclass(frozen=True)
class SoftphoneUser:
    """A SIP account whose password was just verified, with its customer account."""

    sip: SipAccount
    account_id: int
    currency: str
    balance: Decimal
    credit_limit: Decimal
    plan_id: int | None
    held: Decimal = Decimal(0)

    @property
    def available(self) -> Decimal:
        """What the phone may still spend: balance + credit - money held by calls in progress."""
        return self.balance + self.credit_limit - self.held


def _row_to_sip(row) -> SipAccount:
    return SipAccount(
        id=row.id,
        account_id=row.account_id,
        username=row.username,
        domain=row.domain,
        transport=row.transport,
        caller_id=row.caller_id or "",
        label=row.label or "",
        created_at=aware(row.created_at),
    )


def _clean_label(label: str | None) -> str:
    label = (label or "").strip()
    if len(label) > LABEL_MAX:
        raise InvalidSipInput(f"the name may have at most {LABEL_MAX} characters")
    if any(ord(c) < 32 for c in label):
        raise InvalidSipInput("the name may not contain control characters")
    return label


def _clean_caller_id(caller_id: str | None) -> str:
    caller_id = (caller_id or "").strip()
    if len(caller_id) > CALLER_ID_MAX or not _CALLER_ID_RE.match(caller_id):
        raise InvalidSipInput(f"the caller id may have up to {CALLER_ID_MAX} letters, digits, spaces and + - . ( )")
    return caller_id


def _clean_transport(transport: str | None) -> str:
    try:
        return credentials.normalize_transport(transport)
    except ValueError as exc:
        raise InvalidSipInput(str(exc)) from None


def _get(conn: Connection, account_id: int, sip_account_id: int, *, lock: bool = False):
    t = schema.sip_accounts
    q = sa.select(t).where(t.c.id == sip_account_id, t.c.account_id == account_id)
    if lock and conn.dialect.name == "postgresql":
        q = q.with_for_update()
    row = conn.execute(q).first()
    if row is None:
        raise SipAccountNotFound(f"no SIP account {sip_account_id} on this account")
    return row


def _set_hashes(conn: Connection, row, password: str) -> None:
    """Store new digest hashes in sip_accounts and, on PostgreSQL, subscriber."""
    h1 = credentials.ha1(row.username, row.domain, password)
    h1b = credentials.ha1b(row.username, row.domain, row.domain, password)
    conn.execute(
        sa.update(schema.sip_accounts)
        .where(schema.sip_accounts.c.id == row.id)
        .values(ha1=h1, ha1b=h1b, updated_at=_now())
    )
    if kam.enabled(conn):
        conn.execute(
            sa.update(kam.subscriber).where(kam.subscriber.c.sip_account_id == row.id).values(ha1=h1, ha1b=h1b)
        )


def create_sip_account(
    engine: Engine,
    account_id: int,
    *,
    domain: str,
    label: str = "",
    transport: str = "udp",
    caller_id: str = "",
) -> SipCredentials:
    """Create a SIP account for customer ``account_id`` on SIP ``domain``.

    The username is the account number followed by random digits. Returns the
    credentials with the password, which cannot be recovered later.
    """
    label = _clean_label(label)
    caller_id = _clean_caller_id(caller_id)
    transport = _clean_transport(transport)
    if not domain or len(domain) > 64:  # Kamailio's subscriber.domain is VARCHAR(64)
        raise InvalidSipInput("the SIP domain must have 1 to 64 characters (UVOX_SIP_DOMAIN)")
    password = credentials.new_password()
    now = _now()
    for _ in range(_USERNAME_ATTEMPTS):
        try:
            with write(engine) as conn:
                number = conn.execute(
                    sa.select(schema.accounts.c.number).where(schema.accounts.c.id == account_id)
                ).scalar()
                if number is None:
                    raise AccountNotFound(f"no account with id {account_id}")
                username = credentials.new_username(number)
                h1 = credentials.ha1(username, domain, password)
                h1b = credentials.ha1b(username, domain, domain, password)
                new_id = conn.execute(
                    sa.insert(schema.sip_accounts).values(
                        account_id=account_id,
                        username=username,
                        domain=domain,
                        ha1=h1,
                        ha1b=h1b,
                        transport=transport,
                        caller_id=caller_id,
                        label=label,
                        created_at=now,
                        updated_at=now,
                    )
                ).inserted_primary_key[0]
                if kam.enabled(conn):
                    conn.execute(
                        sa.insert(kam.subscriber).values(
                            username=username,
                            domain=domain,
                            password="",
                            ha1=h1,
                            ha1b=h1b,
                            sip_account_id=new_id,
                        )
                    )
                row = _get(conn, account_id, new_id)
            return SipCredentials(_row_to_sip(row), password)
        except sa.exc.IntegrityError:
            continue  # username clash: draw another one
    raise RuntimeError("could not find a free SIP username")


def list_sip_accounts(engine: Engine, account_id: int) -> list[SipAccount]:
    """The customer's SIP accounts, oldest first."""
    t = schema.sip_accounts
    with read(engine) as conn:
        rows = conn.execute(sa.select(t).where(t.c.account_id == account_id).order_by(t.c.id)).all()
    return [_row_to_sip(r) for r in rows]


def get_sip_account(engine: Engine, account_id: int, sip_account_id: int) -> SipAccount:
    with read(engine) as conn:
        return _row_to_sip(_get(conn, account_id, sip_account_id))


def find_by_username(engine: Engine, username: str) -> SipAccount:
    """Look up by SIP username alone (for operators: ``uvox admin sip`` takes either)."""
    t = schema.sip_accounts
    with read(engine) as conn:
        row = conn.execute(sa.select(t).where(t.c.username == username)).first()
    if row is None:
        raise SipAccountNotFound(f"no SIP account {username!r}")
    return _row_to_sip(row)


def rename_sip_account(engine: Engine, account_id: int, sip_account_id: int, label: str) -> SipAccount:
    """Change the name the customer gave the device; credentials are untouched."""
    label = _clean_label(label)
    with write(engine) as conn:
        row = _get(conn, account_id, sip_account_id, lock=True)
        conn.execute(
            sa.update(schema.sip_accounts)
            .where(schema.sip_accounts.c.id == row.id)
            .values(label=label, updated_at=_now())
        )
        return _row_to_sip(_get(conn, account_id, sip_account_id))


def update_sip_account(
    engine: Engine,
    account_id: int,
    sip_account_id: int,
    *,
    transport: str | None = None,
    caller_id: str | None = None,
) -> SipAccount:
    """Change transport and/or caller id (None leaves a field as it is)."""
    values: dict = {}
    if transport is not None:
        values["transport"] = _clean_transport(transport)
    if caller_id is not None:
        values["caller_id"] = _clean_caller_id(caller_id)
    with write(engine) as conn:
        row = _get(conn, account_id, sip_account_id, lock=True)
        if values:
            values["updated_at"] = _now()
            conn.execute(sa.update(schema.sip_accounts).where(schema.sip_accounts.c.id == row.id).values(**values))
        return _row_to_sip(_get(conn, account_id, sip_account_id))


def reset_sip_password(engine: Engine, account_id: int, sip_account_id: int) -> SipCredentials:
    """Give the account a new password; the old one stops working at once.

    Unused provisioning tokens of the account are cancelled too: a QR shown
    before the reset must not provision a device after it.
    """
    password = credentials.new_password()
    with write(engine) as conn:
        row = _get(conn, account_id, sip_account_id, lock=True)
        _set_hashes(conn, row, password)
        _cancel_tokens(conn, row.id)
        return SipCredentials(_row_to_sip(_get(conn, account_id, sip_account_id)), password)


def delete_sip_account(engine: Engine, account_id: int, sip_account_id: int) -> None:
    """Delete the SIP account; Kamailio refuses its next REGISTER."""
    with write(engine) as conn:
        row = _get(conn, account_id, sip_account_id, lock=True)
        if kam.enabled(conn):
            conn.execute(sa.delete(kam.subscriber).where(kam.subscriber.c.sip_account_id == row.id))
        conn.execute(sa.delete(schema.provisioning_tokens).where(schema.provisioning_tokens.c.sip_account_id == row.id))
        conn.execute(sa.delete(schema.sip_accounts).where(schema.sip_accounts.c.id == row.id))


# ---------------------------------------------------------------- provisioning


def _cancel_tokens(conn: Connection, sip_account_id: int) -> None:
    t = schema.provisioning_tokens
    conn.execute(sa.update(t).where(t.c.sip_account_id == sip_account_id, t.c.used_at.is_(None)).values(used_at=_now()))


def create_provisioning_token(
    engine: Engine,
    account_id: int,
    sip_account_id: int,
    kind: str,
    *,
    ttl: timedelta = tokens.TOKEN_TTL,
) -> str:
    """A single-use token for one scan, valid ``ttl`` (10 minutes by default).

    ``kind`` is ``zoiper`` (redeemed by Zoiper's Token URL call) or
    ``linphone`` (redeemed by fetching ``/prov/<token>``). Only its hash is stored.
    """
    if kind not in tokens.KINDS:
        raise InvalidSipInput(f"kind must be one of {', '.join(tokens.KINDS)}")
    token, token_hash = tokens.new_token()
    now = _now()
    with write(engine) as conn:
        _get(conn, account_id, sip_account_id)
        conn.execute(
            sa.insert(schema.provisioning_tokens).values(
                sip_account_id=sip_account_id,
                token_hash=token_hash,
                kind=kind,
                created_at=now,
                expires_at=now + ttl,
            )
        )
    return token


def _redeem(conn: Connection, token: str, kind: str):
    """Mark the token used if it is valid; the conditional UPDATE makes two
    concurrent fetches of one token end with exactly one winner."""
    t = schema.provisioning_tokens
    if not token or len(token) > 200:
        raise InvalidToken("invalid provisioning token")
    now = _now()
    h = tokens.hash_token(token)
    done = conn.execute(
        sa.update(t)
        .where(t.c.token_hash == h, t.c.kind == kind, t.c.used_at.is_(None), t.c.expires_at > now)
        .values(used_at=now)
    )
    if done.rowcount != 1:
        raise InvalidToken("this provisioning code is invalid, expired or already used")
    sip_id = conn.execute(sa.select(t.c.sip_account_id).where(t.c.token_hash == h)).scalar_one()
    return conn.execute(sa.select(schema.sip_accounts).where(schema.sip_accounts.c.id == sip_id)).one()


def redeem_zoiper_token(engine: Engine, token: str) -> SipCredentials:
    """Zoiper's Token URL call: consume the token and issue a fresh password.

    Zoiper needs the plain password, which the platform does not keep; the
    device that scans therefore receives a new one, and any device that used
    the old password of this SIP account is logged out.
    """
    password = credentials.new_password()
    with write(engine) as conn:
        row = _redeem(conn, token, "zoiper")
        _set_hashes(conn, row, password)
        row = conn.execute(sa.select(schema.sip_accounts).where(schema.sip_accounts.c.id == row.id)).one()
    return SipCredentials(_row_to_sip(row), password)


def redeem_linphone_token(engine: Engine, token: str) -> tuple[SipAccount, str]:
    """Linphone's fetch of /prov/<token>: consume the token, return (account, ha1).

    Linphone authenticates with ha1, so the password is not changed.
    """
    with write(engine) as conn:
        row = _redeem(conn, token, "linphone")
    return _row_to_sip(row), row.ha1


# ------------------------------------------------------ balance and rates


def authenticate(engine: Engine, username: str, password: str, domain: str) -> SoftphoneUser | None:
    """Check SIP credentials against the stored ha1; None if wrong or unknown.

    Used by the Zoiper and Acrobits balance/rate URLs, which send the SIP
    username and password (over HTTPS in production).
    """
    if "@" in (username or ""):  # some phones send user@domain
        username, _, at_domain = username.partition("@")
        if at_domain.lower() != domain.lower():
            return None
    if not username or not password or len(username) > 64 or len(password) > 128:
        return None
    t, a = schema.sip_accounts, schema.accounts
    with read(engine) as conn:
        row = conn.execute(
            sa.select(t, a.c.currency, a.c.balance, a.c.credit_limit, a.c.held, a.c.plan_id, a.c.disabled)
            .join(a, a.c.id == t.c.account_id)
            .where(t.c.username == username, t.c.domain == domain)
        ).first()
    if row is None:
        credentials.check_password(username, domain, password, "0" * 32)  # same work either way
        return None
    if not credentials.check_password(row.username, row.domain, password, row.ha1) or row.disabled:
        return None
    return SoftphoneUser(
        sip=_row_to_sip(row),
        account_id=row.account_id,
        currency=row.currency,
        balance=row.balance,
        credit_limit=row.credit_limit,
        plan_id=row.plan_id,
        held=row.held,
    )


def destination_digits(destination: str) -> str:
    """What a softphone dialled, as international digits: ``+``, spaces, dashes
    and the ``00`` international prefix removed. Empty if nothing dialable."""
    digits = re.sub(r"[^\d]", "", destination or "")
    if digits.startswith("00"):
        digits = digits[2:]
    return digits[:20]


@dataclass(frozen=True)
class Rate:
    prefix: str
    destination: str
    price_per_minute: Decimal
    sms_price: Decimal


def rate_for(engine: Engine, plan_id: int | None, destination: str) -> Rate | None:
    """Longest dial-prefix match of ``destination`` on the plan (billing's own
    lookup, the one that prices SMS), or None."""
    digits = destination_digits(destination)
    if plan_id is None or not digits:
        return None
    with read(engine) as conn:
        found = rate_lookup(conn, plan_id, digits)
    if found is None:
        return None
    return Rate(found.prefix, found.destination, found.rate_initial, found.sms_rate)


_ISO_CURRENCY = {"US$": "USD", "$": "USD", "€": "EUR", "EUR€": "EUR", "£": "GBP", "S/": "PEN", "R$": "BRL"}


def iso_currency(currency: str) -> str:
    """The platform shows currencies as the operator names them (``US$``);
    softphones expect ISO 4217 codes."""
    c = (currency or "").strip()
    if re.fullmatch(r"[A-Za-z]{3}", c):
        return c.upper()
    return _ISO_CURRENCY.get(c, c)


def token_is_valid(engine: Engine, token: str, kind: str) -> bool:
    """Whether a token could still be redeemed (does not consume it)."""
    if not token or len(token) > 200:
        return False
    t = schema.provisioning_tokens
    with read(engine) as conn:
        found = conn.execute(
            sa.select(t.c.id).where(
                t.c.token_hash == tokens.hash_token(token),
                t.c.kind == kind,
                t.c.used_at.is_(None),
                t.c.expires_at > _now(),
            )
        ).first()
    return found is not None


def linphone_provisioning_url(base_url: str, token: str) -> str:
    return f"{base_url.rstrip('/')}/prov/{token}"


@dataclass(frozen=True)
class Provisioning:
    """What the portal shows to provision one device (tokens valid 10 minutes, once).

    ``linphone_url`` is the provisioning URL, ``linphone_qr`` a PNG ``data:`` URI
    of it (rendered here, segno). ``zoiper_qr`` is the image URL of Zoiper's OEM
    QR service, or None when the operator has no Zoiper provider id.
    """

    linphone_url: str
    linphone_qr: str
    zoiper_qr: str | None
    expires_in_seconds: int


def provision_device(
    engine: Engine,
    account_id: int,
    sip_account_id: int,
    *,
    base_url: str,
    zoiper_provider_id: str = "",
) -> Provisioning:
    """Create the tokens and QR codes for the portal's "scan this" page.

    ``base_url`` is the platform's public URL (settings.public_url, or the
    request's base URL). Call it per page view: each view mints new tokens.
    """
    from . import qr

    sip = get_sip_account(engine, account_id, sip_account_id)
    lin = create_provisioning_token(engine, account_id, sip_account_id, "linphone")
    url = linphone_provisioning_url(base_url, lin)
    zoiper = None
    if zoiper_provider_id:
        zt = create_provisioning_token(engine, account_id, sip_account_id, "zoiper")
        zoiper = qr.zoiper_qr_url(provider_id=zoiper_provider_id, token=zt, domain=sip.domain, transport=sip.transport)
    return Provisioning(url, qr.qr_data_uri(url), zoiper, int(tokens.TOKEN_TTL.total_seconds()))


def sync_subscribers(conn: Connection, account_id: int | None = None) -> dict[str, int]:
    """Make Kamailio's ``subscriber`` rows match ``sip_accounts`` (PostgreSQL only).

    Run it in the caller's transaction wherever a customer account is disabled
    or re-enabled (disabled accounts get no rows, so their phones are refused),
    or for the whole installation (``uvox sip sync``) after restoring a backup
    or moving from SQLite to PostgreSQL. Returns counts of rows written.
    """
    counts = {"inserted": 0, "updated": 0, "deleted": 0}
    if not kam.enabled(conn):
        return counts
    s, a, sub = schema.sip_accounts, schema.accounts, kam.subscriber
    q = (
        sa.select(s.c.id, s.c.username, s.c.domain, s.c.ha1, s.c.ha1b)
        .join(a, a.c.id == s.c.account_id)
        .where(a.c.disabled.is_(False))
    )
    scope = sa.select(s.c.id)
    if account_id is not None:
        q = q.where(s.c.account_id == account_id)
        scope = scope.where(s.c.account_id == account_id)
    wanted = {r.id: r for r in conn.execute(q)}
    have_q = sa.select(sub.c.sip_account_id, sub.c.username, sub.c.domain, sub.c.ha1, sub.c.ha1b)
    if account_id is not None:
        have_q = have_q.where(sub.c.sip_account_id.in_(scope))
    else:
        have_q = have_q.where(sub.c.sip_account_id.is_not(None))
    have = {r.sip_account_id: r for r in conn.execute(have_q)}
    for sid in have.keys() - wanted.keys():
        conn.execute(sa.delete(sub).where(sub.c.sip_account_id == sid))
        counts["deleted"] += 1
    for sid, r in wanted.items():
        row = dict(username=r.username, domain=r.domain, ha1=r.ha1, ha1b=r.ha1b)
        if sid not in have:
            conn.execute(sa.insert(sub).values(sip_account_id=sid, password="", **row))
            counts["inserted"] += 1
        elif tuple(getattr(have[sid], k) for k in row) != tuple(row.values()):
            conn.execute(sa.update(sub).where(sub.c.sip_account_id == sid).values(**row))
            counts["updated"] += 1
    return counts
