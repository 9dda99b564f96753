"""A send wakes the dispatchers of other processes at once on PostgreSQL (dispatch/wake.py).

The dispatcher here polls (and runs its connector round, which also wakes the
claim loop) only once a minute, and is not told by this process's
intake (as a dispatcher in `uvox worker`, or beside `uvox serve --workers N`'s HTTP
processes, is not): the only way it can deliver within seconds is PostgreSQL's
notification, sent by the API's process after the send committed.
"""

import pytest

from .test_delivery import send, sim_records, wait_state

pytestmark = pytest.mark.timeout(60)
backend = pytest.mark.parametrize("backend", ["postgresql"], indirect=True)


@backend
def test_a_send_wakes_a_dispatcher_of_another_process_at_once(
    platform, http, customer, smsc, connector_to, dispatcher, poll
):
    connector_to(smsc)
    dt = dispatcher(poll=60.0, manage_interval=60.0)
    dt.wait_bound(["carrier"])
    # The first send is claimed by the start-up round; the claim loop then sleeps a minute.
    first = send(http, customer, "+13055550101", "uno")
    wait_state(http, customer, first["id"], "delivered", poll)

    platform.queued.unsubscribe(dt.d.poke)  # from here on, as in another process
    assert poll(lambda: dt.d._listener is not None and dt.d._listener.listening.is_set(), timeout=10)
    second = send(http, customer, "+13055550102", "dos")
    wait_state(http, customer, second["id"], "delivered", poll, timeout=15)
    assert [m["text"] for m in sim_records(smsc, dest="13055550102")] == ["dos"]


@backend
def test_listening_connections_never_go_back_to_the_pool_in_autocommit(platform, poll):
    """Given back in autocommit, a pooled connection would run the next transaction
    statement by statement, its SELECT ... FOR UPDATE locking nothing."""
    from uvox.dispatch import wake

    announcer = wake.Announcer(platform.engine)
    listener = wake.Listener(platform.engine, lambda: None)
    assert poll(listener.listening.is_set, timeout=10)
    announcer.announce()
    announcer.stop()
    listener.stop()
    conns = [platform.engine.connect() for _ in range(platform.engine.pool.size() + 2)]
    try:
        assert [c.connection.driver_connection.autocommit for c in conns] == [False] * len(conns)
    finally:
        for c in conns:
            c.close()
