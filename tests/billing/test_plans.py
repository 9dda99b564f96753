"""Rate decks: import, validation, longest-prefix lookup."""

from __future__ import annotations

from decimal import Decimal

import pytest

from uvox.billing import plans


def test_longest_prefix(platform):
    plans.create_plan(platform.engine, "p", "US$")
    plans.import_rates(
        platform.engine,
        "p",
        "dialprefix,destination,rateinitial,smsrate\n58,VE,0.02,0.05\n"
        "5841,VE Mobile,0.04,0.06\n58412,VE Digitel,0.11,0.07\n",
    )
    pid = plans.get_plan(platform.engine, "p").id
    with platform.engine.connect() as c:
        assert plans.lookup(c, pid, "+584121234567").destination == "VE Digitel"
        assert plans.lookup(c, pid, "+584141234567").destination == "VE Mobile"
        assert plans.lookup(c, pid, "+582121234567").sms_rate == Decimal("0.05")
        assert plans.lookup(c, pid, "+13051234567") is None


@pytest.mark.parametrize(
    "deck,error",
    [
        ("", "empty"),
        ("prefix,dest\n1,x\n", "missing column"),
        ("dialprefix,destination,rateinitial,smsrate\n1,USA,abc,0.1\n", "line 2"),
        ("dialprefix,destination,rateinitial,smsrate\n1,USA,0.1,0.1\n1,USA,0.1,0.1\n", "twice"),
        ("dialprefix,destination,rateinitial,smsrate\n1x,USA,0.1,0.1\n", "digits"),
        ("dialprefix,destination,rateinitial,smsrate\n1,USA,-0.1,0.1\n", "negative"),
    ],
)
def test_bad_decks_are_refused_whole(platform, deck, error):
    plans.create_plan(platform.engine, "p", "US$")
    plans.import_rates(platform.engine, "p", "dialprefix,destination,rateinitial,smsrate\n1,USA,0.1,0.1\n")
    with pytest.raises(plans.RateDeckError, match=error):
        plans.import_rates(platform.engine, "p", deck)
    pid = plans.get_plan(platform.engine, "p").id
    assert [r.prefix for r in plans.iter_rates(platform.engine, pid)] == ["1"]  # the old deck is intact


def test_extra_columns_ignored_and_reimport_replaces(platform):
    plans.create_plan(platform.engine, "p", "US$")
    plans.import_rates(platform.engine, "p", "destination,dialprefix,foo,rateinitial,smsrate\nChile,56,x,0.0285,0.03\n")
    plans.import_rates(platform.engine, "p", "dialprefix,destination,rateinitial,smsrate\n51,Peru,0.0075,0.02\n")
    pid = plans.get_plan(platform.engine, "p").id
    assert [(r.prefix, r.destination) for r in plans.iter_rates(platform.engine, pid)] == [("51", "Peru")]
