"""Fixtures of the robustness suite: the real `uvox serve` on a provisioned database,
a private PostgreSQL cluster, and the figures each test prints at its end."""

from __future__ import annotations

import json

import pytest

from tests.conftest import UvoxProcess, free_port, new_database_url, uvox_require
from tests.helpers import closing_factory
from tests.robustness.harness import Load, PrivateCluster, pg_bin, provision


@pytest.fixture
def figures(request, record_property):
    """A dict the test fills as it measures; printed at its end (``-s``) and in the
    run's "robustness figures" summary, even when an assertion failed."""
    got: dict = {}
    yield got
    if got:
        line = json.dumps(got, default=str)
        print(f"\n{request.node.nodeid}: {line}")
        record_property("robustness_figures", line)


@pytest.fixture
def serve(tmp_path, tmp_path_factory, pg_databases):
    """Factory: provision a new database (SQLite, PostgreSQL, or the URL given) with a
    funded account and a connector to ``smsc``, then start the real `uvox serve` on it.
    Returns (process, provisioned account)."""
    started: list[UvoxProcess] = []

    def start(kind: str = "sqlite", smsc=None, url: str | None = None, window: int = 64, **env: str):
        url = url or new_database_url(kind, tmp_path_factory, pg_databases)
        acct = provision(url, smsc, window=window)
        env.setdefault("UVOX_SMSC_SIM", "0")
        proc = UvoxProcess(url, tmp_path, **env).start()
        started.append(proc)
        return proc, acct

    yield start
    for proc in started:
        proc.stop()


@pytest.fixture
def private_pg():
    """A PostgreSQL cluster of the test's own (initdb + pg_ctl, a free port, a temporary
    directory) that it may stop and start; removed at the end."""
    bindir = pg_bin()
    uvox_require(bindir is not None, "initdb/pg_ctl not found (PostgreSQL server binaries, /usr/lib/postgresql/*/bin)")
    cluster = PrivateCluster(bindir, free_port())
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.destroy()


@pytest.fixture
def start_load():
    """Factory: ``start_load(url=..., auth=..., **kw)`` is a started :class:`Load`, stopped
    at the end even when the test failed first (left running it would slow the next tests)."""
    yield from closing_factory(lambda **kw: Load(**kw).start())
