"""Soak: the robustness suite's load against the README's `uvox serve` for a long time.

`uvox serve` as the README starts it (SQLite, the dispatcher inside, every default)
with one connector to node-smpp (tests/interop/smsc.js, an SMSC that is not ours and
counts every text it accepts). 16 HTTP clients send one text each, at --rate in all,
for --minutes (default 30). Every 10 s it prints the resident memory of each process
of the platform; at the end whether that memory was flat after the first minute, and
accepted / delivered / lost / duplicated.

    python bench/soak.py [--minutes 30] [--rate 200] [--workers N]

"Flat": the least-squares slope of the total over the last half of the samples
taken after the first minute is at most 0.5 MB/min (still growing is not flat,
however little it grew so far). Every number and text this load sends is new, so
two bounded caches fill before memory can be flat: the normalised numbers (65,536
entries, 13.6 MB when full: after 5.5 minutes at 200 texts/s) and the encoded texts
(4,096, 1.6 MB). A run shorter than about 8 minutes ends while they still fill.
Needs node and tests/interop/node_modules (`npm install` in tests/interop).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT))

from tests.conftest import UvoxProcess  # noqa: E402
from tests.helpers import NodeSmsc  # noqa: E402
from tests.robustness.harness import Load, process_rss, provision, states, wait_settled  # noqa: E402

SAMPLE_EVERY = 10.0


def slope_mb_per_min(points: list[tuple[float, float]]) -> float:
    if len(points) < 2:
        return 0.0
    n = len(points)
    mx = sum(t for t, _ in points) / n
    my = sum(v for _, v in points) / n
    den = sum((t - mx) ** 2 for t, _ in points) or 1.0
    return sum((t - mx) * (v - my) for t, v in points) / den * 60


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--minutes", type=float, default=30.0)
    ap.add_argument("--rate", type=float, default=200.0, help="texts a second offered in all")
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--workers", type=int, default=0, help="uvox serve --workers (the README sets none)")
    args = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="uvox-soak-"))
    url = f"sqlite:///{work / 'uvox.db'}"
    smsc = NodeSmsc()
    smsc.configure(keep_messages=False)  # only the per-destination tally: memory stays small
    acct = provision(url, smsc)
    extra = {"UVOX_LOG_LEVEL": "WARNING"}
    extra["UVOX_WORKERS"] = str(args.workers)  # 0: the README's default, one HTTP process per core
    srv = UvoxProcess(url, work, **extra).start()
    print(f"uvox serve pid {srv.proc.pid} on {srv.url}, database {url}, log {srv.log}", flush=True)
    load = Load(srv.url, acct.auth, clients=args.clients, rate=args.rate).start()
    started = time.monotonic()
    totals: list[tuple[float, float]] = []
    try:
        while (elapsed := time.monotonic() - started) < args.minutes * 60:
            time.sleep(SAMPLE_EVERY - (elapsed % SAMPLE_EVERY))
            t = time.monotonic() - started
            per = process_rss(srv.proc.pid)
            total = sum(per.values())
            totals.append((t, total))
            each = " ".join(f"{pid}:{mb:.1f}" for pid, mb in sorted(per.items()))
            print(
                f"{t:7.0f}s accepted {len(load.accepted):8d} ({load.per_second:6.1f}/s) rss {total:7.1f} MB [{each}]",
                flush=True,
            )
            if srv.proc.poll() is not None:
                print("uvox serve exited", flush=True)
                break
    finally:
        load.stop()
    c = wait_settled(url, load.accepted, lambda: [smsc], timeout=300)
    final_states = states(url)
    srv.stop()
    smsc.close()

    after = [(t, v) for t, v in totals if t >= 60]
    if after:
        base, last = after[0][1], after[-1][1]
        slope = slope_mb_per_min(after)
        late = slope_mb_per_min(after[len(after) // 2 :])
        flat = late <= 0.5
        print(
            f"memory: {base:.1f} MB after the first minute, {last:.1f} MB at the end, "
            f"max {max(v for _, v in after):.1f} MB, slope {slope:+.2f} MB/min after the first minute, "
            f"{late:+.2f} MB/min in the last half -> {'flat' if flat else 'NOT flat'}"
        )
    else:
        flat = True
        print("memory: the run was shorter than a minute; nothing to judge")
    print(
        f"accepted {c.accepted}, delivered {final_states.get('delivered', 0)}, "
        f"received by the SMSC {c.received}, lost {len(c.lost)}, duplicated {c.duplicated}, "
        f"answers {dict(load.answers)}, {load.per_second:.1f} accepted/s"
    )
    return 0 if flat and not c.lost and not c.duplicated else 1


if __name__ == "__main__":
    sys.exit(main())
