"""Helpers shared by tests of several packages (imported, never fixtures)."""

from __future__ import annotations

import re


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
        proc = subprocess.run(["baresip", "-f", str(home), *args], stdin=subprocess.DEVNULL,
                              capture_output=True, text=True, timeout=timeout)
        out = re.sub(r"\x1b\[[0-9;]*m", "", proc.stdout + proc.stderr)
        if "Address already in use" not in out:
            return out
    return out
