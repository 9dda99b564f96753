"""Carrier trunks (VOICE.md "Carrier trunks"): which trunks a call goes to, in which
order, what number each is sent, and the settings an operator cannot get wrong.

Every test runs on SQLite and on PostgreSQL (the ``platform`` fixture).
"""

from __future__ import annotations

import pytest

from uvox.db.session import read
from uvox.errors import Conflict, NotFound
from uvox.voice import trunks
from uvox.voice.trunks import InvalidTrunk


def order(platform, number: str) -> list[str]:
    with read(platform.engine) as conn:
        return [tr.name for tr in trunks.candidates(conn, number)]


def test_longest_prefix_first_then_priority_then_name(platform):
    e = platform.engine
    trunks.add_trunk(e, "world", "world.example.com")  # every number, priority 10
    trunks.add_trunk(e, "spain-b", "b.example.com", prefixes=["34"], priority=10)
    trunks.add_trunk(e, "spain-a", "a.example.com", prefixes=["34"], priority=10)
    trunks.add_trunk(e, "spain-cheap", "c.example.com", prefixes=["34"], priority=5)
    trunks.add_trunk(e, "spain-mobile", "m.example.com", prefixes=["346", "347"], priority=50)

    # 346...: the mobile trunk's longer prefix wins over a better priority.
    assert order(platform, "34612345678") == ["spain-mobile", "spain-cheap", "spain-a", "spain-b", "world"]
    # 5 before 10 (a number, not text); equal priority: by name.
    assert order(platform, "34912345678") == ["spain-cheap", "spain-a", "spain-b", "world"]
    # The number may come with its +.
    assert order(platform, "+34712345678")[0] == "spain-mobile"
    # No prefix matches: only the trunk without prefixes.
    assert order(platform, "12125551234") == ["world"]


def test_a_trunk_is_tried_once_at_its_longest_prefix(platform):
    e = platform.engine
    trunks.add_trunk(e, "multi", "multi.example.com", prefixes=["3", "34", "3491"], priority=90)
    trunks.add_trunk(e, "spain", "spain.example.com", prefixes=["34"], priority=1)
    # multi's best prefix for 3491... is 3491 (4 digits): before spain's 34, once.
    assert order(platform, "34911234567") == ["multi", "spain"]
    # For 3461... multi matches at 34, like spain: priority decides.
    assert order(platform, "34611234567") == ["spain", "multi"]
    assert order(platform, "33123456789") == ["multi"]


def test_no_trunk_serves_the_number(platform):
    trunks.add_trunk(platform.engine, "spain", "spain.example.com", prefixes=["34"])
    assert order(platform, "4420790000") == []
    assert order(platform, "3") == []  # shorter than the prefix


def test_disabled_trunks_get_no_calls_until_enabled(platform):
    e = platform.engine
    trunks.add_trunk(e, "main", "main.example.com", prefixes=["34"], priority=1)
    trunks.add_trunk(e, "backup", "backup.example.com", priority=99)
    trunks.set_enabled(e, "main", False)
    assert order(platform, "34911234567") == ["backup"]
    trunks.set_enabled(e, "backup", False)
    assert order(platform, "34911234567") == []
    trunks.set_enabled(e, "main", True)
    assert order(platform, "34911234567") == ["main"]
    listed = {tr.name: tr.enabled for tr in trunks.list_trunks(e)}
    assert listed == {"backup": False, "main": True}


def test_candidates_carry_everything_kamailio_needs(platform):
    tr = trunks.add_trunk(
        platform.engine,
        "carrier",
        "SIP.Carrier.example",
        port=5080,
        transport="TCP",
        prefixes=["+58"],
        priority=3,
        strip=2,
        add_prefix="0011",
        username="acme",
        password="s3cr:t!",
        max_channels=30,
        secret=platform.secret,
    )
    with read(platform.engine) as conn:
        [got] = trunks.candidates(conn, "584121234567")
    assert got == tr
    assert (got.host, got.port, got.transport, got.prefixes) == ("sip.carrier.example", 5080, "tcp", ("58",))
    assert (got.priority, got.strip, got.add_prefix, got.max_channels) == (3, 2, "0011", 30)
    assert (got.username, got.password(platform.secret), got.auth, got.enabled) == ("acme", "s3cr:t!", True, True)
    assert "s3cr:t!" not in repr(got)  # a logged trunk never shows its password


def test_request_user_strips_then_adds_prefix(platform):
    e = platform.engine
    plain = trunks.add_trunk(e, "plain", "a.example.com")
    assert plain.request_user("+34911234567") == "34911234567"
    assert plain.request_user("34911234567") == "34911234567"
    national = trunks.add_trunk(e, "national", "b.example.com", strip=2, add_prefix="0")
    assert national.request_user("+34911234567") == "0911234567"
    tech = trunks.add_trunk(e, "tech", "c.example.com", add_prefix="4455")
    assert tech.request_user("+584121234567") == "4455584121234567"
    # What call setup reads back from the database behaves the same.
    with read(e) as conn:
        by_name = {tr.name: tr for tr in trunks.candidates(conn, "34911234567")}
    assert by_name["national"].request_user("34911234567") == "0911234567"


def test_defaults(platform):
    tr = trunks.add_trunk(platform.engine, "d", "192.0.2.10")
    assert (tr.port, tr.transport, tr.prefixes, tr.priority, tr.strip, tr.add_prefix) == (5060, "udp", (), 10, 0, "")
    assert (tr.username, tr.password(platform.secret), tr.auth, tr.max_channels, tr.enabled) == ("", "", False, 0, True)
    assert trunks.list_trunks(platform.engine) == [tr]


def test_hosts_accepted_and_normalised(platform):
    e = platform.engine
    assert trunks.add_trunk(e, "v4", "192.0.2.1").host == "192.0.2.1"
    v6 = trunks.add_trunk(e, "v6", "2001:DB8:0:0::1")
    assert v6.host == "2001:db8::1" and v6.uri_host == "[2001:db8::1]"
    assert trunks.add_trunk(e, "v6b", "[2001:db8::2]").host == "2001:db8::2"
    assert trunks.add_trunk(e, "fqdn", "Gw-1.Carrier.example.").host == "gw-1.carrier.example"
    assert trunks.add_trunk(e, "short", "localhost").uri_host == "localhost"


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"name": ""}, "trunk name"),
        ({"name": "a" * 101}, "1 to 100"),
        ({"name": "my trunk"}, "trunk name"),
        ({"name": "bad;name"}, "trunk name"),
        ({"name": "ñandú"}, "trunk name"),
        ({"host": ""}, "host"),
        ({"host": "sip.example.com:5060"}, "host"),
        ({"host": "sip://sip.example.com"}, "host"),
        ({"host": "-bad.example.com"}, "host"),
        ({"host": "a..b"}, "host"),
        ({"host": "10.0.0.256"}, "host"),
        ({"host": "a" * 64 + ".com"}, "host"),
        ({"host": "fe80::1%eth0"}, "host"),
        ({"host": "sip.example.com;x=1"}, "host"),
        ({"port": 0}, "port"),
        ({"port": 65536}, "port"),
        ({"port": "5060"}, "port"),
        ({"transport": "tls"}, "udp or tcp"),
        ({"transport": "sctp"}, "udp or tcp"),
        ({"prefixes": ["34a"]}, "prefix '34a' must be"),
        ({"prefixes": ["3 4"]}, "must be"),
        ({"prefixes": [""]}, "without --prefix"),
        ({"prefixes": ["+"]}, "must be"),
        ({"prefixes": ["00" + "1" * 20]}, "1 to 20 digits"),
        ({"prefixes": ["٣٤"]}, "must be"),  # Arabic-Indic digits are not ASCII digits
        ({"priority": -1}, "priority"),
        ({"strip": -1}, "strip"),
        ({"strip": 16}, "strip"),
        ({"add_prefix": "+00"}, "add-prefix"),
        ({"add_prefix": "12#"}, "add-prefix"),
        ({"username": "u", "password": ""}, "both username and password"),
        ({"username": "", "password": "p"}, "both username and password"),
        ({"username": "with space", "password": "p"}, "username must be"),
        ({"username": "u;x", "password": "p"}, "username must be"),
        ({"username": "u", "password": "p=1"}, "password must be"),
        ({"username": "u", "password": "a,b"}, "password must be"),
        ({"username": "u", "password": 'a"b'}, "password must be"),
        ({"username": "u", "password": "a\\b"}, "password must be"),
        ({"username": "u", "password": "tab\there"}, "password must be"),
        ({"username": "u", "password": "contraseña"}, "password must be"),
        ({"username": "u", "password": "p" * 101}, "password must be"),
        ({"max_channels": -1}, "max-channels"),
    ],
)
def test_every_setting_is_validated(platform, kwargs, message):
    args = {"name": "t", "host": "sip.example.com", **kwargs}
    with pytest.raises(InvalidTrunk) as exc:
        trunks.add_trunk(platform.engine, **args)
    assert message in str(exc.value)
    assert isinstance(exc.value, ValueError)
    assert trunks.list_trunks(platform.engine) == []  # nothing half-stored


def test_credentials_may_use_the_rest_of_printable_ascii(platform):
    pw = "!#$%&'()*+-./:<>?@[]^_`{|}~Az09"
    tr = trunks.add_trunk(
        platform.engine, "t", "sip.example.com", username="acct@carrier", password=pw, secret=platform.secret
    )
    assert trunks.list_trunks(platform.engine)[0].password(platform.secret) == pw == tr.password(platform.secret)


def test_duplicate_name_is_a_conflict(platform):
    e = platform.engine
    trunks.add_trunk(e, "carrier", "a.example.com", prefixes=["34"])
    with pytest.raises(Conflict, match="a trunk named 'carrier' exists"):
        trunks.add_trunk(e, "carrier", "b.example.com")
    [only] = trunks.list_trunks(e)
    assert (only.host, only.prefixes) == ("a.example.com", ("34",))


def test_duplicate_prefixes_are_one(platform):
    tr = trunks.add_trunk(platform.engine, "t", "a.example.com", prefixes=["34", "+34", "351"])
    assert tr.prefixes == ("34", "351")
    assert trunks.list_trunks(platform.engine)[0].prefixes == ("34", "351")


def test_remove_takes_the_trunk_and_its_prefixes(platform):
    e = platform.engine
    trunks.add_trunk(e, "gone", "a.example.com", prefixes=["34", "351"])
    trunks.add_trunk(e, "kept", "b.example.com", prefixes=["34"])
    trunks.remove_trunk(e, "gone")
    assert [tr.name for tr in trunks.list_trunks(e)] == ["kept"]
    assert order(platform, "34911234567") == ["kept"]
    assert order(platform, "351211234567") == []
    # The name can be used again.
    assert trunks.add_trunk(e, "gone", "c.example.com").prefixes == ()


def test_unknown_names_are_not_found(platform):
    with pytest.raises(NotFound, match="no trunk 'nope'"):
        trunks.set_enabled(platform.engine, "nope", True)
    with pytest.raises(NotFound, match="no trunk 'nope'"):
        trunks.remove_trunk(platform.engine, "nope")
    with pytest.raises(NotFound, match="no trunk 'nope'"):
        trunks.get_trunk(platform.engine, "nope")


def test_public_view_never_has_the_password(platform):
    tr = trunks.add_trunk(
        platform.engine, "t", "a.example.com", username="acme", password="hunter2", secret=platform.secret
    )
    pub = tr.public()
    assert "password" not in pub and "hunter2" not in str(pub)
    assert pub["username"] == "acme" and pub["auth"] is True
