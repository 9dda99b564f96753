"""Fixtures for interoperability: a connector to the independent SMSC.

The SMSC itself (``node_smsc``, node-smpp in its own process) is a fixture of
tests/conftest.py, shared with tests/robustness.
"""

from __future__ import annotations

import pytest

from tests.dispatch.conftest import _poll, connector_to, dispatcher  # noqa: F401  (fixtures reused here)
from tests.helpers import NodeSmsc


@pytest.fixture
def node_connector(platform):
    """Factory: a connector (default route) to a NodeSmsc, as `uvox admin connector add` stores it."""
    from uvox.smpp import registry

    def add(smsc: NodeSmsc, name: str = "node", **kw):
        kw.setdefault("system_id", smsc.system_id)
        kw.setdefault("password", smsc.password)
        return registry.add(platform.engine, name, host="127.0.0.1", port=smsc.port, secret=platform.secret, **kw)

    return add
