#!/usr/bin/env bash
# Install everything the tests need, then run them. The README's test command.
#
# - a virtualenv in .venv with uvox and its test extras;
# - on a Debian machine where we are root: the system tools the integration tests
#   drive (PHP, Chromium, Kamailio, sipp, zbar) and a running PostgreSQL;
# - then pytest. Tests whose tool is still missing skip with the reason, unless
#   UVOX_REQUIRE_ALL=1 (CI), which turns such a skip into a failure.
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip >/dev/null
.venv/bin/python -m pip install -q -e '.[test]'

APT_PACKAGES="baresip linphone-cli php-cli php-curl php-xml php-mbstring chromium kamailio kamailio-postgres-modules kamailio-utils-modules kamailio-tls-modules sip-tester zbar-tools openssl postgresql-client"
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  missing=""
  for p in $APT_PACKAGES; do
    dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"
  done
  if [ -n "$missing" ]; then
    echo "installing system packages:$missing"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null
  fi
  # Debian starts Kamailio as a service on install; the tests run their own.
  if command -v systemctl >/dev/null; then systemctl disable --now kamailio >/dev/null 2>&1 || true; fi
  pkill -x kamailio >/dev/null 2>&1 || true
  # PostgreSQL: the tests use 127.0.0.1:5432 (database `test`); start it if it is installed but down.
  if ! (echo > /dev/tcp/127.0.0.1/5432) 2>/dev/null && ls /etc/postgresql >/dev/null 2>&1; then
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start || true
    for _ in $(seq 1 30); do (echo > /dev/tcp/127.0.0.1/5432) 2>/dev/null && break; sleep 1; done
  fi
  # Two test workers each run `uvox serve` processes (with their pools), Kamailio and
  # `uvox worker`s against it at once: PostgreSQL's default of 100 connections runs
  # out ("too many clients already"). Raised once, on a local cluster we may restart.
  if command -v psql >/dev/null && ls /etc/postgresql >/dev/null 2>&1; then
    max=$(psql -h 127.0.0.1 -U postgres -d test -Atc "show max_connections" 2>/dev/null || echo 0)
    if [ "${max:-0}" -gt 0 ] && [ "$max" -lt 400 ]; then
      echo "raising PostgreSQL's max_connections from $max to 400 (restarts the local cluster)"
      psql -h 127.0.0.1 -U postgres -d test -qc "ALTER SYSTEM SET max_connections = 400"
      pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main restart
      for _ in $(seq 1 30); do (echo > /dev/tcp/127.0.0.1/5432) 2>/dev/null && break; sleep 1; done
    fi
  fi
fi

# The interop tests deliver to node-smpp, an SMPP server that is not ours (npm package "smpp").
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null && ! command -v npm >/dev/null; then
  echo "installing system packages: nodejs npm"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null
fi
if command -v npm >/dev/null && [ ! -f tests/interop/node_modules/smpp/package.json ]; then
  (cd tests/interop && npm install --no-audit --no-fund --loglevel=error)
fi

# Lint and format first (pyproject.toml [tool.ruff]): a finding, or a file `ruff format`
# would change, fails the run before any test.
.venv/bin/python -m ruff check src tests bench
.venv/bin/python -m ruff format --check src tests bench
# Types (pyproject.toml [tool.mypy]: strict for the packages listed there).
.venv/bin/python -m mypy

set +e
# Two workers (pytest-xdist): most tests wait on real processes (Kamailio, sipp,
# uvox serve, Chromium), so two at a time halve the wall time on a 2-core machine.
# Every test makes its own database, ports and directories, so they never collide.
# Work stealing: a worker that runs out takes queued tests from the other, so the
# run does not end with one worker alone on a tail of slow Kamailio tests.
.venv/bin/python -m pytest -q -p no:cacheprovider -n "${UVOX_TEST_WORKERS:-2}" --dist worksteal "$@"
rc=$?
set -e
# pytest's 5 means "no tests collected": that is a failure for us, not a pass.
exit $rc
