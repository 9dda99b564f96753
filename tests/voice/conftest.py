"""Voice test helpers: sipp as the caller's softphone and as carrier trunks.

The real Kamailio process comes from tests/softphone/conftest.py (``Kamailio``),
the real ``uvox serve`` on PostgreSQL from tests/conftest.py (``uvox_server``).

- :func:`call` places one call as a SIP account: INVITE, 407 challenge, INVITE
  with ``Proxy-Authorization`` (sipp's ``[authentication]``), then either the
  final answer or ACK and a talk time after which the caller hangs up unless it
  is sent a BYE first.
- :class:`Trunk` is a sipp UAS on a free port playing a carrier: ``answer``
  (and wait for BYE, or hang up itself after ``hangup_ms``), ``busy`` (486),
  ``unavailable`` (503), ``silent`` (never responds), ``challenge`` (401, then
  answers the INVITE that carries the right digest).
- Every run keeps sipp's message trace, so a test reads what each side received
  (:class:`SippRun`: final code, whether a BYE came, when).
"""

from __future__ import annotations

import re
import secrets
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import pytest

from tests.conftest import uvox_require
from tests.softphone.conftest import REGISTER_SCENARIO, free_udp_port, sip_tools  # noqa: F401 (fixture)

SDP = """v=0
      o=user1 53655765 2353687637 IN IP[local_ip_type] [local_ip]
      s=-
      c=IN IP[media_ip_type] [media_ip]
      t=0 0
      m=audio [media_port] RTP/AVP 0
      a=rtpmap:0 PCMU/8000
"""

# Final answers the caller may get to its authenticated INVITE (besides 200).
FAILURE_CODES = (400, 401, 402, 403, 404, 407, 408, 480, 481, 486, 487, 488, 500, 502, 503, 504, 600, 603, 604, 606)


def caller_scenario(*, user: str, password: str | None, dialled: str, domain: str, talk_ms: int) -> str:
    """INVITE dialled@domain as user; with ``password=None`` stop at the 407."""
    invite = (
        """
      INVITE sip:{dialled}@{domain} SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: <sip:{user}@{domain}>;tag=[pid]SIPpTag09[call_number]
      To: <sip:{dialled}@{domain}>
      Call-ID: [call_id]
      CSeq: {cseq} INVITE
      Contact: <sip:{user}@[local_ip]:[local_port];transport=[transport]>{auth}
      Max-Forwards: 70
      Content-Type: application/sdp
      Content-Length: [len]

      """
        + SDP
    )
    ack_negative = """
      ACK sip:{dialled}@{domain} SIP/2.0
      [last_Via:]
      From: <sip:{user}@{domain}>;tag=[pid]SIPpTag09[call_number]
      [last_To:]
      Call-ID: [call_id]
      CSeq: {cseq} ACK
      Max-Forwards: 70
      Content-Length: 0

    """
    fmt = dict(user=user, dialled=dialled, domain=domain)
    parts = [
        f"""<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="uvox caller">
  <send retrans="500"><![CDATA[{invite.format(cseq=1, auth="", **fmt)}]]></send>
  <recv response="100" optional="true"/>
  <recv response="407" auth="true"/>
  <send><![CDATA[{ack_negative.format(cseq=1, **fmt)}]]></send>
"""
    ]
    if password is None:
        parts.append("</scenario>\n")
        return "".join(parts)
    auth = f"\n      [authentication username={user} password={password}]"
    parts.append(f"""
  <send retrans="500"><![CDATA[{invite.format(cseq=2, auth=auth, **fmt)}]]></send>
  <recv response="100" optional="true"/>
  <recv response="180" optional="true"/>
  <recv response="183" optional="true"/>
  <recv response="200" optional="true" rrs="true" next="answered"/>
""")
    for i, code in enumerate(FAILURE_CODES):
        last = i == len(FAILURE_CODES) - 1
        optional = "" if last else ' optional="true"'
        parts.append(f'  <recv response="{code}"{optional} next="refused"/>\n')
    parts.append(f"""
  <label id="answered"/>
  <send><![CDATA[
      ACK [next_url] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: <sip:{user}@{domain}>;tag=[pid]SIPpTag09[call_number]
      To: <sip:{dialled}@{domain}>[peer_tag_param]
      Call-ID: [call_id]
      CSeq: 2 ACK
      [routes]
      Contact: <sip:{user}@[local_ip]:[local_port];transport=[transport]>
      Max-Forwards: 70
      Content-Length: 0

    ]]></send>
  <recv request="BYE" timeout="{talk_ms}" ontimeout="hangup"/>
  <send next="end"><![CDATA[
      SIP/2.0 200 OK
      [last_Via:]
      [last_From:]
      [last_To:]
      [last_Call-ID:]
      [last_CSeq:]
      Content-Length: 0

    ]]></send>
  <label id="hangup"/>
  <send retrans="500"><![CDATA[
      BYE [next_url] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: <sip:{user}@{domain}>;tag=[pid]SIPpTag09[call_number]
      To: <sip:{dialled}@{domain}>[peer_tag_param]
      Call-ID: [call_id]
      CSeq: 3 BYE
      [routes]
      Contact: <sip:{user}@[local_ip]:[local_port];transport=[transport]>
      Max-Forwards: 70
      Content-Length: 0

    ]]></send>
  <recv response="200" next="end"/>
  <label id="refused"/>
  <send><![CDATA[{ack_negative.format(cseq=2, **fmt)}]]></send>
  <label id="end"/>
  <timewait milliseconds="300"/>
</scenario>
""")
    return "".join(parts)


_REPLY_HEADERS = """
      [last_Via:]
      [last_From:]
      {to}
      [last_Call-ID:]
      [last_CSeq:]"""
TO_TAG = "[last_To:];tag=[pid]SIPpTag01[call_number]"


def _reply(status: str, extra: str = "", body: bool = False, retrans: bool = False) -> str:
    headers = _REPLY_HEADERS.format(to=TO_TAG)
    text = f"\n      SIP/2.0 {status}{headers}\n"
    if extra:
        text += f"      {extra}\n"
    if body:
        text += (
            "      Contact: <sip:trunk@[local_ip]:[local_port];transport=[transport]>\n"
            "      Content-Type: application/sdp\n      Content-Length: [len]\n\n      " + SDP
        )
    else:
        text += "      Content-Length: 0\n\n    "
    attrs = ' retrans="500"' if retrans else ""
    return f"  <send{attrs}><![CDATA[{text}]]></send>\n"


def _answer_block(hangup_ms: int | None, ring_ms: int) -> str:
    """100, 180, 200 (with the Record-Route), ACK; then wait for BYE, or send
    one after ``hangup_ms``."""
    wait_ms = hangup_ms if hangup_ms is not None else 120000
    on_timeout = ' ontimeout="hangup"' if hangup_ms is not None else ""
    return (
        _reply("100 Trying").replace(TO_TAG, "[last_To:]")
        + _reply("180 Ringing")
        + f'  <pause milliseconds="{ring_ms}"/>\n'
        + _reply("200 OK", extra="[last_Record-Route:]", body=True, retrans=True)
        + '  <recv request="ACK"/>\n'
        + f'  <recv request="BYE" timeout="{wait_ms}"{on_timeout}/>\n'
        + _reply("200 OK").replace(TO_TAG, "[last_To:]").replace("<send>", '<send next="end">')
        + """  <label id="hangup"/>
  <send retrans="500"><![CDATA[
      BYE [next_url] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: [$peer_to];tag=[pid]SIPpTag01[call_number]
      To: [$peer_from]
      Call-ID: [call_id]
      CSeq: 1 BYE
      [routes]
      Max-Forwards: 70
      Content-Length: 0

    ]]></send>
  <recv response="200"/>
  <label id="end"/>
  <timewait milliseconds="300"/>
"""
    )


_INVITE_RECV = """  <recv request="INVITE" rrs="true">
    <action>
      {verify}
    </action>
  </recv>
"""
# Kept for a BYE from this side (sipp refuses variables that are never used).
_PEER = """<ereg regexp=".*" search_in="hdr" header="From:" assign_to="peer_from"/>
      <ereg regexp=".*" search_in="hdr" header="To:" assign_to="peer_to"/>"""


def trunk_scenario(
    kind: str, *, hangup_ms: int | None = None, ring_ms: int = 100, username: str = "", password: str = ""
) -> str:
    head = '<?xml version="1.0" encoding="ISO-8859-1" ?>\n<scenario name="uvox trunk %s">\n' % kind
    invite = _INVITE_RECV.format(verify="")
    peer = _INVITE_RECV.format(verify=_PEER)
    if kind == "answer":
        body = peer + _answer_block(hangup_ms, ring_ms)
    elif kind in ("busy", "unavailable", "declined", "notfound"):
        status = {
            "busy": "486 Busy Here",
            "unavailable": "503 Service Unavailable",
            "declined": "603 Decline",
            "notfound": "404 Not Found",
        }[kind]
        body = (
            invite
            + _reply("100 Trying").replace(TO_TAG, "[last_To:]")
            + _reply(status, retrans=True)
            + '  <recv request="ACK"/>\n  <timewait milliseconds="300"/>\n'
        )
    elif kind == "silent":
        # Receives the INVITE (and its retransmissions) and never says a word.
        body = '  <recv request="INVITE"/>\n  <pause milliseconds="9000"/>\n'
    elif kind == "challenge":
        verify = f'<verifyauth assign_to="authvalid" username="{username}" password="{password}"/>'
        body = (
            invite
            + _reply(
                "401 Unauthorized",
                extra='WWW-Authenticate: Digest realm="trunk.test", nonce="[pid]n[call_number]x", algorithm=MD5',
                retrans=True,
            )
            + '  <recv request="ACK"/>\n'
            + _INVITE_RECV.format(verify=verify + "\n      " + _PEER)
            + '  <nop hide="true" test="authvalid" next="goodauth"/>\n'
            + _reply("403 Forbidden", retrans=True)
            + '  <recv request="ACK" next="end"/>\n'
            + '  <label id="goodauth"/>\n'
            + _answer_block(hangup_ms, ring_ms)
        )
    else:
        raise ValueError(kind)
    return head + body + "</scenario>\n"


def callee_scenario(*, hangup_ms: int | None = None, ring_ms: int = 100) -> str:
    """A registered phone that answers a call (on-net)."""
    return (
        '<?xml version="1.0" encoding="ISO-8859-1" ?>\n<scenario name="uvox callee">\n'
        + _INVITE_RECV.format(verify=_PEER)
        + _answer_block(hangup_ms, ring_ms)
        + "</scenario>\n"
    )


_TRACE_HEAD = re.compile(r"^-{20,} (\d{4}-\d\d-\d\d[\d\s:.\-]*)\n(UDP|TCP) message (received|sent)[^\n]*\n\n", re.M)


@dataclass
class SipMessage:
    direction: str  # "received" | "sent"
    at: float  # epoch seconds
    text: str

    @property
    def first_line(self) -> str:
        return self.text.split("\n", 1)[0].strip()

    @property
    def method(self) -> str | None:
        return None if self.first_line.startswith("SIP/2.0") else self.first_line.split()[0]

    @property
    def code(self) -> int | None:
        return int(self.first_line.split()[1]) if self.first_line.startswith("SIP/2.0") else None

    @property
    def cseq_method(self) -> str:
        m = re.search(r"^CSeq:\s*\d+\s+(\w+)", self.text, re.M | re.I)
        return m.group(1) if m else ""

    def header(self, name: str) -> str | None:
        m = re.search(rf"^{re.escape(name)}:\s*(.*)$", self.text, re.M | re.I)
        return m.group(1).strip() if m else None


def _parse_trace(text: str) -> list[SipMessage]:
    out: list[SipMessage] = []
    heads = list(_TRACE_HEAD.finditer(text))
    for i, h in enumerate(heads):
        body = text[h.end() : heads[i + 1].start() if i + 1 < len(heads) else len(text)]
        stamp = h.group(1).strip()
        try:
            at = datetime.strptime(stamp[:26], "%Y-%m-%d %H:%M:%S.%f").timestamp()
        except ValueError:
            at = 0.0
        out.append(SipMessage(h.group(3), at, body.strip("\n")))
    return out


@dataclass
class SippRun:
    """A sipp process and, once it ended, what it sent and received."""

    name: str
    port: int
    run_dir: Path
    proc: subprocess.Popen
    returncode: int | None = None
    messages: list[SipMessage] = field(default_factory=list)

    def wait(self, timeout: float = 60) -> SippRun:
        try:
            self.returncode = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.returncode = self.proc.wait(5)
        self.read()
        return self

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)
        self.returncode = self.proc.returncode
        self.read()

    def read(self) -> list[SipMessage]:
        f = self.run_dir / "messages.log"
        self.messages = _parse_trace(f.read_text(errors="replace")) if f.exists() else []
        return self.messages

    @property
    def received(self) -> list[SipMessage]:
        return [m for m in self.messages if m.direction == "received"]

    def received_requests(self, method: str) -> list[SipMessage]:
        return [m for m in self.received if m.method == method]

    @property
    def got_bye(self) -> bool:
        return bool(self.received_requests("BYE"))

    def final_code(self, method: str = "INVITE") -> int | None:
        """The last final answer received to ``method``."""
        codes = [m.code for m in self.received if m.code and m.code >= 200 and m.cseq_method == method]
        return codes[-1] if codes else None

    def first(self, direction: str, pred) -> SipMessage | None:
        return next((m for m in self.messages if m.direction == direction and pred(m)), None)

    @property
    def answered_at(self) -> float | None:
        """When this side saw the 200 OK to the INVITE (received by a caller, sent by a callee)."""
        m = self.first("received", lambda m: m.code == 200 and m.cseq_method == "INVITE") or self.first(
            "sent", lambda m: m.code == 200 and m.cseq_method == "INVITE"
        )
        return m.at if m else None

    @property
    def bye_at(self) -> float | None:
        m = self.first("received", lambda m: m.method == "BYE") or self.first("sent", lambda m: m.method == "BYE")
        return m.at if m else None

    def log(self) -> str:
        f = self.run_dir / "messages.log"
        out = self.run_dir / "stdout.log"
        parts = [f"--- sipp {self.name} rc={self.returncode}"]
        if out.exists():
            parts.append(out.read_text(errors="replace")[-1500:])
        if f.exists():
            parts.append(f.read_text(errors="replace")[-6000:])
        return "\n".join(parts)


def _start_sipp(
    name: str,
    scenario: str,
    workdir: Path,
    *,
    remote: str | None = None,
    port: int | None = None,
    max_calls: int = 1,
    timeout_s: int = 90,
) -> SippRun:
    """sipp on 127.0.0.1:``port`` (a free one if None); retried on a new port when
    the one picked free was taken before sipp could bind it."""
    for attempt in range(4):
        p = port or free_udp_port()
        run_dir = workdir / f"sipp-{name}-{secrets.token_hex(3)}"
        run_dir.mkdir(parents=True)
        (run_dir / "scenario.xml").write_text(scenario)
        args = (
            ["sipp"]
            + ([remote] if remote else [])
            + [
                "-sf",
                str(run_dir / "scenario.xml"),
                "-m",
                str(max_calls),
                "-i",
                "127.0.0.1",
                "-p",
                str(p),
                "-t",
                "u1",
                "-nostdin",
                "-timeout",
                f"{timeout_s}s",
                "-timeout_error",
                "-recv_timeout",
                "30000",
                "-trace_msg",
                "-message_file",
                str(run_dir / "messages.log"),
                "-trace_err",
                "-error_file",
                str(run_dir / "errors.log"),
                "-mi",
                "127.0.0.1",
                "-mp",
                str(free_udp_port()),
            ]
        )
        # sipp writes to its own copy of the file; ours is closed once it has started.
        with open(run_dir / "stdout.log", "wb") as out:
            proc = subprocess.Popen(args, cwd=run_dir, stdout=out, stderr=subprocess.STDOUT)
        run = SippRun(name, p, run_dir, proc)
        # A sipp that cannot bind exits at once; one that runs keeps going.
        time.sleep(0.3)
        if proc.poll() is None or port is not None or attempt == 3:
            return run
        text = (run_dir / "stdout.log").read_text(errors="replace")
        if "bind" not in text.lower() and "address already in use" not in text.lower():
            return run
    raise AssertionError("unreachable")


class Trunk:
    """A carrier trunk played by sipp (UAS). ``kind``: answer, busy, unavailable,
    declined, notfound, silent, challenge."""

    def __init__(self, workdir: Path, kind: str, **kwargs) -> None:
        self.kind = kind
        self.run = _start_sipp(f"trunk-{kind}", trunk_scenario(kind, **kwargs), workdir)
        self.port = self.run.port
        assert self.run.proc.poll() is None, self.run.log()

    def wait(self, timeout: float = 30) -> SippRun:
        return self.run.wait(timeout)

    def stop(self) -> SippRun:
        self.run.stop()
        return self.run


def start_call(
    kamailio_port: int,
    workdir: Path,
    *,
    user: str,
    password: str | None,
    dialled: str,
    domain: str,
    talk_ms: int = 1000,
) -> SippRun:
    scenario = caller_scenario(user=user, password=password, dialled=dialled, domain=domain, talk_ms=talk_ms)
    return _start_sipp("caller", scenario, workdir, remote=f"127.0.0.1:{kamailio_port}")


def call(kamailio_port: int, workdir: Path, *, timeout: float = 60, **kwargs) -> SippRun:
    """Place one call and wait for the caller's side to end."""
    return start_call(kamailio_port, workdir, **kwargs).wait(timeout)


def start_callee(workdir: Path, port: int, **kwargs) -> SippRun:
    """A phone answering on ``port`` (already registered from that port)."""
    return _start_sipp("callee", callee_scenario(**kwargs), workdir, port=port)


def register_from(kamailio_port: int, domain: str, user: str, password: str, workdir: Path, port: int) -> int:
    """REGISTER ``user`` with Contact 127.0.0.1:``port``; returns the final code."""
    run = _start_sipp(
        "register",
        REGISTER_SCENARIO.format(domain=domain, user=user, password=password),
        workdir,
        remote=f"127.0.0.1:{kamailio_port}",
        port=port,
    ).wait(20)
    codes = [m.code for m in run.received if m.code]
    assert codes, run.log()
    return codes[-1]


@pytest.fixture(scope="session")
def sipp_tools():
    uvox_require(shutil.which("sipp") is not None, "sipp is not installed (apt: sip-tester)")
    return {
        "call": call,
        "start_call": start_call,
        "Trunk": Trunk,
        "start_callee": start_callee,
        "register_from": register_from,
        "free_udp_port": free_udp_port,
    }
