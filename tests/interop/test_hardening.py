"""What real SMSCs do that our own simulator does not, against node-smpp.

HTTP send → the real dispatcher → smpplib → node-smpp, on SQLite and PostgreSQL.
The SMSC is told to spell message ids the way carriers do (hex in submit_sm_resp and
decimal in the receipt, leading zeros, upper case), to carry receipts only in TLVs
or in message_payload, and to send PDUs of its own: enquire_link, unbind,
generic_nack, a mobile-originated deliver_sm, a closed socket.
"""

import pytest
import sqlalchemy as sa

from tests.dispatch.test_delivery import assert_ledger_balances, send, status
from uvox.db import schema as t

pytestmark = pytest.mark.timeout(180)


def wait_state(http, customer, mid, state, poll, smsc, timeout=60):
    got = poll(lambda: (s := status(http, customer, mid)).get("state") == state and s, timeout=timeout)
    assert got, (status(http, customer, mid), smsc.events())
    return got


@pytest.fixture
def bound(node_smsc, node_connector, dispatcher):
    """An SMSC and a dispatcher bound to it (transceiver unless told)."""

    def make(bind_mode="transceiver", **config):
        smsc = node_smsc()
        if config:
            smsc.configure(**config)
        node_connector(smsc, bind_mode=bind_mode)
        d = dispatcher()
        d.wait_bound(["node"], timeout=30)
        return smsc, d

    return make


@pytest.mark.parametrize(
    "resp_id,receipt_id,text_id,mode",
    [
        ("hex", "hex", None, "text+tlv"),  # what SMPP 3.4 says: the same id everywhere
        ("hex", "dec", None, "text"),  # Kannel msg-id-type 1: resp hex, receipt decimal
        ("dec", "hex", None, "text"),  # msg-id-type 2: resp decimal, receipt hex
        ("dec0", "dec", None, "text+tlv"),  # resp zero-padded
        ("dec", "dec0", None, "text"),  # receipt zero-padded
        ("hex", "HEX", None, "text+tlv"),  # hex case differs
        ("hex0", "dec", None, "text"),  # padded hex answered, decimal receipt
        ("HEX", "hex", "dec", "text+tlv"),  # TLV in lower case, text in decimal
    ],
)
def test_receipt_ids_spelled_differently_still_match(http, customer, bound, poll, resp_id, receipt_id, text_id, mode):
    smsc, d = bound(
        resp_id=resp_id, receipt_id=receipt_id, receipt_text_id=text_id, receipt_mode=mode, receipt_stat="DELIVRD"
    )
    sent = [send(http, customer, f"+1305555{n:04d}", f"interop id check {n}") for n in range(4)]
    sent.append(send(http, customer, "+13055559999", "dos partes " * 20))
    assert sent[-1]["segments"] == "2"
    for m in sent:
        s = wait_state(http, customer, m["id"], "delivered", poll, smsc)
        assert s["code"] == "013" and s["statecode"] == "110"
    assert d.d.stats.unmatched_receipts == 0
    # Acknowledged once stored: the SMSC may see the last deliver_sm_resp a moment after the status changed.
    acks = poll(lambda: len(x := smsc.events("deliver_sm_resp")) >= 6 and x, timeout=30)
    assert acks and len(acks) == 6 and all(a["status"] == 0 for a in acks), smsc.events("deliver_sm_resp")


@pytest.mark.parametrize(
    "mode,stat,state,code",
    [
        ("tlv", "UNDELIV", "undelivered", "111"),  # receipted_message_id + message_state, empty text
        ("tlv", "DELIVRD", "delivered", "110"),
        ("payload", "EXPIRED", "expired", "112"),  # the text in message_payload, no TLVs
        ("payload+tlv", "REJECTD", "rejected", "113"),
    ],
)
def test_receipts_in_tlvs_only_or_in_message_payload(http, customer, bound, poll, mode, stat, state, code):
    smsc, _ = bound(receipt_mode=mode, receipt_stat=stat)
    m = send(http, customer, "+13055550101", "where is my receipt")
    s = wait_state(http, customer, m["id"], state, poll, smsc)
    assert s["code"] == "013" and s["statecode"] == code


@pytest.mark.parametrize(
    "mode,stat,state,code",
    [
        ("tlv", "DELIVRD", "delivered", "110"),  # receipted_message_id + message_state only
        ("payload+tlv", "UNDELIV", "undelivered", "111"),
        ("payload", "EXPIRED", "expired", "112"),  # the receipt text in message_payload alone
    ],
)
def test_receipts_sent_as_data_sm(http, customer, bound, poll, mode, stat, state, code):
    smsc, d = bound(receipt_pdu="data_sm", receipt_mode=mode, receipt_stat=stat)
    m = send(http, customer, "+13055550102", "receipt by data_sm")
    s = wait_state(http, customer, m["id"], state, poll, smsc)
    assert s["code"] == "013" and s["statecode"] == code
    acks = poll(lambda: smsc.events("data_sm_resp"), timeout=30)
    assert acks and all(a["status"] == 0 for a in acks), smsc.events()
    assert d.d.stats.unmatched_receipts == 0


@pytest.mark.parametrize("bind_mode", ["transceiver", "transmitter"])
def test_smsc_initiated_enquire_link_mo_and_generic_nack(http, customer, bound, poll, bind_mode):
    smsc, d = bound(bind_mode=bind_mode)
    assert smsc.send("enquire_link") == (1 if bind_mode == "transceiver" else 2)
    answers = poll(
        lambda: len(x := smsc.events("enquire_link_resp")) >= (1 if bind_mode == "transceiver" else 2) and x, timeout=30
    )
    assert answers and all(a["status"] == 0 for a in answers)

    # A mobile-originated SMS (not a receipt) is acknowledged and changes nothing.
    smsc.send("deliver_sm", text="STOP")
    smsc.send("deliver_sm", text="Привет", data_coding=8)
    mo = poll(lambda: len(x := smsc.events("mo_resp")) >= 2 and x, timeout=30)
    assert mo and all(a["status"] == 0 for a in mo)

    # A generic_nack nobody asked for (sequence 0) does not drop the link.
    smsc.send("generic_nack", sequence=0)
    m = send(http, customer, "+13055550101", "after the surprises")
    s = wait_state(http, customer, m["id"], "delivered", poll, smsc)
    assert s["statecode"] == "110"
    assert len(smsc.events("bind")) == (1 if bind_mode == "transceiver" else 2)
    assert d.d.stats.unmatched_receipts == 0


def test_generic_nack_to_a_submit_fails_the_message_and_refunds_it(http, customer, bound, poll, platform):
    smsc, _ = bound(nack_submits=1)
    m = send(http, customer, "+13055550101", "malformed, says the SMSC")
    s = wait_state(http, customer, m["id"], "failed", poll, smsc)
    assert s["code"] == "114" and s["statecode"] == "114"
    with platform.engine.connect() as c:
        error = c.execute(sa.select(t.messages.c.error).where(t.messages.c.id == int(m["id"]))).scalar_one()
    assert "generic_nack" in error, error
    with platform.engine.connect() as c:
        kinds = dict(
            c.execute(sa.select(t.ledger.c.kind, t.ledger.c.amount).where(t.ledger.c.message_id == int(m["id"]))).all()
        )
    assert kinds["charge"] < 0 and kinds["refund"] == -kinds["charge"], kinds
    ok = send(http, customer, "+13055550102", "the next one is fine")
    wait_state(http, customer, ok["id"], "delivered", poll, smsc)
    assert_ledger_balances(platform, customer)


def test_system_error_is_retried_not_failed(http, customer, bound, poll, platform):
    """ESME_RSYSERR is the SMSC's own trouble: try again later (as Kannel does), do not refund and give up."""
    smsc, _ = bound(refuse_submits=2, refuse_status=0x08)
    m = send(http, customer, "+13055550101", "try me again")
    s = wait_state(http, customer, m["id"], "delivered", poll, smsc)
    assert s["statecode"] == "110"
    outcomes = [x["outcome"] for x in smsc.messages("13055550101")]
    assert outcomes == ["refused", "refused", "accepted"]
    assert_ledger_balances(platform, customer)


@pytest.mark.parametrize("bind_mode", ["transceiver", "transmitter"])
def test_smsc_unbind_is_answered_and_the_link_comes_back(http, customer, bound, poll, bind_mode):
    smsc, d = bound(bind_mode=bind_mode)
    binds = len(smsc.events("bind"))
    smsc.send("unbind")
    # We answer unbind_resp on every session the SMSC unbound, then bind again.
    answered = poll(lambda: len(smsc.events("unbind_resp")) >= binds, timeout=30)
    assert answered, smsc.events()
    assert poll(lambda: len(smsc.events("bind")) >= 2 * binds, timeout=60), smsc.events()
    d.wait_bound(["node"], timeout=30)
    m = send(http, customer, "+13055550101", "after the unbind")
    s = wait_state(http, customer, m["id"], "delivered", poll, smsc)
    assert s["statecode"] == "110"


def test_smsc_closing_the_socket_mid_stream_loses_nothing(http, customer, bound, poll, platform):
    smsc, d = bound(close_after_submits=3)
    sent = [send(http, customer, f"+1305555{n:04d}", f"stream {n}") for n in range(8)]
    for m in sent:
        s = wait_state(http, customer, m["id"], "delivered", poll, smsc, timeout=90)
        assert s["statecode"] == "110"
    assert smsc.events("server_closed") and len(smsc.events("bind")) >= 2
    got = {x["destination_addr"] for x in smsc.messages() if x["outcome"] == "accepted"}
    assert got == {f"1305555{n:04d}" for n in range(8)}
    assert_ledger_balances(platform, customer)
