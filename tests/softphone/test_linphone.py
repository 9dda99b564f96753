"""A real Linphone (liblinphone, through Debian's ``linphonec``) scans the QR.

sipp and baresip prove the digest exchange with a password; a Linphone phone
never sees that password. It fetches the URL in the QR, applies the lpconfig
XML with liblinphone's own parser and must then register with the ``ha1`` it
got, nothing else.

What ``linphonec`` needs to behave as a phone would in a container:
- a writable data directory (``$HOME/.local/share/linphone``): when its
  ``linphone.db`` cannot be opened, ``linphone_core_start`` stops before the
  provisioning step and the core never reaches the On state (no HTTP, no REGISTER);
- commands on stdin: its readline hook is what iterates the core, so the
  process is kept fed with ``status register`` until it answers.
"""

from __future__ import annotations

import os
import queue
import shutil
import subprocess
import threading
import time

import httpx

from tests.conftest import run_uvox, uvox_require

DOMAIN = "sip.uvox.test"


class Linphonec:
    """One ``linphonec`` process with its own HOME, fed on stdin, read line by line."""

    def __init__(self, home, config_uri: str | None = None, log_name: str = "linphonec.log"):
        """A new phone given ``config_uri`` (what scanning the QR does), or the
        same phone started again with the configuration it kept."""
        self.home = home
        (home / ".local" / "share" / "linphone").mkdir(parents=True, exist_ok=True)
        self.rc = home / "linphonerc"
        if config_uri is not None:
            # sip_port=-1: a random port, so parallel suites do not collide.
            self.rc.write_text(
                f"[misc]\nconfig-uri={config_uri}\n\n[sip]\nsip_port=-1\nsip_tcp_port=-1\nsip_tls_port=-1\n"
            )
        self.log = home / log_name
        env = {k: v for k, v in os.environ.items() if not k.startswith("XDG_")}
        env["HOME"] = str(home)
        self.proc = subprocess.Popen(
            ["linphonec", "-c", str(self.rc), "-d", "6", "-l", str(self.log)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            bufsize=1,
            cwd=home,
            env=env,
            start_new_session=True,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.output: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.lines.put(line)

    def send(self, command: str) -> None:
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()

    def registration(self, wait: float = 60) -> str:
        """Ask ``status register`` until linphonec says it is registered; that line.
        A refused REGISTER leaves it at ``registered=-1``: the wait then fails."""
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline and self.proc.poll() is None:
            self.send("status register")
            end = time.monotonic() + 1
            while time.monotonic() < end:
                try:
                    line = self.lines.get(timeout=0.2)
                except queue.Empty:
                    continue
                self.output.append(line)
                if "registered, identity=" in line:
                    return line.split("linphonec> ")[-1].strip()
        raise AssertionError(f"linphonec never registered:\n{''.join(self.output)[-2000:]}\n{self.log_text()[-4000:]}")

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def stop(self) -> None:
        if self.proc.poll() is None:
            try:
                self.send("quit")
                self.proc.wait(20)
            except (OSError, subprocess.TimeoutExpired):
                os.killpg(self.proc.pid, 9)
                self.proc.wait(5)
        # The pipes are ours to close (left to the collector, each is a ResourceWarning
        # in whichever test runs then); the reader ends at the end of the output first.
        self._reader.join(5)
        for pipe in (self.proc.stdin, self.proc.stdout):
            try:
                pipe.close()
            except OSError:
                pass  # stdin's last buffered write to a phone that is gone


def test_linphone_provisions_from_the_qr_and_registers_with_ha1(uvox_server, sip_tools, tmp_path):
    uvox_require(shutil.which("linphonec") is not None, "linphonec is not installed (apt: linphone-cli)")
    uvox_require(shutil.which("zbarimg") is not None, "zbarimg is not installed (apt: zbar-tools)")
    port = sip_tools["free_udp_port"]()
    server = uvox_server("postgresql", UVOX_SIP_DOMAIN=DOMAIN, UVOX_SIP_PROXY=f"127.0.0.1:{port}")
    number = server.admin("account", "create", "--email", "linphone@example.com")["accountnumber"]
    created = server.admin("sip", "create", number, "--transport", "udp", "--caller-id", "+13055550100")
    user, password = created["username"], created["password"]
    cfg = run_uvox(
        ["sip", "kamailio-cfg", "--listen", f"udp:127.0.0.1:{port}"], server.database_url, UVOX_SIP_DOMAIN=DOMAIN
    )
    assert cfg.returncode == 0, cfg.stderr
    kam = sip_tools["Kamailio"](cfg.stdout, port, DOMAIN, tmp_path)
    kam.start()
    phone = None
    try:
        token = server.admin("sip", "provision", user, "--kind", "linphone")["token"]
        png = httpx.get(f"{server.url}/prov/{token}/qr.png")
        assert png.status_code == 200
        (tmp_path / "qr.png").write_bytes(png.content)
        scanned = subprocess.run(
            ["zbarimg", "--raw", "-q", str(tmp_path / "qr.png")], capture_output=True, text=True
        ).stdout.strip()
        assert scanned == f"{server.url}/prov/{token}"

        home = tmp_path / "linphone-home"
        home.mkdir()
        phone = Linphonec(home, scanned)
        # The caller id the operator set is the display name Linphone registers with.
        assert phone.registration() == f'registered, identity="+13055550100" <sip:{user}@{DOMAIN}> duration=3600'
        log = phone.log_text()
        assert f"GET /prov/{token} " in log
        assert "SIP/2.0 200 OK" in log and "Authorization:" in log
        phone.stop()

        # What the phone kept is the ha1: the password was never sent to it.
        kept = phone.rc.read_text()
        assert password not in kept and password not in log
        assert "ha1=" in kept and "passwd" not in kept
        # The token is spent, and Linphone was told to forget the URL.
        assert httpx.get(scanned).status_code == 404
        assert "config-uri" not in kept

        # Restarted, the phone registers from what it kept, without asking for the spent code.
        phone = Linphonec(home, log_name="restart.log")
        assert phone.registration().startswith("registered, identity=")
        assert "/prov/" not in phone.log_text()
    finally:
        if phone is not None:
            phone.stop()
        kam.stop()
