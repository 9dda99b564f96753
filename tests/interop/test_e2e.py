"""End to end against an independent SMSC: what an outside reviewer will run.

`uvox serve` (its own process) → `uvox admin connector add` pointing at node-smpp →
HTTP send → dispatcher → smpplib over TCP → node-smpp decodes the submit_sm with its
own code → its delivery receipt → `sms-api/status` says 013 / 110 Delivered.
The UDH, data_coding and text asserted here are what node-smpp decoded, not what
UVox thinks it sent.
"""

import httpx
import pytest

from tests.dispatch.conftest import poll

SEND = "/api/get-api/v1/sms-api"
STATUS = "/api/get-api/v1/sms-api/status"
DECK = "dialprefix,destination,rateinitial,smsrate\n1,USA,0.01,0.0075\n34,Spain,0.015,0.04\n56,Chile,0.03,0.03\n"

pytestmark = pytest.mark.timeout(180)


def send(srv, auth, to, text, **extra) -> dict:
    r = httpx.post(srv.url + SEND, data={**auth, "to": to, "text": text, **extra}, timeout=30).json()
    assert r["code"] == "005", r
    return r


def status(srv, auth, mid) -> dict:
    return httpx.get(srv.url + STATUS, params={**auth, "messageId": mid}, timeout=30).json()


@pytest.mark.parametrize("bind_mode", ["transceiver", "transmitter"])
def test_gsm_ucs2_and_three_parts_are_delivered_through_node_smpp(uvox_server, node_smsc, bind_mode):
    smsc = node_smsc(system_id="carrier1", password="s3cret")
    srv = uvox_server(UVOX_SMSC_SIM="0")
    out = srv.admin(
        "connector",
        "add",
        "nodesmsc",
        "--host",
        "127.0.0.1",
        "--port",
        str(smsc.port),
        "--system-id",
        "carrier1",
        "--password",
        "s3cret",
        "--bind-mode",
        bind_mode,
    )
    assert out["bind_mode"] == bind_mode
    auth = srv.customer(DECK)

    gsm_text = "Hola {Ana}: 5€ @ casa"
    ucs_text = "Привет 😀 ¿qué tal?"
    long_text = ("Tres partes para un mensaje largo. " * 14)[:440]
    gsm = send(srv, auth, "+1 305 555 0101", gsm_text, **{"from": "UVox"})
    ucs = send(srv, auth, "+34600000001", ucs_text)
    multi = send(srv, auth, "+56912345678", long_text, **{"from": "+13055550000"})
    assert multi["segments"] == "3"

    for m in (gsm, ucs, multi):
        s = poll(lambda m=m: (x := status(srv, auth, m["id"])).get("state") == "delivered" and x, timeout=60)
        assert s, (status(srv, auth, m["id"]), smsc.events(), srv.log.read_text()[-3000:])
        assert s["code"] == "013" and s["statecode"] == "110" and s["statetext"] == "Delivered"
        assert "simulated" not in s

    binds = smsc.events("bind")
    assert {b["system_id"] for b in binds} == {"carrier1"}
    modes = {b["mode"] for b in binds}
    assert modes == ({"transceiver"} if bind_mode == "transceiver" else {"transmitter", "receiver"})

    [g] = smsc.messages("13055550101")
    assert (g["data_coding"], g["esm_class"], g["udh"], g["text"]) == (0, 0, "", gsm_text)
    assert g["source_addr"] == "UVox" and g["source_addr_ton"] == 5 and g["registered_delivery"] == 1
    [u] = smsc.messages("34600000001")
    assert (u["data_coding"], u["udh"], u["text"]) == (8, "", ucs_text)
    parts = smsc.messages("56912345678")
    assert len(parts) == 3
    ref = int(multi["id"]) & 0xFF
    assert sorted(p["udh"] for p in parts) == [f"050003{ref:02x}03{i:02x}" for i in (1, 2, 3)]
    assert all(p["esm_class"] & 0x40 and p["data_coding"] == 0 for p in parts)
    by_part = {p["udh"]: p["text"] for p in parts}
    assert "".join(by_part[f"050003{ref:02x}03{i:02x}"] for i in (1, 2, 3)) == long_text
    # Every receipt was acknowledged with status 0.
    acks = poll(lambda: len(x := smsc.events("deliver_sm_resp")) >= 5 and x, timeout=30)
    assert acks and all(a["status"] == 0 for a in acks)
