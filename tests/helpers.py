"""Helpers shared by tests of several packages (imported, never fixtures)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
from pathlib import Path

import httpx

INTEROP = Path(__file__).resolve().parent / "interop"


def sample(text: str, name: str, **labels: str) -> float:
    """The value of one series in Prometheus text format (0 when absent)."""
    total = 0.0
    for line in text.splitlines():
        m = re.match(rf"^{re.escape(name)}(?:\{{(.*)\}})? (\S+)$", line)
        if not m:
            continue
        have = dict(re.findall(r'(\w+)="([^"]*)"', m.group(1) or ""))
        if all(have.get(k) == v for k, v in labels.items()):
            total += float(m.group(2))
    return total


def run_baresip(home, config: str, *args: str, timeout: float = 30) -> str:
    """Run baresip from ``home`` (its ``accounts`` already written) and return what it
    printed, colours removed.

    ``config`` is baresip's config with ``{port}`` where its SIP port goes. baresip binds
    UDP, TCP and TLS on that port and the port can be taken by another process between
    ``free_port()`` and its bind (seen in CI: "SIP/TLS transport failed: Address already
    in use"); each such try gets a new port, anything else is returned as it is.
    """
    import subprocess

    from tests.conftest import free_port

    for _ in range(5):
        (home / "config").write_text(config.format(port=free_port()))
        proc = subprocess.run(
            ["baresip", "-f", str(home), *args],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        out = re.sub(r"\x1b\[[0-9;]*m", "", proc.stdout + proc.stderr)
        if "Address already in use" not in out:
            return out
    return out


def closing_factory(cls):
    """The body of a factory fixture: yields ``make(**kw)`` building ``cls(**kw)`` (a class
    or any callable returning something with ``close()``), and
    closes everything it made once the test is over (``yield from closing_factory(X)``)."""
    made = []

    def make(**kw):
        obj = cls(**kw)
        made.append(obj)
        return obj

    yield make
    for obj in made:
        obj.close()


def npm_install_node_smpp() -> str | None:
    """Install node-smpp into tests/interop once; the reason it could not be, or None."""
    if (INTEROP / "node_modules" / "smpp" / "package.json").exists():
        return None
    if not shutil.which("npm"):
        return "npm is not installed (needed to install node-smpp for the interop SMSC)"
    res = subprocess.run(
        ["npm", "install", "--no-audit", "--no-fund", "--loglevel=error"],
        cwd=INTEROP,
        capture_output=True,
        text=True,
        timeout=300,
    )
    if res.returncode != 0:
        return f"npm install of node-smpp failed: {res.stdout[-500:]}{res.stderr[-1500:]}"
    return None


class NodeSmsc:
    """tests/interop/smsc.js (node-smpp, an SMSC that shares no code with UVox) as a
    child process, driven through its control port. ``port`` makes it listen on that
    SMPP port: an SMSC that comes back where it was; ``record`` a file where it appends
    each accepted destination before answering (read it when the SMSC was killed)."""

    def __init__(
        self, system_id: str = "uvox", password: str = "pw", port: int | None = None, record: Path | None = None
    ) -> None:
        self.system_id, self.password = system_id, password
        cmd = ["node", str(INTEROP / "smsc.js"), "--system-id", system_id, "--password", password]
        if port is not None:
            cmd += ["--port", str(port)]
        if record is not None:  # each accepted destination, one a line: a count that outlives a kill
            cmd += ["--record", str(record)]
        self.proc = subprocess.Popen(cmd, cwd=INTEROP, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline() if self.proc.stdout else ""
        if not line:
            raise RuntimeError(
                f"node smsc.js did not start: {self.proc.stderr.read()[-2000:] if self.proc.stderr else ''}"
            )
        info = json.loads(line)
        self.port, self.control = info["smpp_port"], info["control_port"]
        self.http = httpx.Client(base_url=f"http://127.0.0.1:{self.control}", timeout=30)
        self.started = time.monotonic()

    def configure(self, **kw) -> dict:
        return self.http.post("/config", json=kw).json()

    def send(self, pdu: str, **kw) -> int:
        return self.http.post("/send", json={"pdu": pdu, **kw}).json()["sent"]

    def disconnect(self) -> int:
        return self.http.post("/disconnect").json()["closed"]

    def messages(self, dest: str | None = None) -> list[dict]:
        got = self.http.get("/messages").json()
        return [m for m in got if dest is None or m["destination_addr"] == dest]

    def accepted(self) -> dict[str, int]:
        """How many submit_sm the SMSC accepted for each destination (counted in node)."""
        return self.http.get("/accepted").json()

    def events(self, kind: str | None = None) -> list[dict]:
        got = self.http.get("/events").json()
        return [e for e in got if kind is None or e["event"] == kind]

    def sessions(self) -> list[dict]:
        return self.http.get("/sessions").json()

    def close(self, kill: bool = False) -> None:
        self.http.close()
        if self.proc.poll() is None:
            self.proc.kill() if kill else self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        for f in (self.proc.stdout, self.proc.stderr):
            if f:
                f.close()


def serve_processes(pid: int) -> dict[str, set[int]]:
    """The live children of a `uvox serve` supervisor by role, from the names they
    give themselves (/proc/PID/comm: uvox-http, uvox-delivery, uvox-smsc-sim);
    multiprocessing's resource tracker and zombies are left out."""
    found: dict[str, set[int]] = {}
    base = Path(f"/proc/{pid}/task")
    kids: set[int] = set()
    try:
        for task in base.iterdir():
            kids.update(int(x) for x in (task / "children").read_text().split())
    except OSError:
        return found
    for kid in kids:
        try:
            name = Path(f"/proc/{kid}/comm").read_text().strip()
            state = Path(f"/proc/{kid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if name.startswith("uvox-") and state != "Z":
            found.setdefault(name.removeprefix("uvox-"), set()).add(kid)
    return found
