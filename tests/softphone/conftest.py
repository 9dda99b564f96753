"""Softphone test helpers: a real Kamailio process and sipp as the softphone.

Databases, accounts, the HTTP server and the ``uvox`` process come from
tests/conftest.py.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import time

import pytest

from tests.conftest import uvox_require

REGISTER_SCENARIO = """<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="uvox register">
  <send retrans="500">
    <![CDATA[
      REGISTER sip:{domain} SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: <sip:{user}@{domain}>;tag=[pid]SIPpTag00[call_number]
      To: <sip:{user}@{domain}>
      Call-ID: [call_id]
      CSeq: 1 REGISTER
      Contact: <sip:{user}@[local_ip]:[local_port];transport=[transport]>
      Max-Forwards: 70
      Expires: 300
      Content-Length: 0

    ]]>
  </send>
  <recv response="401" auth="true"/>
  <send retrans="500">
    <![CDATA[
      REGISTER sip:{domain} SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: <sip:{user}@{domain}>;tag=[pid]SIPpTag00[call_number]
      To: <sip:{user}@{domain}>
      Call-ID: [call_id]
      CSeq: 2 REGISTER
      Contact: <sip:{user}@[local_ip]:[local_port];transport=[transport]>
      [authentication username={user} password={password}]
      Max-Forwards: 70
      Expires: 300
      Content-Length: 0

    ]]>
  </send>
  <recv response="200"/>
</scenario>
"""


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def sip_options_ok(port: int, domain: str, timeout: float = 0.5) -> bool:
    """Send a SIP OPTIONS keepalive; True if the server answers 200."""
    msg = (
        f"OPTIONS sip:{domain} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bK{secrets.token_hex(6)}\r\n"
        f"From: <sip:probe@{domain}>;tag=1\r\nTo: <sip:{domain}>\r\nCall-ID: {secrets.token_hex(8)}\r\n"
        "CSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
    )
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(timeout)
        s.bind(("127.0.0.1", 0))
        s.sendto(msg.replace("127.0.0.1:9", f"127.0.0.1:{s.getsockname()[1]}").encode(), ("127.0.0.1", port))
        try:
            data, _ = s.recvfrom(65535)
        except OSError:
            return False
    return data.startswith(b"SIP/2.0 200")


class Kamailio:
    """A real Kamailio process on 127.0.0.1 with a given configuration text."""

    def __init__(self, cfg_text: str, port: int, domain: str, workdir):
        self.port, self.domain, self.workdir = port, domain, workdir
        self.cfg = workdir / "kamailio.cfg"
        self.cfg.write_text(cfg_text)
        self.log = workdir / "kamailio.log"
        self.proc = None

    def start(self) -> None:
        check = subprocess.run(["kamailio", "-c", "-f", str(self.cfg)], capture_output=True, text=True)
        assert check.returncode == 0, check.stderr[-2000:]
        self.proc = subprocess.Popen(
            ["kamailio", "-DD", "-E", "-f", str(self.cfg), "-Y", str(self.workdir),
             "-P", str(self.workdir / "kamailio.pid"), "-m", "32", "-M", "4"],
            stdout=open(self.log, "wb"), stderr=subprocess.STDOUT, start_new_session=True,
        )
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"kamailio exited: {self.log.read_text()[-3000:]}")
            if sip_options_ok(self.port, self.domain):
                return
            time.sleep(0.1)
        raise AssertionError(f"kamailio did not answer: {self.log.read_text()[-3000:]}")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)


def sipp_register(port: int, domain: str, user: str, password: str, workdir) -> int:
    """REGISTER with digest auth through sipp; returns the final status code
    Kamailio answered to the authenticated request (200, 401, ...)."""
    run_dir = workdir / f"sipp-{secrets.token_hex(4)}"
    run_dir.mkdir()
    scenario = run_dir / "register.xml"
    scenario.write_text(REGISTER_SCENARIO.format(domain=domain, user=user, password=password))
    proc = subprocess.run(
        ["sipp", f"127.0.0.1:{port}", "-sf", str(scenario), "-m", "1", "-i", "127.0.0.1",
         "-p", str(free_udp_port()), "-timeout", "10s", "-recv_timeout", "5000", "-nostdin",
         "-trace_msg", "-message_file", str(run_dir / "messages.log")],
        cwd=run_dir, capture_output=True, text=True, timeout=30,
    )
    log = (run_dir / "messages.log").read_text() if (run_dir / "messages.log").exists() else ""
    codes = [int(line.split()[1]) for line in log.splitlines() if line.startswith("SIP/2.0 ")]
    assert len(codes) >= 2, f"sipp got no answer to the authenticated REGISTER (rc={proc.returncode}): {proc.stdout[-1500:]}{proc.stderr[-1500:]}"
    # sipp's exit status agrees with what it received: 0 only when it got the 200.
    assert (proc.returncode == 0) == (codes[-1] == 200), (proc.returncode, codes)
    return codes[-1]


@pytest.fixture(scope="session")
def sip_tools():
    uvox_require(shutil.which("kamailio") is not None, "kamailio is not installed (apt: kamailio kamailio-postgres-modules)")
    uvox_require(shutil.which("sipp") is not None, "sipp is not installed (apt: sip-tester)")
    uvox_require(
        os.path.exists("/usr/lib/x86_64-linux-gnu/kamailio/modules/db_postgres.so")
        or bool(subprocess.run(["sh", "-c", "ls /usr/lib/*/kamailio/modules/db_postgres.so"], capture_output=True).stdout),
        "Kamailio's db_postgres module is not installed (apt: kamailio-postgres-modules)",
    )
    return {"Kamailio": Kamailio, "register": sipp_register, "free_udp_port": free_udp_port}
