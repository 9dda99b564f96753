"""The simulator's rule engine on its own: which rule applies and what it answers."""

import pytest
from smpplib import consts

from uvox.smpp.sim_rules import Rule, RuleBook, Verdict


def test_no_rule_accepts_with_a_delivered_receipt():
    assert RuleBook().decide("34600000000") == Verdict("accepted", 0, "DELIVRD")


@pytest.mark.parametrize(
    ("rule", "expected"),
    [
        ({"action": "throttle"}, Verdict("throttled", consts.SMPP_ESME_RTHROTTLED, None)),
        ({"action": "throttle", "status": 0x14}, Verdict("throttled", 0x14, None)),
        ({"action": "reject"}, Verdict("rejected", consts.SMPP_ESME_RINVDSTADR, None)),
        ({"action": "mute"}, Verdict("muted", 0, None)),
        ({"action": "drop"}, Verdict("accepted", 0, None)),
        ({"action": "receipt", "stat": "undeliv"}, Verdict("accepted", 0, "UNDELIV")),
    ],
)
def test_each_action_gives_its_answer(rule, expected):
    book = RuleBook()
    book.set([rule])
    assert book.decide("34600000000") == expected


def test_first_matching_rule_applies_count_times_then_goes():
    book = RuleBook()
    book.set([{"action": "reject", "dest": "^44", "count": 2}, {"action": "throttle", "dest": "^34"}])
    assert book.decide("447700900000").outcome == "rejected"
    assert book.decide("34600000000").outcome == "throttled"
    assert book.decide("447700900000").outcome == "rejected"
    assert book.decide("447700900000").outcome == "accepted"
    assert [r["action"] for r in book.as_dicts()] == ["throttle"]


def test_fraction_zero_never_applies():
    book = RuleBook()
    book.add(Rule("reject", fraction=0.0))
    assert all(book.decide("34600000000").outcome == "accepted" for _ in range(50))


@pytest.mark.parametrize(
    "bad",
    [
        {"action": "explode"},
        {"action": "receipt"},
        {"action": "receipt", "stat": "NOPE"},
        {"action": "reject", "oops": 1},
    ],
)
def test_bad_rules_are_refused_and_keep_the_old_ones(bad):
    book = RuleBook()
    book.set([{"action": "mute"}])
    with pytest.raises((ValueError, TypeError)):
        book.set([bad])
    assert book.as_dicts() == [
        {"action": "mute", "dest": "", "fraction": 1.0, "count": None, "status": None, "stat": None}
    ]
