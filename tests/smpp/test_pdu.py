"""Delivery receipt parsing: what real SMSCs send varies; the TLVs win over the text."""

from uvox.smpp import pdu as P

SEQ = P.SequenceGenerator()


def deliver(**fields):
    fields.setdefault("source_addr", "13125550000")
    fields.setdefault("destination_addr", "UVox")
    raw = P.make("deliver_sm", SEQ, **fields).generate()
    return P.parse(raw, SEQ)  # through the wire format, as the connector sees it


def test_text_only_receipt():
    r = P.parse_receipt(
        deliver(
            esm_class=0x04,
            short_message=b"id:A1B2 sub:001 dlvrd:000 submit date:2611270501 "
            b"done date:2611270502 stat:UNDELIV err:012 text:hi",
        )
    )
    assert (r.message_id, r.stat, r.err, r.submit_date) == ("A1B2", "UNDELIV", "012", "2611270501")
    assert r.source_addr == "13125550000"


def test_tlvs_win_over_the_text():
    # Some SMSCs print the id in decimal in the text and in hex in the TLV.
    r = P.parse_receipt(
        deliver(
            esm_class=0x04,
            receipted_message_id="0A1B",
            message_state=P.MESSAGE_STATES["REJECTD"],
            short_message=b"id:2587 sub:001 dlvrd:000 submit date:2611270501 "
            b"done date:2611270502 stat:DELIVRD err:000 text:",
        )
    )
    assert (r.message_id, r.stat) == ("0A1B", "REJECTD")


def test_mobile_originated_message_is_not_a_receipt():
    assert P.parse_receipt(deliver(esm_class=0x00, short_message=b"STOP")) is None


def test_receipt_text_round_trip():
    body = P.receipt_text("ff00", "EXPIRED", "001", "2611270501", "2611270601", "a long original text here")
    r = P.parse_receipt(deliver(esm_class=0x04, short_message=body))
    assert (r.message_id, r.stat, r.err, r.done_date) == ("ff00", "EXPIRED", "001", "2611270601")
    assert body.endswith(b"text:a long original text")  # 20 characters, as in SMPP 3.4 appendix B


def test_receipt_carried_by_tlvs_alone():
    r = P.parse_receipt(
        deliver(
            esm_class=0x04, receipted_message_id="3A0F10", message_state=P.MESSAGE_STATES["UNDELIV"], short_message=b""
        )
    )
    assert (r.message_id, r.stat, r.text_id) == ("3A0F10", "UNDELIV", "")


def test_receipt_text_in_message_payload():
    r = P.parse_receipt(
        deliver(
            esm_class=0x04,
            message_payload=b"id:77 sub:001 dlvrd:000 submit date:2611270501 done date:2611270502 stat:EXPIRED err:000",
        )
    )
    assert (r.message_id, r.stat) == ("77", "EXPIRED")


def test_receipt_text_with_fields_missing_or_reordered():
    r = P.parse_receipt(deliver(esm_class=0x04, short_message=b"ID:0042 STAT:delivrd ERR:0 done date:2611270502"))
    assert (r.message_id, r.stat, r.err, r.done_date) == ("0042", "DELIVRD", "0", "2611270502")


def test_text_id_kept_when_the_tlv_says_otherwise():
    r = P.parse_receipt(
        deliver(
            esm_class=0x04,
            receipted_message_id="3a0f10",
            message_state=P.MESSAGE_STATES["UNDELIV"],
            short_message=b"id:3804944 sub:001 dlvrd:000 submit date: done date: stat:UNDELIV err:1",
        )
    )
    assert (r.message_id, r.text_id) == ("3a0f10", "3804944")


def test_a_person_typing_id_and_stat_is_not_a_receipt():
    assert P.parse_receipt(deliver(esm_class=0x00, short_message=b"my id:5 stat:ok")) is None
