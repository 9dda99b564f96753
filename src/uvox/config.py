"""Every setting of the platform, read once from ``UVOX_*`` environment variables.

Nothing else in the code reads the environment: a component takes a ``Settings``
(or calls :func:`get_settings`), so tests can build their own without touching
process state. The customer's commands (client_cli.py) take a ``ClientSettings``
from :func:`client_settings`; the server's processes may write the environment
of the children they start, never read it elsewhere.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path


def _int(env: dict[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise SystemExit(f"{name} must be a whole number, got {raw!r}") from exc


def _float(env: dict[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        return float(raw)
    except ValueError as exc:
        raise SystemExit(f"{name} must be a number of seconds, got {raw!r}") from exc


def _bool(env: dict[str, str], name: str, default: bool) -> bool:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    return raw.strip().lower() in {"1", "true", "yes", "on"}


def normalise_database_url(url: str) -> str:
    """Accept the URLs people paste (``postgres://``, ``postgresql://``) and use psycopg 3."""
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://") :]
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    return url


@dataclass(frozen=True)
class Settings:
    database_url: str = "sqlite:///uvox.db"
    host: str = "127.0.0.1"
    port: int = 8000
    #: Public base URL, used in the portal's documentation and provisioning links.
    public_url: str = ""
    #: The instance secret: keys one-time code hashes, CSRF tokens and Kamailio's shared
    #: secret, and seals the carrier passwords and one-time code texts (uvox.secretbox).
    #: Empty: the platform generates one and keeps it in the database, shared by every
    #: process. Changing it needs ``uvox db reseal`` (SECURITY.md).
    secret_key: str = ""
    default_currency: str = "US$"
    #: Plan given to accounts that sign up in the portal (by name); empty for none.
    default_plan: str = "default"
    otp_ttl_seconds: int = 600
    otp_max_attempts: int = 5
    #: One-time code sends allowed per phone number within ``otp_send_window_seconds``.
    otp_send_limit: int = 5
    otp_send_window_seconds: int = 600
    otp_digits: int = 6
    #: SMS pumping protection (uvox.otp.guard, docs/otp-protection.md). Code requests
    #: allowed in ``otp_limit_window_seconds`` per account, per number prefix (the
    #: country calling code and the next ``otp_prefix_digits`` digits) and per client
    #: address, each counted per account; 0: no limit. The operator overrides them per
    #: account with ``uvox admin account otp-limits``.
    otp_account_limit: int = 1000
    otp_prefix_limit: int = 100
    otp_address_limit: int = 100
    otp_limit_window_seconds: int = 3600
    otp_prefix_digits: int = 3
    #: The conversion-rate alarm: at ``otp_alarm_min_requests`` codes or more requested
    #: for one prefix within ``otp_alarm_window_seconds`` of which fewer than
    #: ``otp_alarm_min_verified_percent`` % were verified, the prefix is paused for
    #: the account for ``otp_alarm_pause_seconds`` (or until lifted). 0 requests: off.
    otp_alarm_min_requests: int = 20
    otp_alarm_min_verified_percent: int = 20
    otp_alarm_window_seconds: int = 3600
    otp_alarm_pause_seconds: int = 3600
    max_recipients: int = 200
    max_api_keys: int = 3
    #: How long a message may wait for balance or a route before it expires.
    message_validity_seconds: int = 72 * 3600
    #: Start the dispatcher inside ``uvox serve``.
    dispatcher: bool = True
    #: Start the built-in SMSC simulator as the default route when no connector exists.
    smsc_sim: bool = True
    smsc_sim_host: str = "127.0.0.1"
    smsc_sim_port: int = 2775
    smsc_sim_receipt_delay: float = 1.0
    #: Number used as sender where a route refuses alphanumeric senders.
    generic_sender: str = "10000"
    #: HTTP control port of the built-in simulator (0: none).
    smsc_sim_control_port: int = 0
    sip_domain: str = "sip.uvox.local"
    #: Where softphones find Kamailio when the SIP domain has no DNS ("host:port").
    sip_proxy: str = ""
    db_pool_size: int = 10
    zoiper_provider_id: str = ""
    log_level: str = "INFO"
    #: ``text`` (default) or ``json``: one JSON object a line, with the request id.
    log_format: str = "text"
    #: HTTP processes of ``uvox serve``; 0 (the default): one per core this process may use.
    workers: int = 0
    secure_cookies: bool = False
    #: Longest call, whatever the balance (VOICE.md).
    voice_max_call_seconds: int = 10800
    #: A hold whose call never reported is released this long after its limit (and ringing) ran out.
    voice_hold_grace_seconds: int = 300
    #: When set, /metrics answers only requests with ``Authorization: Bearer <token>``.
    metrics_token: str = ""
    #: Test mode (sms/testmode.py): seconds from a test key's send to its final state.
    test_mode_delay_seconds: float = 2.0
    #: Where the HTTP processes of ``--workers N`` keep their metrics for /metrics to
    #: add up (prometheus-client's multiprocess mode); a temporary directory if unset.
    metrics_dir: str = ""
    #: SMTP server for e-mail (low-balance alerts); empty: no e-mail is sent.
    smtp_host: str = ""
    #: 25 by default; 587 is usual with STARTTLS, 465 means implicit TLS.
    smtp_port: int = 25
    smtp_user: str = ""
    smtp_password: str = field(default="", repr=False)  # never in a log line
    smtp_from: str = "uvox@localhost"
    #: Upgrade the connection with STARTTLS before logging in and sending.
    smtp_starttls: bool = False

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Settings:
        e = dict(os.environ if env is None else env)
        d = cls()
        return cls(
            database_url=normalise_database_url(e.get("UVOX_DATABASE_URL") or d.database_url),
            host=e.get("UVOX_HOST", d.host),
            port=_int(e, "UVOX_PORT", d.port),
            public_url=e.get("UVOX_PUBLIC_URL", d.public_url).rstrip("/"),
            secret_key=e.get("UVOX_SECRET_KEY", d.secret_key),
            default_currency=e.get("UVOX_DEFAULT_CURRENCY", d.default_currency),
            default_plan=e.get("UVOX_DEFAULT_PLAN", d.default_plan),
            otp_ttl_seconds=_int(e, "UVOX_OTP_TTL_SECONDS", d.otp_ttl_seconds),
            otp_max_attempts=_int(e, "UVOX_OTP_MAX_ATTEMPTS", d.otp_max_attempts),
            otp_send_limit=_int(e, "UVOX_OTP_SEND_LIMIT", d.otp_send_limit),
            otp_send_window_seconds=_int(e, "UVOX_OTP_SEND_WINDOW_SECONDS", d.otp_send_window_seconds),
            otp_account_limit=_int(e, "UVOX_OTP_ACCOUNT_LIMIT", d.otp_account_limit),
            otp_prefix_limit=_int(e, "UVOX_OTP_PREFIX_LIMIT", d.otp_prefix_limit),
            otp_address_limit=_int(e, "UVOX_OTP_ADDRESS_LIMIT", d.otp_address_limit),
            otp_limit_window_seconds=_int(e, "UVOX_OTP_LIMIT_WINDOW_SECONDS", d.otp_limit_window_seconds),
            otp_prefix_digits=_int(e, "UVOX_OTP_PREFIX_DIGITS", d.otp_prefix_digits),
            otp_alarm_min_requests=_int(e, "UVOX_OTP_ALARM_MIN_REQUESTS", d.otp_alarm_min_requests),
            otp_alarm_min_verified_percent=_int(
                e, "UVOX_OTP_ALARM_MIN_VERIFIED_PERCENT", d.otp_alarm_min_verified_percent
            ),
            otp_alarm_window_seconds=_int(e, "UVOX_OTP_ALARM_WINDOW_SECONDS", d.otp_alarm_window_seconds),
            otp_alarm_pause_seconds=_int(e, "UVOX_OTP_ALARM_PAUSE_SECONDS", d.otp_alarm_pause_seconds),
            max_recipients=_int(e, "UVOX_MAX_RECIPIENTS", d.max_recipients),
            message_validity_seconds=_int(e, "UVOX_MESSAGE_VALIDITY_SECONDS", d.message_validity_seconds),
            dispatcher=_bool(e, "UVOX_DISPATCHER", d.dispatcher),
            smsc_sim=_bool(e, "UVOX_SMSC_SIM", d.smsc_sim),
            smsc_sim_host=e.get("UVOX_SMSC_SIM_HOST", d.smsc_sim_host),
            smsc_sim_port=_int(e, "UVOX_SMSC_SIM_PORT", d.smsc_sim_port),
            smsc_sim_receipt_delay=float(e.get("UVOX_SMSC_SIM_RECEIPT_DELAY") or d.smsc_sim_receipt_delay),
            generic_sender=e.get("UVOX_GENERIC_SENDER", d.generic_sender),
            smsc_sim_control_port=_int(e, "UVOX_SMSC_SIM_CONTROL_PORT", d.smsc_sim_control_port),
            sip_domain=e.get("UVOX_SIP_DOMAIN", d.sip_domain),
            sip_proxy=e.get("UVOX_SIP_PROXY", d.sip_proxy).strip(),
            db_pool_size=_int(e, "UVOX_DB_POOL_SIZE", d.db_pool_size),
            zoiper_provider_id=e.get("UVOX_ZOIPER_PROVIDER_ID", d.zoiper_provider_id),
            log_level=e.get("UVOX_LOG_LEVEL", d.log_level).upper(),
            log_format=(e.get("UVOX_LOG_FORMAT") or d.log_format).strip().lower(),
            workers=_int(e, "UVOX_WORKERS", d.workers),
            secure_cookies=_bool(e, "UVOX_SECURE_COOKIES", d.secure_cookies),
            voice_max_call_seconds=_int(e, "UVOX_VOICE_MAX_CALL_SECONDS", d.voice_max_call_seconds),
            voice_hold_grace_seconds=_int(e, "UVOX_VOICE_HOLD_GRACE_SECONDS", d.voice_hold_grace_seconds),
            metrics_token=e.get("UVOX_METRICS_TOKEN", d.metrics_token).strip(),
            metrics_dir=e.get("PROMETHEUS_MULTIPROC_DIR", d.metrics_dir).strip(),
            test_mode_delay_seconds=_float(e, "UVOX_TEST_MODE_DELAY_SECONDS", d.test_mode_delay_seconds),
            smtp_host=e.get("UVOX_SMTP_HOST", d.smtp_host).strip(),
            smtp_port=_int(e, "UVOX_SMTP_PORT", d.smtp_port),
            smtp_user=e.get("UVOX_SMTP_USER", d.smtp_user).strip(),
            smtp_password=e.get("UVOX_SMTP_PASSWORD", d.smtp_password),
            smtp_from=(e.get("UVOX_SMTP_FROM") or d.smtp_from).strip(),
            smtp_starttls=_bool(e, "UVOX_SMTP_STARTTLS", d.smtp_starttls),
        )

    def with_(self, **changes) -> Settings:
        return replace(self, **changes)

    @property
    def is_postgres(self) -> bool:
        return self.database_url.startswith("postgresql")


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings.from_env()


def metrics_dir() -> str:
    """``PROMETHEUS_MULTIPROC_DIR`` as it is now (``uvox serve`` sets it for the HTTP
    processes it starts after this process's settings were read)."""
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR", "")


@dataclass(frozen=True)
class ClientSettings:
    """What the customer's ``uvox`` commands (client_cli.py) take from the
    environment; an empty string is a variable unset (or set empty)."""

    #: UVOX_CONFIG: the client's TOML file, instead of the default one.
    config_file: str = ""
    #: XDG_CONFIG_HOME: where the default file is (``~/.config`` if unset).
    config_home: str = ""
    #: UVOX_API_KEY, UVOX_ACCOUNT, UVOX_URL: win over the file's values.
    api_key: str = field(default="", repr=False)  # never in a log line
    account: str = ""
    url: str = ""

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> ClientSettings:
        e = dict(os.environ if env is None else env)
        return cls(
            config_file=e.get("UVOX_CONFIG", ""),
            config_home=e.get("XDG_CONFIG_HOME", ""),
            api_key=e.get("UVOX_API_KEY", ""),
            account=e.get("UVOX_ACCOUNT", ""),
            url=e.get("UVOX_URL", ""),
        )

    @property
    def config_path(self) -> Path:
        """UVOX_CONFIG, else ``$XDG_CONFIG_HOME/uvox/client.toml`` (``~/.config`` by default)."""
        if self.config_file:
            return Path(self.config_file).expanduser()
        base = self.config_home or str(Path.home() / ".config")
        return Path(base) / "uvox" / "client.toml"


def client_settings() -> ClientSettings:
    """Read at each call, not cached: a command runs once per process, and tests
    change the environment between calls."""
    return ClientSettings.from_env()
