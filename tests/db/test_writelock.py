"""The SQLite writer lock file, as an operator meets it on a server."""

from __future__ import annotations

import os
import shutil
import tempfile

import pytest
import sqlalchemy as sa

from uvox.config import Settings
from uvox.db.engine import make_engine
from uvox.db.session import write

NOBODY = 65534


def _as_nobody(fn) -> int:
    """Run ``fn`` in a forked child as user nobody; its exit status (0: it worked)."""
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        code = 1
        try:
            os.setgid(NOBODY)
            os.setuid(NOBODY)
            fn()
            code = 0
        finally:
            os._exit(code)
    return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])


def test_root_writing_first_does_not_lock_the_service_user_out():
    """The service runs as its own user; root runs one `uvox admin` command on the same
    database. The service must still be able to write afterwards."""
    if os.geteuid() != 0:
        pytest.skip("needs root, to act as root and as another user")
    home = tempfile.mkdtemp(prefix="uvox-perm-", dir="/tmp")
    try:
        os.chmod(home, 0o755)
        os.chown(home, NOBODY, NOBODY)
        url = f"sqlite:///{home}/uvox.db"
        engine = make_engine(Settings.from_env({"UVOX_DATABASE_URL": url}))

        def create():
            with write(engine) as conn:
                conn.exec_driver_sql("CREATE TABLE t (who TEXT)")
            engine.dispose()

        assert _as_nobody(create) == 0  # the service user's database...
        os.unlink(f"{home}/uvox.db-writer.lock")  # ...as an older UVox or sqlite3 left it
        with write(engine) as conn:  # root writes once
            conn.exec_driver_sql("INSERT INTO t VALUES ('root')")
        engine.dispose()

        def service_writes():
            with write(engine) as conn:
                conn.exec_driver_sql("INSERT INTO t VALUES ('service')")
            engine.dispose()

        assert _as_nobody(service_writes) == 0, sorted(os.listdir(home))
        # and root's write left the lock file as `ls -l` should show it: the service's
        lock = os.stat(f"{home}/uvox.db-writer.lock")
        assert (lock.st_uid, lock.st_gid) == (NOBODY, NOBODY)
        with engine.connect() as conn:
            assert sorted(conn.execute(sa.text("SELECT who FROM t")).scalars()) == ["root", "service"]
        engine.dispose()
    finally:
        shutil.rmtree(home, ignore_errors=True)
