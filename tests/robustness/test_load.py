"""Load: 16 HTTP clients send one text each, as fast as `uvox serve` answers, for a few
seconds; node-smpp counts what reached it. Every accepted text arrives exactly once
(no fault here, so docs/delivery.md allows no duplicate)."""

import time

import pytest

from tests.robustness.harness import rss_mb, wait_settled

pytestmark = pytest.mark.timeout(120)
SECONDS = 5


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_load_every_accepted_text_reaches_the_smsc_once(serve, node_smsc, figures, kind, start_load):
    smsc = node_smsc()
    srv, acct = serve(kind, smsc)
    load = start_load(url=srv.url, auth=acct.auth)
    time.sleep(SECONDS / 2)
    rss_mid = rss_mb(srv.proc.pid)
    time.sleep(SECONDS / 2)
    load.stop()
    done = time.monotonic()
    c = wait_settled(srv.database_url, load.accepted, lambda: [smsc])
    figures.update(
        accepted=c.accepted,
        per_second=round(load.per_second),
        lost=len(c.lost),
        duplicated=c.duplicated,
        drained_s=round(time.monotonic() - done, 1),
        answers=dict(load.answers),
        rss_mb=round(max(rss_mid, rss_mb(srv.proc.pid))),
    )
    assert c.accepted > 100 and set(load.answers) == {"200/005"}, load.answers
    assert not c.lost, c.lost[:10]
    assert c.duplicated == 0 and c.unheard == 0, c.doubled[:10]
