"""`uvox smsc-sim` as its own process: SMPP on one port, inspection and control over HTTP."""

import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from uvox.smpp.connector import ConnectorConfig, PermanentSubmitError, SmppConnector
from uvox.sms.encoding import encode

SRC = str(Path(__file__).resolve().parents[2] / "src")


def _sim_command() -> list[str]:
    try:
        import uvox.cli  # noqa: F401  (the lead's `uvox` group, once merged)

        return [sys.executable, "-m", "uvox", "smsc-sim"]
    except ImportError:
        return [sys.executable, "-m", "uvox.smpp.cli"]


@pytest.fixture
def sim_process():
    proc = subprocess.Popen(
        _sim_command()
        + [
            "--port",
            "0",
            "--control-port",
            "0",
            "--receipt-delay",
            "0.05",
            "--system-id",
            "acme",
            "--password",
            "s3cret",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=dict(os.environ, PYTHONPATH=SRC),
    )
    try:
        line = proc.stdout.readline()
        assert line, proc.stderr.read()
        yield proc, json.loads(line)
    finally:
        proc.terminate()
        proc.wait(10)
        proc.stdout.close()
        proc.stderr.close()


def test_standalone_simulator_is_loud_records_and_obeys_control(sim_process, ReceiptSink):
    proc, info = sim_process
    assert info["simulated"] is True
    ctl = f"http://127.0.0.1:{info['control_port']}"
    sink = ReceiptSink()
    conn = SmppConnector(
        ConnectorConfig(host="127.0.0.1", port=info["smpp_port"], system_id="acme", password="s3cret"), on_receipt=sink
    ).start()
    try:
        assert conn.wait_bound(5)
        r = httpx.post(f"{ctl}/rules", json=[{"action": "reject", "dest": "^44", "status": 0x45}])
        assert r.status_code == 200 and r.json()[0]["action"] == "reject"
        enc = encode("GSM: ÄÖÑÜ äöñü é ß")
        ok = conn.submit(
            source_addr="Acme", destination_addr="+34600000000", short_message=enc.parts[0], data_coding=enc.data_coding
        ).result(5)
        with pytest.raises(PermanentSubmitError) as e:
            conn.submit(source_addr="Acme", destination_addr="+447700900000", short_message=b"no").result(5)
        assert e.value.status == 0x45
        assert sink.wait(1)[0].message_id == ok

        msgs = httpx.get(f"{ctl}/messages").json()
        assert [m["outcome"] for m in msgs] == ["accepted", "rejected"]
        assert msgs[0]["text"] == "GSM: ÄÖÑÜ äöñü é ß" and msgs[0]["data_coding"] == 0
        assert msgs[0]["message_id"] == ok
        assert httpx.get(f"{ctl}/messages", params={"dest": "+447700900000"}).json()[0]["status"] == 0x45
        stats = httpx.get(f"{ctl}/stats").json()
        assert stats["accepted"] == 1 and stats["rejected"] == 1 and stats["receipts_acked"] == 1
        assert httpx.post(f"{ctl}/rules", json=[{"action": "explode"}]).status_code == 400
        httpx.post(f"{ctl}/reset")
        assert httpx.get(f"{ctl}/messages").json() == []
    finally:
        conn.stop()
    proc.terminate()
    _, err = proc.communicate(timeout=10)
    assert "NOT delivered to any phone" in err


def test_simulator_refuses_wrong_credentials(sim_process):
    _, info = sim_process
    conn = SmppConnector(
        ConnectorConfig(host="127.0.0.1", port=info["smpp_port"], system_id="acme", password="nope", reconnect_min=0.1)
    ).start()
    try:
        assert not conn.wait_bound(0.5)
        assert "Invalid Password" in conn.stats.last_error
    finally:
        conn.stop()
