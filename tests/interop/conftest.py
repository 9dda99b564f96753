"""Fixtures for interoperability: an independent SMSC (node-smpp) in its own process.

The SMSC is ``tests/interop/smsc.js`` on the npm package ``smpp`` (node-smpp), which
shares no code with UVox or smpplib. npm installs it into ``tests/interop/node_modules``
the first time (scripts/test.sh does it too); without node or npm the tests skip,
unless UVOX_REQUIRE_ALL=1.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import httpx
import pytest

from tests.conftest import uvox_require
from tests.dispatch.conftest import _poll, connector_to, dispatcher  # noqa: F401  (fixtures reused here)

HERE = Path(__file__).resolve().parent


def _npm_install() -> str | None:
    """Install node-smpp once; the reason it could not be, or None."""
    if (HERE / "node_modules" / "smpp" / "package.json").exists():
        return None
    if not shutil.which("npm"):
        return "npm is not installed (needed to install node-smpp for the interop SMSC)"
    res = subprocess.run(["npm", "install", "--no-audit", "--no-fund", "--loglevel=error"], cwd=HERE,
                         capture_output=True, text=True, timeout=300)
    if res.returncode != 0:
        return f"npm install of node-smpp failed: {res.stdout[-500:]}{res.stderr[-1500:]}"
    return None


@pytest.fixture(scope="session")
def node_smpp_ready() -> None:
    uvox_require(shutil.which("node") is not None, "node is not installed (the interop SMSC is node-smpp)")
    reason = _npm_install()
    uvox_require(reason is None, reason or "")


class NodeSmsc:
    """smsc.js as a child process, driven through its control port."""

    def __init__(self, system_id: str = "uvox", password: str = "pw") -> None:
        self.system_id, self.password = system_id, password
        self.proc = subprocess.Popen(["node", str(HERE / "smsc.js"), "--system-id", system_id,
                                      "--password", password],
                                     cwd=HERE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"node smsc.js did not start: {self.proc.stderr.read()[-2000:]}")
        info = json.loads(line)
        self.port, self.control = info["smpp_port"], info["control_port"]
        self.http = httpx.Client(base_url=f"http://127.0.0.1:{self.control}", timeout=10)

    def configure(self, **kw) -> dict:
        return self.http.post("/config", json=kw).json()

    def send(self, pdu: str, **kw) -> int:
        return self.http.post("/send", json={"pdu": pdu, **kw}).json()["sent"]

    def disconnect(self) -> int:
        return self.http.post("/disconnect").json()["closed"]

    def messages(self, dest: str | None = None) -> list[dict]:
        got = self.http.get("/messages").json()
        return [m for m in got if dest is None or m["destination_addr"] == dest]

    def events(self, kind: str | None = None) -> list[dict]:
        got = self.http.get("/events").json()
        return [e for e in got if kind is None or e["event"] == kind]

    def sessions(self) -> list[dict]:
        return self.http.get("/sessions").json()

    def close(self) -> None:
        self.http.close()
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        for f in (self.proc.stdout, self.proc.stderr):
            f.close()


@pytest.fixture
def node_smsc(node_smpp_ready):
    """Factory: start an independent SMSC; stopped at the end of the test."""
    made: list[NodeSmsc] = []

    def make(**kw) -> NodeSmsc:
        s = NodeSmsc(**kw)
        made.append(s)
        return s

    yield make
    for s in made:
        s.close()


@pytest.fixture
def node_connector(platform):
    """Factory: a connector (default route) to a NodeSmsc, as `uvox admin connector add` stores it."""
    from uvox.smpp import registry

    def add(smsc: NodeSmsc, name: str = "node", **kw):
        kw.setdefault("system_id", smsc.system_id)
        kw.setdefault("password", smsc.password)
        return registry.add(platform.engine, name, host="127.0.0.1", port=smsc.port, **kw)

    return add
