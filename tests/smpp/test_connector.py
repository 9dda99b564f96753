"""The smpplib-based connector against the SMSC simulator over real TCP sockets."""

import time

import pytest

from uvox.smpp.connector import NotConnected, PermanentSubmitError, TransientSubmitError
from uvox.sms.encoding import encode


def send_text(conn, text, dest="+15551230001", src="UVOX"):
    enc = encode(text)
    futs = [
        conn.submit(
            source_addr=src,
            destination_addr=dest,
            short_message=part,
            data_coding=enc.data_coding,
            esm_class=enc.esm_class,
        )
        for part in enc.parts
    ]
    return enc, [f.result(10) for f in futs]


def records(smsc, **kw):
    return smsc.call(lambda: smsc.sim.messages(**kw))


def test_gsm_message_bytes_and_delivery_receipt(smsc, connect, ReceiptSink, wait_until):
    sink = ReceiptSink()
    conn = connect(sink)
    assert conn.wait_bound(5)
    _, ids = send_text(conn, "Hola {Ana} 5€ @home")
    [rec] = records(smsc)
    assert rec["data_coding"] == 0 and rec["esm_class"] == 0 and rec["udh"] == ""
    assert rec["text"] == "Hola {Ana} 5€ @home"
    # Extension characters travel as ESC + code: { is 1B28, € is 1B65; @ is 0x00.
    raw = bytes.fromhex(rec["short_message"])
    assert b"\x1b\x28" in raw and b"\x1b\x65" in raw and b"\x00home" in raw
    assert rec["destination_addr"] == "15551230001" and rec["source_addr"] == "UVOX"
    assert rec["source_addr_ton"] == 5  # alphanumeric sender
    assert rec["registered_delivery"] == 1
    assert ids == [rec["message_id"]]
    [receipt] = sink.wait(1)
    assert receipt.message_id == ids[0] and receipt.stat == "DELIVRD"
    assert receipt.source_addr == "15551230001"
    assert wait_until(lambda: smsc.call(smsc.sim.stats)["receipts_acked"] == 1)


def test_ucs2_message(smsc, connect, ReceiptSink, wait_until):
    conn = connect(ReceiptSink())
    assert conn.wait_bound(5)
    send_text(conn, "Привет, мир! 你好 😀", src="+13055550000")
    [rec] = records(smsc)
    assert rec["data_coding"] == 8
    assert bytes.fromhex(rec["short_message"]) == "Привет, мир! 你好 😀".encode("utf-16-be")
    assert rec["text"] == "Привет, мир! 你好 😀"
    assert rec["source_addr"] == "13055550000" and rec["source_addr_ton"] == 1


def test_three_part_message_carries_concatenation_udh(smsc, connect, ReceiptSink, wait_until):
    sink = ReceiptSink()
    conn = connect(sink)
    assert conn.wait_bound(5)
    text = ("Part of a long message. " * 17)[:400]
    enc, ids = send_text(conn, text)
    assert enc.segments == 3 and len(set(ids)) == 3
    recs = records(smsc)
    assert len(recs) == 3
    ref = recs[0]["udh"][6:8]
    for i, rec in enumerate(recs, start=1):
        assert rec["esm_class"] == 0x40 and rec["data_coding"] == 0
        assert rec["udh"] == f"050003{ref}03{i:02x}"
    assert "".join(r["text"] for r in recs) == text
    assert [len(r["text"]) for r in recs] == [153, 153, 94]
    got = sink.wait(3)
    assert sorted(r.message_id for r in got) == sorted(ids)


def test_throttled_submits_are_retried_after_a_pause(smsc, connect, ReceiptSink, wait_until):
    smsc.sim.set_rules([{"action": "throttle", "count": 3}, {"action": "throttle", "count": 2, "status": 0x14}])
    conn = connect(ReceiptSink(), throttle_backoff_max=0.4)
    assert conn.wait_bound(5)
    _, ids = send_text(conn, "after the storm")
    recs = records(smsc)
    assert [r["outcome"] for r in recs] == ["throttled"] * 5 + ["accepted"]
    assert [r["status"] for r in recs[:5]] == [0x58, 0x58, 0x58, 0x14, 0x14]
    assert ids == [recs[-1]["message_id"]]
    assert conn.stats.throttled == 5
    # It slowed down: the retries were spaced by a growing pause, not hammered.
    assert recs[-1]["time"] - recs[0]["time"] >= 0.1 + 0.2 + 0.4


def test_permanent_error_fails_only_that_message(smsc, connect, ReceiptSink, wait_until):
    smsc.sim.set_rules([{"action": "reject", "dest": "^1999"}])
    conn = connect(ReceiptSink())
    assert conn.wait_bound(5)
    bad = conn.submit(source_addr="UVOX", destination_addr="+19995550000", short_message=b"x")
    good = conn.submit(source_addr="UVOX", destination_addr="+15550000000", short_message=b"y")
    with pytest.raises(PermanentSubmitError) as e:
        bad.result(5)
    assert e.value.status == 0x0B
    assert good.result(5)


def test_undelivered_receipt_and_dropped_receipt(smsc, connect, ReceiptSink, wait_until):
    smsc.sim.set_rules([{"action": "receipt", "dest": "^1888", "stat": "UNDELIV"}, {"action": "drop", "dest": "^1777"}])
    sink = ReceiptSink()
    conn = connect(sink)
    assert conn.wait_bound(5)
    _, [undeliv] = send_text(conn, "a", dest="+18885550000")
    _, [dropped] = send_text(conn, "b", dest="+17775550000")
    _, [ok] = send_text(conn, "c", dest="+15555550000")
    got = {r.message_id: r.stat for r in sink.wait(2)}
    time.sleep(0.3)
    assert {r.message_id: r.stat for r in sink.items} == {undeliv: "UNDELIV", ok: "DELIVRD"}
    assert dropped not in got


def test_window_limits_outstanding_submits_and_unanswered_ones_time_out(smsc, connect, ReceiptSink, wait_until):
    # Only the first four destinations are muted: the six that wait for a slot go out
    # the moment the first four time out, and must then be answered whatever the timing.
    smsc.sim.set_rules([{"action": "mute", "dest": "^1555000000"}])
    # The timeout is long enough that a loaded machine cannot free a slot (by timing
    # out the first four) before the window is checked.
    conn = connect(ReceiptSink(), window=4, response_timeout=3.0)
    assert conn.wait_bound(5)
    dests = ["+1555000000%d" % i for i in range(4)] + ["+1666000000%d" % i for i in range(6)]
    futs = [conn.submit(source_addr="UVOX", destination_addr=d, short_message=b"m") for d in dests]
    assert wait_until(lambda: len(records(smsc)) == 4)
    time.sleep(0.3)
    assert len(records(smsc)) == 4  # the other six wait for a free slot
    for f in futs[:4]:
        with pytest.raises(TransientSubmitError) as e:
            f.result(10)
        assert e.value.maybe_sent
    for f in futs[4:]:
        assert f.result(10)


def test_tps_limit_spaces_submits(smsc, connect, ReceiptSink, wait_until):
    conn = connect(ReceiptSink(), tps=50)
    assert conn.wait_bound(5)
    futs = [conn.submit(source_addr="UVOX", destination_addr="+15550000002", short_message=b"t") for _ in range(30)]
    for f in futs:
        f.result(10)
    recs = records(smsc)
    # 30 messages at 50/s with a burst of 5 cannot take less than 25/50 s.
    assert recs[-1]["time"] - recs[0]["time"] >= 0.45


def test_enquire_link_keepalive(smsc, connect, ReceiptSink, wait_until):
    conn = connect(ReceiptSink(), enquire_link_interval=0.2)
    assert conn.wait_bound(5)
    assert wait_until(lambda: smsc.call(smsc.sim.stats)["enquire_links"] >= 3, timeout=5)
    assert conn.is_bound


def test_reconnects_after_smsc_restart_and_gets_receipts_held_meanwhile(smsc, connect, ReceiptSink, wait_until):
    sink = ReceiptSink()
    conn = connect(sink)
    assert conn.wait_bound(5)
    smsc.sim.receipt_delay = 0.5
    _, [before] = send_text(conn, "before outage")
    smsc.stop()
    assert wait_until(lambda: not conn.is_bound)
    with pytest.raises(NotConnected):
        conn.submit(source_addr="UVOX", destination_addr="+15550000003", short_message=b"x").result(1)
    time.sleep(0.6)  # the receipt falls due while nobody is bound
    smsc.start()
    assert conn.wait_bound(10)
    assert conn.stats.binds == 2
    _, [after] = send_text(conn, "after outage")
    got = {r.message_id for r in sink.wait(2)}
    assert got == {before, after}


def test_smsc_back_after_a_long_outage_is_bound_again_within_two_seconds(smsc, connect, ReceiptSink, wait_until):
    # The shipped backoff, not the fast one of the other tests: 20 s away would have
    # grown it to 16 s; a refused connection is retried every 0.5 s instead.
    conn = connect(ReceiptSink(), reconnect_min=0.5, reconnect_max=30.0)
    assert conn.wait_bound(5)
    smsc.stop()
    assert wait_until(lambda: not conn.is_bound)
    time.sleep(8)  # backoff doubling from 0.5 s would be at 8 s by now
    refused = conn.stats.bind_failures
    assert refused >= 10  # still trying, cheaply
    smsc.start()
    back = time.monotonic()
    assert conn.wait_bound(2), "not bound again within 2 s of the SMSC's return"
    assert time.monotonic() - back < 2
    _, [mid] = send_text(conn, "after a long outage")
    assert mid


def test_unacknowledged_receipt_is_redelivered_after_reconnect(smsc, connect, ReceiptSink, wait_until):
    sink = ReceiptSink(auto_ack=False)
    conn = connect(sink)
    assert conn.wait_bound(5)
    _, [mid] = send_text(conn, "ack me later")
    assert sink.wait(1)[0].message_id == mid
    smsc.call(smsc.sim.disconnect_all())
    assert wait_until(lambda: conn.stats.binds == 2 and conn.is_bound)
    got = sink.wait(2)
    assert [r.message_id for r in got] == [mid, mid]
    sink.acks[0](True)  # too late: that session is gone, the SMSC keeps it pending
    assert smsc.call(smsc.sim.stats)["receipts_acked"] == 0
    sink.acks[1](True)
    assert wait_until(lambda: smsc.call(smsc.sim.stats)["receipts_acked"] == 1)


def test_wrong_password_keeps_retrying_without_binding(smsc, connect, ReceiptSink, wait_until):
    smsc.sim.password = "secret"
    conn = connect(ReceiptSink(), password="wrong")
    assert not conn.wait_bound(0.8)
    assert conn.stats.bind_failures >= 2
    assert (
        "Invalid Password" in conn.stats.last_error
        or "0xe" in conn.stats.last_error.lower()
        or "14" in conn.stats.last_error
    )
    with pytest.raises(NotConnected):
        conn.submit(source_addr="UVOX", destination_addr="+1555", short_message=b"x").result(1)
