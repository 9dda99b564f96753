"""Kamailio's voice tables, kept in the platform's PostgreSQL.

``dialog`` and ``dialog_vars`` (dialog module, ``db_mode``) let calls in progress,
their time limits and variables survive a Kamailio restart; ``acc_cdrs`` is where
the acc module writes one call record per dialog. Column names, types and
``version`` rows are those of Kamailio 5.6's ``dialog-create.sql`` and
``acc-create.sql``; ``acc_cdrs`` adds the columns our ``cdr_extra`` fills
(``uvox_call``, ``sip_code``, ``hangup``, ``trunk``, ``callid``) and one Kamailio
never writes: ``settled``, set by the platform when it has rated the record.

A MetaData of their own, like ``uvox.softphone.subscriber``: they exist on
PostgreSQL only (voice needs Kamailio, Kamailio needs PostgreSQL). Here beside
the schema rather than in ``uvox.voice``: migration 0004 creates them, and voice
(settling) and ops (metrics) read them.
"""

from __future__ import annotations

import sqlalchemy as sa

TABLE_VERSIONS = {"dialog": 7, "dialog_vars": 1, "acc_cdrs": 2}

voice_kamailio_metadata = sa.MetaData()

dialog = sa.Table(
    "dialog",
    voice_kamailio_metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("hash_entry", sa.Integer, nullable=False),
    sa.Column("hash_id", sa.Integer, nullable=False),
    sa.Column("callid", sa.String(255), nullable=False),
    sa.Column("from_uri", sa.String(255), nullable=False),
    sa.Column("from_tag", sa.String(128), nullable=False),
    sa.Column("to_uri", sa.String(255), nullable=False),
    sa.Column("to_tag", sa.String(128), nullable=False),
    sa.Column("caller_cseq", sa.String(20), nullable=False),
    sa.Column("callee_cseq", sa.String(20), nullable=False),
    sa.Column("caller_route_set", sa.String(512)),
    sa.Column("callee_route_set", sa.String(512)),
    sa.Column("caller_contact", sa.String(255), nullable=False),
    sa.Column("callee_contact", sa.String(255), nullable=False),
    sa.Column("caller_sock", sa.String(64), nullable=False),
    sa.Column("callee_sock", sa.String(64), nullable=False),
    sa.Column("state", sa.Integer, nullable=False),
    sa.Column("start_time", sa.Integer, nullable=False),
    sa.Column("timeout", sa.Integer, nullable=False, server_default="0"),
    sa.Column("sflags", sa.Integer, nullable=False, server_default="0"),
    sa.Column("iflags", sa.Integer, nullable=False, server_default="0"),
    sa.Column("toroute_name", sa.String(32)),
    sa.Column("req_uri", sa.String(255), nullable=False),
    sa.Column("xdata", sa.String(512)),
    sa.Index("dialog_hash_idx", "hash_entry", "hash_id"),
)

dialog_vars = sa.Table(
    "dialog_vars",
    voice_kamailio_metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("hash_entry", sa.Integer, nullable=False),
    sa.Column("hash_id", sa.Integer, nullable=False),
    sa.Column("dialog_key", sa.String(128), nullable=False),
    sa.Column("dialog_value", sa.String(512), nullable=False),
    sa.Index("dialog_vars_hash_idx", "hash_entry", "hash_id"),
)

acc_cdrs = sa.Table(
    "acc_cdrs",
    voice_kamailio_metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    # Kamailio writes local time without a zone; run it in the database's time zone (UTC).
    sa.Column("start_time", sa.DateTime, nullable=False, server_default="2000-01-01 00:00:00"),
    sa.Column("end_time", sa.DateTime, nullable=False, server_default="2000-01-01 00:00:00"),
    sa.Column("duration", sa.REAL, nullable=False, server_default="0"),
    sa.Column("uvox_call", sa.String(20), nullable=False, server_default=""),
    sa.Column("sip_code", sa.String(3), nullable=False, server_default=""),
    sa.Column("hangup", sa.String(16), nullable=False, server_default=""),
    sa.Column("trunk", sa.String(100), nullable=False, server_default=""),
    sa.Column("callid", sa.String(255), nullable=False, server_default=""),
    sa.Column("settled", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Index("acc_cdrs_start_time_idx", "start_time"),
    sa.Index("acc_cdrs_unsettled_idx", "id", postgresql_where=sa.text("NOT settled")),
)
