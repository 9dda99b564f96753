"""Rate decks: import time of a 100,000-row CSV, and longest-prefix lookups per second.

python bench/rates_bench.py [--rows 100000] [--database-url URL]
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from uvox.billing import plans  # noqa: E402
from uvox.config import Settings  # noqa: E402
from uvox.db.session import read  # noqa: E402
from uvox.platform import Platform  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--database-url", default="")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="uvox-rates-"))
    url = args.database_url or f"sqlite:///{work / 'rates.db'}"
    p = Platform.open(Settings.from_env({"UVOX_DATABASE_URL": url}), migrate=True)
    rng = random.Random(7)
    prefixes = set()
    while len(prefixes) < args.rows:
        prefixes.add(str(rng.randint(1, 99)) + str(rng.randint(0, 10 ** rng.randint(1, 6))))
    lines = ["dialprefix,destination,rateinitial,smsrate"]
    lines += [
        f"{pfx},Destination {i},0.0{rng.randint(100, 999)},0.00{rng.randint(10, 99)}" for i, pfx in enumerate(prefixes)
    ]
    deck = work / "deck.csv"
    deck.write_text("\n".join(lines))
    plans.create_plan(p.engine, "bench", "US$")
    t0 = time.perf_counter()
    with deck.open() as fh:
        n = plans.import_rates(p.engine, "bench", fh)
    t_import = time.perf_counter() - t0
    pid = plans.get_plan(p.engine, "bench").id
    t0 = time.perf_counter()
    count = sum(1 for _ in plans.iter_rates(p.engine, pid))
    t_iter = time.perf_counter() - t0
    numbers = [f"+{rng.randint(1, 99)}{rng.randint(10**8, 10**9)}" for _ in range(20_000)]
    plans.clear_cache(p.engine)
    t0 = time.perf_counter()
    with read(p.engine) as conn:
        for num in numbers:
            plans._lookup_db(conn, pid, num)
    t_lookup = time.perf_counter() - t0
    plans.clear_cache(p.engine)
    t0 = time.perf_counter()
    with read(p.engine) as conn:
        plans.lookup(conn, pid, numbers[0])
        t_load = time.perf_counter() - t0
        t0 = time.perf_counter()
        for num in numbers:
            plans.lookup(conn, pid, num)
    t_cached = time.perf_counter() - t0
    print(
        f"database {url.split(':')[0]}: import {n} rows in {t_import:.2f}s ({n / t_import:,.0f} rows/s); "
        f"stream all {count} in {t_iter:.2f}s; SQL longest-prefix lookups {len(numbers) / t_lookup:,.0f}/s; "
        f"deck load {t_load:.2f}s, then in-memory lookups {len(numbers) / t_cached:,.0f}/s"
    )


if __name__ == "__main__":
    main()
