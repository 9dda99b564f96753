"""One table of message states and their codes (sms/states.py), agreed on by every layer."""

from uvox.api.v1.codes import CODES
from uvox.portal import history
from uvox.sms import states
from uvox.sms.states import MessageState as S


def test_every_code_of_a_state_is_the_api_code_with_the_same_text():
    for state, w in states.WORDING.items():
        assert CODES[w.status].message == w.text, state
        if w.final:
            assert CODES[w.final].message == w.final_text, state
    assert set(states.WORDING) == set(S)


def test_the_portal_filters_cover_every_state_once_with_the_same_words():
    covered = [s for _, group in history.STATE_GROUPS.values() for s in group]
    assert sorted(covered) == sorted(S)
    for label, group in history.STATE_GROUPS.values():
        for s in group:
            w = states.WORDING[s]
            assert label == (w.final_text or w.text), s


def test_status_codes_as_the_manual_and_api_md_give_them():
    assert states.status_code("waiting_balance", submitted=False) == "012"
    assert states.status_code("queued", submitted=False) == "011"
    assert states.status_code("submitting", submitted=False) == "011"
    assert states.status_code("submitted", submitted=True) == "013"
    assert states.status_code("delivered", submitted=True) == "013"
    # Never left: answered with its own code, not "SMS Sent".
    assert states.status_code("failed", submitted=False) == "114"
    assert states.status_code("expired", submitted=False) == "112"
    assert states.status_code("expired", submitted=True) == "013"


def test_callbacks_say_sent_then_the_final_code():
    assert states.callback_wording("submitted") == ("013", "SMS Sent")
    assert states.callback_wording("undelivered") == ("111", "Undelivered")
    assert states.FINAL == {S.DELIVERED, S.UNDELIVERED, S.EXPIRED, S.REJECTED, S.FAILED}
