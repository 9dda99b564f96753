"""The database schema, as SQLAlchemy Core tables.

Core rather than the ORM: the hot paths (intake, claiming, receipts) are single
statements whose SQL we want to see, and Core costs a fraction of the ORM per row.
Alembic migrations under ``uvox/db/migrations`` create exactly these tables.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator, TypeEngine

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

MICRO = Decimal("0.000001")


class Money(TypeDecorator[Decimal]):
    """A ``Decimal`` amount with six decimals.

    PostgreSQL stores NUMERIC(20, 6). SQLite has no exact decimal type (its NUMERIC
    is a float), so there the amount is an integer of micro-units; either way Python
    only ever sees ``Decimal``, and arithmetic in SQL (``balance - :price``) stays exact.
    """

    impl = sa.Numeric(20, 6)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(sa.BigInteger())
        return dialect.type_descriptor(sa.Numeric(20, 6, asdecimal=True))

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        if value is None:
            return None
        value = Decimal(value).quantize(MICRO)
        if dialect.name == "sqlite":
            return int(value * 1_000_000)
        return value

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        if value is None:
            return None
        if dialect.name == "sqlite":
            return (Decimal(int(value)) / 1_000_000).quantize(MICRO)
        return Decimal(value).quantize(MICRO)


def _now_col(name: str = "created_at", nullable: bool = False) -> sa.Column[datetime]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


meta = sa.Table(
    "meta",
    metadata,
    sa.Column("key", sa.String(64), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
)

plans = sa.Table(
    "plans",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("name", sa.String(100), nullable=False, unique=True),
    sa.Column("currency", sa.String(8), nullable=False),
    _now_col(),
)

rates = sa.Table(
    "rates",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("plan_id", sa.Integer, sa.ForeignKey("plans.id", ondelete="CASCADE"), nullable=False),
    sa.Column("prefix", sa.String(20), nullable=False),
    sa.Column("destination", sa.String(200), nullable=False),
    sa.Column("rate_initial", Money, nullable=False),
    sa.Column("sms_rate", Money, nullable=False),
    # Voice (A2Billing's names in the CSV): connectcharge, initblock, billingblock.
    sa.Column("connect_charge", Money, nullable=False, default=Decimal(0), server_default="0"),
    sa.Column("init_block", sa.Integer, nullable=False, default=60, server_default="60"),
    sa.Column("billing_block", sa.Integer, nullable=False, default=60, server_default="60"),
    sa.UniqueConstraint("plan_id", "prefix", name="uq_rates_plan_prefix"),
)

accounts = sa.Table(
    "accounts",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("number", sa.String(20), nullable=False, unique=True),
    sa.Column("email", sa.String(254), unique=True),
    sa.Column("password_hash", sa.String(255)),
    sa.Column("is_staff", sa.Boolean, nullable=False, default=False),
    sa.Column("plan_id", sa.Integer, sa.ForeignKey("plans.id", ondelete="SET NULL")),
    sa.Column("currency", sa.String(8), nullable=False),
    sa.Column("balance", Money, nullable=False, default=Decimal(0)),
    sa.Column("credit_limit", Money, nullable=False, default=Decimal(0)),
    # Money held by calls in progress (uvox.voice): available = balance + credit_limit - held.
    sa.Column("held", Money, nullable=False, default=Decimal(0), server_default="0"),
    # Bumped in every transaction that changes spend under the account's caps (a cap
    # saved, a charge or refund counted; migration 0011): call authorization reads it
    # with the caps and holds only while it is unchanged (billing/caps.py).
    sa.Column("cap_version", sa.Integer, nullable=False, default=0, server_default="0"),
    sa.Column("callback_url", sa.String(2000)),
    sa.Column("callback_secret", sa.String(128)),
    sa.Column("disabled", sa.Boolean, nullable=False, default=False),
    # API requests a second the operator allows this account (None: no limit).
    sa.Column("rate_limit", sa.Integer),
    # Destination countries (ISO 3166 codes as phonenumbers names them, comma-separated;
    # migration 0008): an OTP or SMS to a blocked one, or to one off a non-empty allow
    # list, is refused (uvox.accounts.countries). Read with the account, so the API's
    # key cache carries them and a send asks the database nothing more.
    sa.Column("allowed_countries", sa.String(1000)),
    sa.Column("blocked_countries", sa.String(1000)),
    _now_col(),
)

# Requests counted per account and second for accounts with a rate_limit (shared by
# every API process). UNLOGGED on PostgreSQL (migration 0005): losing the counts
# of the last seconds in a crash is harmless, and a count is not worth an fsync.
rate_counts = sa.Table(
    "rate_counts",
    metadata,
    sa.Column("account_id", sa.Integer, primary_key=True),
    sa.Column("second", sa.BigInteger, primary_key=True),
    sa.Column("count", sa.Integer, nullable=False),
)

api_keys = sa.Table(
    "api_keys",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("account_id", sa.Integer, sa.ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False, index=True),
    # SHA-256 of the key: the key has 160 random bits, so a slow hash adds nothing.
    sa.Column("key_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("hint", sa.String(16), nullable=False),
    sa.Column("description", sa.String(200), nullable=False, default=""),
    # A test key (migration 0009): its sends never reach a carrier and never charge (sms/testmode.py).
    sa.Column("test", sa.Boolean, nullable=False, default=False, server_default=sa.false()),
    _now_col(),
    _now_col("last_used_at", nullable=True),
    _now_col("revoked_at", nullable=True),
)

ledger = sa.Table(
    "ledger",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("account_id", sa.Integer, sa.ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False),
    # topup, charge, refund, adjustment
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("amount", Money, nullable=False),
    sa.Column("message_id", sa.Integer),
    # The call a "call" charge is for: unique, so a replayed call record cannot charge twice.
    sa.Column("call_id", sa.Integer),
    sa.Column("note", sa.String(500), nullable=False, default=""),
    _now_col(),
    sa.Index("ix_ledger_account", "account_id", "id"),
    sa.Index("uq_ledger_call_id", "call_id", unique=True),
)

messages = sa.Table(
    "messages",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("account_id", sa.Integer, sa.ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False),
    # sms or otp
    sa.Column("kind", sa.String(8), nullable=False, default="sms"),
    sa.Column("sender", sa.String(20), nullable=False, default=""),
    sa.Column("sender_used", sa.String(20)),
    sa.Column("recipient", sa.String(20), nullable=False),
    sa.Column("destination", sa.String(200), nullable=False, default=""),
    # For OTP messages this is the masked text; the real one is in secret_text.
    sa.Column("text", sa.Text, nullable=False),
    # AES-GCM sealed text (uvox.secretbox) until the carrier accepts it, then NULL.
    sa.Column("secret_text", sa.Text),
    sa.Column("encoding", sa.String(8), nullable=False),
    sa.Column("segments", sa.Integer, nullable=False),
    sa.Column("price", Money, nullable=False),
    sa.Column("currency", sa.String(8), nullable=False),
    # waiting_balance, queued, submitting, submitted, delivered, undelivered,
    # expired, rejected, failed
    sa.Column("state", sa.String(20), nullable=False),
    sa.Column("charged", sa.Boolean, nullable=False, default=False),
    sa.Column("connector", sa.String(100)),
    sa.Column("simulated", sa.Boolean, nullable=False, default=False),
    sa.Column("callback_url", sa.String(2000)),
    sa.Column("error", sa.String(500)),
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    # Sent with a test key (migration 0009): never given to a carrier, never charged.
    sa.Column("test", sa.Boolean, nullable=False, default=False, server_default=sa.false()),
    _now_col(),
    _now_col("updated_at"),
    _now_col("submitted_at", nullable=True),
    _now_col("done_at", nullable=True),
    _now_col("expires_at", nullable=True),
    _now_col("next_attempt_at", nullable=True),
    sa.Index("ix_messages_state", "state", "id"),
    sa.Index("ix_messages_account", "account_id", "id"),
)

message_parts = sa.Table(
    "message_parts",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("message_id", sa.Integer, sa.ForeignKey("messages.id", ondelete="CASCADE"), nullable=False),
    sa.Column("part_no", sa.Integer, nullable=False),
    sa.Column("connector", sa.String(100)),
    sa.Column("smsc_message_id", sa.String(80)),
    sa.Column("state", sa.String(20), nullable=False),
    sa.Column("error", sa.String(200)),
    _now_col(),
    _now_col("done_at", nullable=True),
    sa.UniqueConstraint("message_id", "part_no", name="uq_message_parts_message_part"),
    sa.Index("ix_message_parts_smsc", "connector", "smsc_message_id"),
)

connectors = sa.Table(
    "connectors",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("name", sa.String(100), nullable=False, unique=True),
    sa.Column("host", sa.String(255), nullable=False),
    sa.Column("port", sa.Integer, nullable=False),
    sa.Column("system_id", sa.String(16), nullable=False),
    # The SMSC needs the password itself at bind time, so it cannot be hashed: it is
    # AES-GCM sealed under the instance secret (uvox.secretbox, purpose
    # "smpp-password"; "" for none) and opened only to bind.
    sa.Column("sealed_password", sa.String(255), nullable=False, default=""),
    sa.Column("system_type", sa.String(13), nullable=False, default=""),
    sa.Column("bind_mode", sa.String(16), nullable=False, default="transceiver"),
    sa.Column("tps", sa.Integer, nullable=False, default=0),
    sa.Column("window", sa.Integer, nullable=False, default=64),
    sa.Column("accepts_alphanumeric", sa.Boolean, nullable=False, default=True),
    sa.Column("generic_sender", sa.String(20)),
    sa.Column("enabled", sa.Boolean, nullable=False, default=True),
    _now_col(),
)

routes = sa.Table(
    "routes",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    # "" is the default route.
    sa.Column("prefix", sa.String(20), nullable=False, default=""),
    sa.Column("connector_id", sa.Integer, sa.ForeignKey("connectors.id", ondelete="CASCADE"), nullable=False),
    sa.Column("priority", sa.Integer, nullable=False, default=0),
    sa.UniqueConstraint("prefix", "connector_id", name="uq_routes_prefix_connector"),
)

callbacks = sa.Table(
    "callbacks",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("account_id", sa.Integer, sa.ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False),
    sa.Column("message_id", sa.Integer),
    sa.Column("url", sa.String(2000), nullable=False),
    sa.Column("body", sa.Text, nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    _now_col(),
    _now_col("next_attempt_at"),
    _now_col("delivered_at", nullable=True),
    sa.Column("last_error", sa.String(500)),
    sa.Index("ix_callbacks_pending", "delivered_at", "next_attempt_at"),
)

otp_templates = sa.Table(
    "otp_templates",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("account_id", sa.Integer, sa.ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False, index=True),
    sa.Column("ref_id", sa.String(64), nullable=False, unique=True),
    sa.Column("name", sa.String(200), nullable=False, default=""),
    sa.Column("text", sa.String(1000), nullable=False),
    sa.Column("sender", sa.String(20), nullable=False, default=""),
    _now_col(),
    _now_col("updated_at"),
)

otp_sessions = sa.Table(
    "otp_sessions",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("session_id", sa.String(64), nullable=False, unique=True),
    sa.Column("account_id", sa.Integer, sa.ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False),
    sa.Column("template_id", sa.Integer, sa.ForeignKey("otp_templates.id", ondelete="SET NULL")),
    sa.Column("phone", sa.String(20), nullable=False),
    # HMAC-SHA256(secret, session_id + ":" + code): the code never touches the disk.
    sa.Column("code_hash", sa.String(64), nullable=False),
    sa.Column("message_id", sa.Integer),
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    _now_col(),
    _now_col("expires_at"),
    _now_col("used_at", nullable=True),
    sa.Index("ix_otp_sessions_phone", "account_id", "phone", "created_at"),
    # SMS pumping protection (uvox.otp.guard, migration 0008): the number's prefix and
    # the client address a code was requested from, counted per account.
    sa.Column("prefix", sa.String(20)),
    sa.Column("address", sa.String(64)),
    sa.Index("ix_otp_sessions_account", "account_id", "created_at"),
    sa.Index("ix_otp_sessions_prefix", "account_id", "prefix", "created_at"),
    sa.Index("ix_otp_sessions_address", "account_id", "address", "created_at"),
)

# Per-account overrides of the OTP request limits (None: the configured default, 0: no limit).
otp_limits = sa.Table(
    "otp_limits",
    metadata,
    sa.Column("account_id", sa.Integer, sa.ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("per_number", sa.Integer),
    sa.Column("per_prefix", sa.Integer),
    sa.Column("per_address", sa.Integer),
    sa.Column("per_account", sa.Integer),
    _now_col("updated_at"),
)

# Prefixes the conversion-rate alarm paused for an account: one row per account and
# prefix, kept after the pause ends so the alarm counts only codes requested since.
otp_pauses = sa.Table(
    "otp_pauses",
    metadata,
    sa.Column("account_id", sa.Integer, sa.ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("prefix", sa.String(20), primary_key=True),
    sa.Column("country", sa.String(3), nullable=False, default=""),
    # What the alarm saw when it tripped.
    sa.Column("requested", sa.Integer, nullable=False),
    sa.Column("verified", sa.Integer, nullable=False),
    _now_col("paused_at"),
    # The pause ends here; lifting it sets this to the time it was lifted.
    _now_col("until"),
    _now_col("lifted_at", nullable=True),
    # "account" or "operator"
    sa.Column("lifted_by", sa.String(16)),
)

sip_accounts = sa.Table(
    "sip_accounts",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("account_id", sa.Integer, sa.ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False, index=True),
    sa.Column("username", sa.String(64), nullable=False),
    sa.Column("domain", sa.String(255), nullable=False),
    sa.Column("ha1", sa.String(64), nullable=False),
    sa.Column("ha1b", sa.String(64), nullable=False),
    sa.Column("transport", sa.String(4), nullable=False, default="udp"),
    sa.Column("caller_id", sa.String(32), nullable=False, default=""),
    sa.Column("label", sa.String(200), nullable=False, default=""),
    _now_col(),
    _now_col("updated_at"),
    sa.UniqueConstraint("username", "domain", name="uq_sip_accounts_user_domain"),
)

provisioning_tokens = sa.Table(
    "provisioning_tokens",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("sip_account_id", sa.Integer, sa.ForeignKey("sip_accounts.id", ondelete="CASCADE"), nullable=False),
    sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
    # zoiper or linphone
    sa.Column("kind", sa.String(16), nullable=False),
    _now_col(),
    _now_col("expires_at"),
    _now_col("used_at", nullable=True),
)

# --- customer portal (migration 0003_portal) -------------------------------------

portal_sessions = sa.Table(
    "portal_sessions",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    # SHA-256 of the cookie's random token: a database dump cannot be replayed as a cookie.
    sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("account_id", sa.Integer, sa.ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False, index=True),
    _now_col(),
    _now_col("expires_at"),
    sa.Column("address", sa.String(64), nullable=False, default=""),
)

signin_attempts = sa.Table(
    "signin_attempts",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    # "signin" or "signup"
    sa.Column("kind", sa.String(8), nullable=False),
    # The e-mail tried (normalised), so attempts on one account are counted from anywhere.
    sa.Column("email", sa.String(254), nullable=False, default=""),
    sa.Column("address", sa.String(64), nullable=False, default=""),
    sa.Column("ok", sa.Boolean, nullable=False, default=False),
    _now_col(),
    sa.Index("ix_signin_attempts_email", "email", "created_at"),
    sa.Index("ix_signin_attempts_address", "address", "created_at"),
)


# --- voice (migration 0004_voice) --------------------------------------------------

trunks = sa.Table(
    "trunks",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("name", sa.String(100), nullable=False, unique=True),
    sa.Column("host", sa.String(255), nullable=False),
    sa.Column("port", sa.Integer, nullable=False, default=5060),
    sa.Column("transport", sa.String(4), nullable=False, default="udp"),
    sa.Column("priority", sa.Integer, nullable=False, default=10),
    sa.Column("strip", sa.Integer, nullable=False, default=0),
    sa.Column("add_prefix", sa.String(20), nullable=False, default=""),
    # Kamailio answers the trunk's digest challenge with these, so they cannot be
    # hashed: the password is AES-GCM sealed under the instance secret (uvox.secretbox,
    # purpose "trunk-password"; "" for none), opened only for the reply to Kamailio.
    sa.Column("username", sa.String(100), nullable=False, default=""),
    sa.Column("sealed_password", sa.String(255), nullable=False, default=""),
    # 0: no limit.
    sa.Column("max_channels", sa.Integer, nullable=False, default=0),
    sa.Column("enabled", sa.Boolean, nullable=False, default=True),
    _now_col(),
)

trunk_prefixes = sa.Table(
    "trunk_prefixes",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("trunk_id", sa.Integer, sa.ForeignKey("trunks.id", ondelete="CASCADE"), nullable=False),
    # "" is every number.
    sa.Column("prefix", sa.String(20), nullable=False, default=""),
    sa.UniqueConstraint("trunk_id", "prefix", name="uq_trunk_prefixes_trunk_prefix"),
)

calls = sa.Table(
    "calls",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("account_id", sa.Integer, sa.ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False),
    sa.Column("sip_account_id", sa.Integer, sa.ForeignKey("sip_accounts.id", ondelete="SET NULL")),
    sa.Column("sip_username", sa.String(64), nullable=False),
    sa.Column("caller", sa.String(64), nullable=False, default=""),
    sa.Column("callee", sa.String(64), nullable=False, default=""),
    sa.Column("destination", sa.String(200), nullable=False, default=""),
    # outbound or onnet
    sa.Column("direction", sa.String(8), nullable=False),
    # in_progress, answered, busy, no_answer, failed, cancelled, refused
    sa.Column("status", sa.String(12), nullable=False),
    sa.Column("sip_code", sa.Integer),
    # caller, callee, limit, trunk, system
    sa.Column("hangup", sa.String(8)),
    _now_col("started_at"),
    _now_col("answered_at", nullable=True),
    _now_col("ended_at", nullable=True),
    sa.Column("duration", sa.Integer, nullable=False, default=0),
    sa.Column("billed", sa.Integer, nullable=False, default=0),
    sa.Column("rate", Money, nullable=False, default=Decimal(0)),
    sa.Column("connect_charge", Money, nullable=False, default=Decimal(0)),
    sa.Column("init_block", sa.Integer, nullable=False, default=60),
    sa.Column("billing_block", sa.Integer, nullable=False, default=60),
    sa.Column("price", Money, nullable=False, default=Decimal(0)),
    sa.Column("currency", sa.String(8), nullable=False),
    sa.Column("trunk", sa.String(100)),
    sa.Column("limit_seconds", sa.Integer, nullable=False, default=0),
    sa.Column("hold", Money, nullable=False, default=Decimal(0)),
    # SIP Call-ID of the INVITE: a retransmitted INVITE asks again and gets the same call.
    sa.Column("sip_call_id", sa.String(255), unique=True),
    _now_col("settled_at", nullable=True),
    sa.Index("ix_calls_account", "account_id", "id"),
    sa.Index("ix_calls_status", "status", "started_at"),
)


# --- idempotent sends (migration 0006_idempotency) ---------------------------------

# A send's Idempotency-Key, per account, inserted in the same transaction as the
# messages it sent (uvox.accounts.idempotency): both commit or neither does. A retry
# with the key gets ``reply`` back byte for byte; one with another request (a
# different ``digest``) is refused. Kept 24 hours; the dispatcher's expiry round
# deletes them afterwards.
idempotency_keys = sa.Table(
    "idempotency_keys",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("account_id", sa.Integer, sa.ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False),
    sa.Column("key", sa.String(255), nullable=False),
    # SHA-256 (hex) of the endpoint and the request's variables, credentials and key left out.
    sa.Column("digest", sa.String(64), nullable=False),
    # The first reply: its code and its JSON body, exactly as sent.
    sa.Column("code", sa.String(3), nullable=False),
    sa.Column("reply", sa.Text, nullable=False),
    _now_col(),
    _now_col("expires_at"),
    sa.UniqueConstraint("account_id", "key", name="uq_idempotency_keys_account_key"),
    sa.Index("ix_idempotency_keys_expires_at", "expires_at"),
)


# --- test mode (migration 0009_test_mode) -------------------------------------------

# The timer of a test-mode message: the dispatcher's test-mode round (dispatch/testmode.py)
# announces it as submitted, then at ``due_at`` gives it ``final_state``, each with the
# status callback a live message would fire. A row, not a sleep: a restart loses nothing.
test_deliveries = sa.Table(
    "test_deliveries",
    metadata,
    sa.Column("message_id", sa.Integer, sa.ForeignKey("messages.id", ondelete="CASCADE"), primary_key=True),
    # delivered, undelivered, rejected or expired (sms/testmode.MAGIC_NUMBERS)
    sa.Column("final_state", sa.String(20), nullable=False),
    # The "submitted" callback is queued.
    sa.Column("announced", sa.Boolean, nullable=False, default=False),
    _now_col("due_at"),
    sa.Index("ix_test_deliveries_due", "due_at"),
)


# --- spend caps and low-balance alerts (migration 0007_spend_caps) -----------------

# Limits an account sets on its own spending (billing/caps.py). service: "sms" (SMS
# and one-time codes), "calls", or "all" (both together); period: "day" or "month"
# (UTC); country: ISO 3166 code of the destination, "" for every destination.
spend_caps = sa.Table(
    "spend_caps",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("account_id", sa.Integer, sa.ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False),
    sa.Column("service", sa.String(8), nullable=False),
    sa.Column("period", sa.String(8), nullable=False),
    sa.Column("country", sa.String(2), nullable=False, default=""),
    sa.Column("amount", Money, nullable=False),
    _now_col("updated_at"),
    sa.UniqueConstraint("account_id", "service", "period", "country", name="uq_spend_caps_scope"),
)

# What an account with caps was charged, per UTC day ("D2026-12-05") and month
# ("M2026-12"), per service ("sms" or "calls") and destination country ("" for
# all), kept up to date in the transaction of each charge and refund (billing/caps.py).
spend_counters = sa.Table(
    "spend_counters",
    metadata,
    sa.Column("account_id", sa.Integer, sa.ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("period", sa.String(12), primary_key=True),
    sa.Column("service", sa.String(8), primary_key=True),
    sa.Column("country", sa.String(2), primary_key=True),
    sa.Column("amount", Money, nullable=False),
)

# The low-balance alert of an account (billing/alerts.py): told once when a charge
# takes its available money below ``threshold``; ``alerted_at`` is cleared when the
# money is back at or above it.
balance_alerts = sa.Table(
    "balance_alerts",
    metadata,
    sa.Column("account_id", sa.Integer, sa.ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("threshold", Money, nullable=False),
    _now_col("alerted_at", nullable=True),
    _now_col("updated_at"),
)

# E-mail waiting to be sent (uvox/mail.py): written in the transaction that decides
# to send it, sent by a background task, never inside that transaction.
email_outbox = sa.Table(
    "email_outbox",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("account_id", sa.Integer, sa.ForeignKey("accounts.id", ondelete="CASCADE")),
    sa.Column("recipient", sa.String(254), nullable=False),
    sa.Column("subject", sa.String(500), nullable=False),
    sa.Column("body", sa.Text, nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    _now_col(),
    _now_col("next_attempt_at"),
    _now_col("sent_at", nullable=True),
    # Set when the message will never be sent (no SMTP server configured, or given up).
    _now_col("dropped_at", nullable=True),
    sa.Column("last_error", sa.String(500)),
    sa.Index("ix_email_outbox_pending", "sent_at", "next_attempt_at"),
)
