"""Hostile input to the real `uvox serve`: malformed HTTP on a raw socket, odd bodies
and variables, slow clients. Nothing gets a 500, the log holds no traceback, and a
normal client is answered throughout.

Already proven with the real server and not repeated here: a header over 8 kB or
headers over 64 kB get 431 (code 106), bodies over 1 MB 413 (code 105) whether they
come with a length, chunked or as multipart (tests/ops/test_operations.py); NUL bytes,
invalid JSON and text/plain bodies (tests/api/v1/test_general.py) and generated
variables of every shape (tests/api/v1/test_properties.py) against the app in a thread.
"""

import socket
import time

import httpx
import pytest

pytestmark = pytest.mark.timeout(120)
API = "/api/get-api/v1/"

RAW = [
    b"GARBAGE\r\n\r\n",
    b"GET\r\n\r\n",
    b"GET / HTTP/9.9\r\n\r\n",
    b"GET /api/get-api/v1/balance HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n",
    b"POST /api/get-api/v1/sms-api HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n",
    b"POST /api/get-api/v1/sms-api HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\nContent-Length: 20\r\n\r\n",
    b"POST /api/get-api/v1/sms-api HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n",
    b"POST /api/get-api/v1/sms-api HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n0\r\n\r\n",
    b"GET /api/get-api/v1/balance?apikey=%ZZ&accountnumber=%00 HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET /api/get-api/v1/\xff\xfe HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET /api/get-api/v1/balance HTTP/1.1\r\nHost: x\r\nApi-Key: \xff\xfe\x00\r\n\r\n",
    b"GET /api/get-api/v1/balance HTTP/1.1\r\nHost: x\r\nBad Header: y\r\n\r\n",
    b"GET /api/get-api/v1/balance HTTP/1.1\r\nHost: x\r\n: empty-name\r\n\r\n",
    b"GET /../../etc/passwd HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET /" + b"a" * 20_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET /api/get-api/v1/balance?" + b"a=1&" * 5000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
    b"BREW /api/get-api/v1/balance HTTP/1.1\r\nHost: x\r\n\r\n",
    # A body that ends before its Content-Length: the client went away mid-request.
    b"POST /api/get-api/v1/sms-api HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n"
    b"Content-Length: 100\r\n\r\nto=1",
    b"POST /api/get-api/v1/sms-api HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
    b"Content-Length: 100\r\n\r\n{",
    b"POST /api/get-api/v1/sms-api HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=b\r\n"
    b"Content-Length: 100\r\n\r\n--b\r\n",
    b"POST /sign_in HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n"
    b"Content-Length: 100\r\n\r\nemail=a",
    b"POST /softphone/zoiper/balance HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n"
    b"Content-Length: 100\r\n\r\nusername=a",
    b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 64,  # a TLS ClientHello on the plain port
]


def raw(port: int, data: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(data)
        s.shutdown(socket.SHUT_WR)
        got = b""
        try:
            while chunk := s.recv(65536):
                got += chunk
        except (ConnectionResetError, TimeoutError):
            pass
    return got


def odd_requests(auth: dict) -> list[tuple[str, str, dict]]:
    send = API + "sms-api"
    ten_thousand = ",".join(f"+1312555{i:04d}" for i in range(10_000))
    return [
        ("POST", send, {"data": {**auth, "to": ten_thousand, "text": "x"}}),
        ("POST", send, {"json": {**auth, "to": [{"a": 1}], "text": ["x"]}}),
        ("POST", send, {"json": [auth]}),
        ("POST", send, {"json": {**auth, "to": "+13125550100", "text": None}}),
        ("POST", send, {"content": b'{"apikey": ' + b"[" * 100_000, "headers": {"content-type": "application/json"}}),
        ("POST", send, {"content": b"\xff\xfe\xfd", "headers": {"content-type": "application/json"}}),
        ("POST", send, {"content": b"--x\r\nbroken", "headers": {"content-type": "multipart/form-data; boundary=x"}}),
        ("POST", send, {"content": b"a=b", "headers": {"content-type": "multipart/form-data"}}),
        ("POST", send, {"data": {**auth, "to": "+1" + "9" * 5000, "text": "x"}}),
        ("POST", send, {"data": {**auth, "to": "+13125550100", "text": "\U0001f600" * 10_000}}),
        ("POST", send, {"data": {**auth, "to": "+13125550100", "text": "x", "from": "\x00" * 20}}),
        ("GET", API + "sms-api/status", {"params": {**auth, "messageId": "9" * 400}}),
        ("GET", API + "sms-api/status", {"params": {**auth, "messageId": "-1"}}),
        ("GET", API + "calls", {"params": {**auth, "cursor": "A" * 5000}}),
        ("GET", API + "calls", {"params": {**auth, "since": "9999-99-99", "limit": "1e9"}}),
        ("GET", API + "OTP-api/verify", {"params": {**auth, "sessionid": "../" * 50, "otp_code": "1" * 1000}}),
        ("GET", API + "balance", {"params": {"accountnumber": "1" * 10_000, "apikey": "k" * 10_000}}),
        ("GET", API + "balance", {"headers": {"Api-Key": "x" * 8000}}),
        ("GET", "/sign_in", {"params": {"next": "https://evil.example/" + "a" * 3000}}),
        ("POST", "/sign_in", {"data": {"email": "\x00", "password": "x" * 100_000, "csrf_token": "nope"}}),
        ("GET", "/softphone/zoiper/balance", {"params": {"username": "' OR 1=1 --", "password": "x"}}),
    ]


def test_malformed_and_slow_clients_get_answers_not_errors(serve, figures):
    srv, acct = serve("sqlite")
    auth = acct.auth
    statuses: list[tuple[str, int]] = []
    # Slow clients: 100 sockets that send half a request line and wait.
    slow = []
    for _ in range(100):
        s = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
        s.sendall(b"GET /api/get-api/v1/balance HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        slow.append(s)
    try:
        started = time.monotonic()
        ok = httpx.get(srv.url + API + "balance", params=auth, timeout=10)
        normal_ms = round((time.monotonic() - started) * 1000)
        assert ok.json()["code"] == "015"

        raw_answers = []
        for data in RAW:
            answer = raw(srv.port, data)
            raw_answers.append(answer.split(b"\r\n", 1)[0].decode("latin1"))
        codes = []
        with httpx.Client(base_url=srv.url, timeout=30) as c:
            for method, path, kw in odd_requests(auth):
                r = c.request(method, path, **kw)
                statuses.append((f"{method} {path[:40]}", r.status_code))
                if path.startswith(API):
                    codes.append(r.json()["code"])
            started = time.monotonic()
            assert c.get(API + "balance", params=auth).json() == ok.json()  # nothing was charged
            after_ms = round((time.monotonic() - started) * 1000)
    finally:
        for s in slow:
            s.close()
    log = srv.log.read_text()
    figures.update(
        raw=len(RAW),
        odd=len(statuses),
        normal_client_ms=normal_ms,
        after_ms=after_ms,
        raw_status_lines=sorted(set(raw_answers)),
        api_codes=sorted(set(codes)),
    )
    five = [line for line in raw_answers if " 5" in line[8:13]]
    assert not five, five
    assert all(s < 500 for _, s in statuses), statuses
    assert "500" not in codes and all(len(x) == 3 for x in codes), codes
    assert "Traceback" not in log and "Exception in ASGI" not in log, log[-3000:]
    assert normal_ms < 2000, "a normal client waited on the slow ones"
