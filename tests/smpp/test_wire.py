"""The hand-written codec for the hot PDUs puts smpplib's bytes on the line and reads them back alike."""

import pytest

from uvox.smpp import pdu as P
from uvox.smpp import wire

SEQ = P.SequenceGenerator()


@pytest.mark.parametrize(
    "fields",
    [
        dict(
            service_type="",
            source_addr_ton=5,
            source_addr_npi=0,
            source_addr="UVox",
            dest_addr_ton=1,
            dest_addr_npi=1,
            destination_addr="13125550000",
            esm_class=0,
            data_coding=0,
            short_message=b"Your code is 123456",
            registered_delivery=1,
        ),
        dict(
            service_type="CMT",
            source_addr_ton=1,
            source_addr_npi=1,
            source_addr="34600000000",
            dest_addr_ton=1,
            dest_addr_npi=1,
            destination_addr="447700900000",
            esm_class=0x40,
            data_coding=8,
            short_message=b"\x05\x00\x03\x2a\x02\x01" + "Olá ñ".encode("utf-16-be"),
            registered_delivery=0,
        ),
        # over-long addresses are cut as smpplib cuts them
        dict(
            service_type="",
            source_addr_ton=1,
            source_addr_npi=1,
            source_addr="1" * 30,
            dest_addr_ton=1,
            dest_addr_npi=1,
            destination_addr="2" * 30,
            esm_class=0,
            data_coding=0,
            short_message=b"",
            registered_delivery=1,
        ),
    ],
)
def test_submit_sm_is_smpplibs_submit_sm(fields):
    p = P.make("submit_sm", SEQ, **fields)
    assert wire.encode_submit_sm(p.sequence, fields) == p.generate()


def test_deliver_sm_resp_is_smpplibs():
    for status in (0, 0x64):
        assert (
            wire.encode_deliver_sm_resp(77, status)
            == P.make("deliver_sm_resp", SEQ, sequence=77, status=status).generate()
        )


def test_deliver_sm_reads_as_smpplib_reads_it():
    raw = P.make(
        "deliver_sm",
        SEQ,
        source_addr="13125550000",
        destination_addr="UVox",
        esm_class=0x04,
        receipted_message_id="0A1B",
        message_state=P.MESSAGE_STATES["REJECTD"],
        short_message=b"id:2587 sub:001 dlvrd:000 submit date:2611270501 done date:2611270502 "
        b"stat:DELIVRD err:000 text:",
    ).generate()
    ours, theirs = wire.decode_sm(raw), P.parse(raw, SEQ)
    assert P.parse_receipt(ours) == P.parse_receipt(theirs)
    assert (ours.sequence, ours.short_message) == (theirs.sequence, theirs.short_message)


def test_receipt_in_message_payload():
    raw = P.make(
        "deliver_sm",
        SEQ,
        source_addr="1",
        destination_addr="2",
        esm_class=0x04,
        message_payload=b"id:77 sub:001 dlvrd:000 submit date:2611270501 done date:2611270502 stat:EXPIRED err:000",
    ).generate()
    r = P.parse_receipt(wire.decode_sm(raw))
    assert (r.message_id, r.stat) == ("77", "EXPIRED")


def test_framer_joins_pdus_split_across_reads():
    pdus = [wire.encode_deliver_sm_resp(i) for i in range(3)] + [
        P.make("submit_sm_resp", SEQ, sequence=9, message_id="abc").generate()
    ]
    stream = b"".join(pdus)
    f = wire.Framer()
    got = []
    for i in range(0, len(stream), 7):
        got += f.feed(stream[i : i + 7])
    assert got == pdus
    assert wire.submit_sm_resp_id(got[-1]) == "abc"


def test_framer_refuses_a_broken_length():
    with pytest.raises(ConnectionError):
        wire.Framer().feed(b"\x00\x00\x00\x05" + b"\x00" * 12)


def test_simulators_receipt_is_smpplibs_deliver_sm():
    fields = dict(
        service_type="",
        source_addr_ton=1,
        source_addr_npi=1,
        source_addr="13125550000",
        dest_addr_ton=1,
        dest_addr_npi=1,
        destination_addr="UVox",
        esm_class=0x04,
        data_coding=0,
        short_message=P.receipt_text("ab12", "DELIVRD", "000", "2611270501", "2611270502", "hi"),
    )
    p = P.make("deliver_sm", SEQ, receipted_message_id="ab12", message_state=P.MESSAGE_STATES["DELIVRD"], **fields)
    ours = wire.encode_sm(
        wire.DELIVER_SM,
        p.sequence,
        fields,
        wire.tlv_u8(wire.TLV_MESSAGE_STATE, P.MESSAGE_STATES["DELIVRD"])
        + wire.tlv_cstr(wire.TLV_RECEIPTED_MESSAGE_ID, "ab12"),
    )
    assert ours == p.generate()


def test_submit_sm_resp_is_smpplibs():
    assert (
        wire.encode_resp(wire.SUBMIT_SM_RESP, 5, message_id="f00d")
        == P.make("submit_sm_resp", SEQ, sequence=5, message_id="f00d").generate()
    )
    assert (
        wire.encode_resp(wire.SUBMIT_SM_RESP, 6, 0x58)
        == P.make("submit_sm_resp", SEQ, sequence=6, status=0x58).generate()
    )


def test_submit_sm_reads_as_smpplib_reads_it():
    raw = P.make(
        "submit_sm",
        SEQ,
        source_addr="UVox",
        source_addr_ton=5,
        destination_addr="34600000000",
        esm_class=0x40,
        data_coding=8,
        registered_delivery=1,
        short_message=b"\x05\x00\x03\x01\x02\x01\x00h",
    ).generate()
    ours, theirs = wire.decode_sm(raw), P.parse(raw, SEQ)
    for name in (
        "command",
        "sequence",
        "source_addr",
        "source_addr_ton",
        "destination_addr",
        "esm_class",
        "data_coding",
        "registered_delivery",
        "short_message",
    ):
        assert getattr(ours, name) == getattr(theirs, name), name
