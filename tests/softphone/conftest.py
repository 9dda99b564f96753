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

    def __init__(self, cfg_text: str, port: int, domain: str, workdir, *, shm_mb: int = 32, pkg_mb: int = 4):
        self.port, self.domain, self.workdir = port, domain, workdir
        self.memory = ["-m", str(shm_mb), "-M", str(pkg_mb)]
        self.cfg = workdir / "kamailio.cfg"
        self.cfg.write_text(cfg_text)
        self.log = workdir / "kamailio.log"
        self.proc = None

    def start(self) -> None:
        check = subprocess.run(["kamailio", "-c", "-f", str(self.cfg)], capture_output=True, text=True)
        assert check.returncode == 0, check.stderr[-2000:]
        with open(self.log, "wb") as out:  # Kamailio keeps its own copy
            self.proc = subprocess.Popen(
                [
                    "kamailio",
                    "-DD",
                    "-E",
                    "-f",
                    str(self.cfg),
                    "-Y",
                    str(self.workdir),
                    "-P",
                    str(self.workdir / "kamailio.pid"),
                    *self.memory,
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
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


def sipp_register(port: int, domain: str, user: str, password: str, workdir, transport: str = "udp") -> int:
    """REGISTER with digest auth through sipp (``transport`` udp or tcp); returns
    the final status code Kamailio answered to the authenticated request."""
    # A port picked free can be taken again before sipp binds it (other suites run
    # beside this one); sipp then exits without a word on the wire. Try a new port.
    for _attempt in range(3):
        run_dir = workdir / f"sipp-{secrets.token_hex(4)}"
        run_dir.mkdir()
        scenario = run_dir / "register.xml"
        scenario.write_text(REGISTER_SCENARIO.format(domain=domain, user=user, password=password))
        proc = subprocess.run(
            [
                "sipp",
                f"127.0.0.1:{port}",
                "-sf",
                str(scenario),
                "-m",
                "1",
                "-i",
                "127.0.0.1",
                "-t",
                {"udp": "u1", "tcp": "t1"}[transport],
                "-p",
                str(free_udp_port()),
                "-timeout",
                "10s",
                "-recv_timeout",
                "5000",
                "-nostdin",
                "-trace_msg",
                "-message_file",
                str(run_dir / "messages.log"),
            ],
            cwd=run_dir,
            capture_output=True,
            text=True,
            timeout=30,
        )
        log = (run_dir / "messages.log").read_text() if (run_dir / "messages.log").exists() else ""
        codes = [int(line.split()[1]) for line in log.splitlines() if line.startswith("SIP/2.0 ")]
        if len(codes) >= 2 or proc.returncode not in (254, 255):
            break
    assert len(codes) >= 2, (
        f"sipp got no answer to the authenticated REGISTER (rc={proc.returncode}): {proc.stdout[-1500:]}{proc.stderr[-1500:]}"
    )
    # sipp's exit status agrees with what it received: 0 only when it got the 200.
    assert (proc.returncode == 0) == (codes[-1] == 200), (proc.returncode, codes)
    return codes[-1]


@pytest.fixture(scope="session")
def sip_tools():
    uvox_require(
        shutil.which("kamailio") is not None, "kamailio is not installed (apt: kamailio kamailio-postgres-modules)"
    )
    uvox_require(shutil.which("sipp") is not None, "sipp is not installed (apt: sip-tester)")
    uvox_require(
        os.path.exists("/usr/lib/x86_64-linux-gnu/kamailio/modules/db_postgres.so")
        or bool(
            subprocess.run(["sh", "-c", "ls /usr/lib/*/kamailio/modules/db_postgres.so"], capture_output=True).stdout
        ),
        "Kamailio's db_postgres module is not installed (apt: kamailio-postgres-modules)",
    )
    return {
        "Kamailio": Kamailio,
        "register": sipp_register,
        "free_udp_port": free_udp_port,
        "tls_register": tls_register,
        "tls_cfg": self_signed_tls_cfg,
    }


def tls_register(port: int, domain: str, user: str, password: str) -> int:
    """REGISTER with digest auth over TLS; returns the final status code.

    Written by hand because Debian's sipp is built without TLS; it is the RFC
    3261 / RFC 2617 minimum (one challenge, qop=auth), a test client only.
    """
    import hashlib
    import re
    import ssl

    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    md5 = lambda s: hashlib.md5(s.encode()).hexdigest()  # noqa: E731
    with ctx.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=5)) as s:
        lport = s.getsockname()[1]
        call_id = secrets.token_hex(8)

        def request(cseq: int, extra: str = "") -> tuple[int, str]:
            msg = (
                f"REGISTER sip:{domain} SIP/2.0\r\n"
                f"Via: SIP/2.0/TLS 127.0.0.1:{lport};branch=z9hG4bK{secrets.token_hex(6)};rport\r\n"
                f"From: <sip:{user}@{domain}>;tag={call_id[:6]}\r\nTo: <sip:{user}@{domain}>\r\n"
                f"Call-ID: {call_id}\r\nCSeq: {cseq} REGISTER\r\n"
                f"Contact: <sip:{user}@127.0.0.1:{lport};transport=tls>\r\n{extra}"
                "Max-Forwards: 70\r\nExpires: 300\r\nContent-Length: 0\r\n\r\n"
            )
            s.sendall(msg.encode())
            data = b""
            while b"\r\n\r\n" not in data:
                chunk = s.recv(65535)
                if not chunk:
                    break
                data += chunk
            head = data.decode(errors="replace")
            return int(head.split()[1]), head

        code, head = request(1)
        assert code == 401, head
        challenge = re.search(r"WWW-Authenticate: Digest (.*)\r\n", head, re.I).group(1)
        params = dict(re.findall(r'(\w+)="?([^",]*)"?', challenge))
        uri, cnonce, nc = f"sip:{domain}", secrets.token_hex(8), "00000001"
        ha1, ha2 = md5(f"{user}:{params['realm']}:{password}"), md5(f"REGISTER:{uri}")
        if "qop" in params:
            response = md5(f"{ha1}:{params['nonce']}:{nc}:{cnonce}:auth:{ha2}")
            qop = f', qop=auth, nc={nc}, cnonce="{cnonce}"'
        else:
            response, qop = md5(f"{ha1}:{params['nonce']}:{ha2}"), ""
        auth = (
            f'Authorization: Digest username="{user}", realm="{params["realm"]}", nonce="{params["nonce"]}", '
            f'uri="{uri}", response="{response}", algorithm=MD5{qop}\r\n'
        )
        return request(2, auth)[0]


def self_signed_tls_cfg(workdir) -> str:
    """A Kamailio tls.cfg with a throw-away certificate; returns its path."""
    key, cert = workdir / "key.pem", workdir / "cert.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            str(key),
            "-out",
            str(cert),
            "-days",
            "1",
            "-subj",
            "/CN=localhost",
        ],
        check=True,
        capture_output=True,
    )
    cfg = workdir / "tls.cfg"
    cfg.write_text(
        f"[server:default]\nmethod = TLSv1.2+\nverify_certificate = no\nrequire_certificate = no\n"
        f"private_key = {key}\ncertificate = {cert}\n"
    )
    return str(cfg)
