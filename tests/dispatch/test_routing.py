"""Route choice: longest dial prefix, then priority, failover to the next tier, the simulator as default."""

from uvox.config import Settings
from uvox.db.session import read
from uvox.dispatch.routing import SIM_NAME, Route, RouteTable, load
from uvox.smpp import registry

TABLE = RouteTable(
    [
        Route("", "default-a"),
        Route("", "default-b"),
        Route("58", "venezuela"),
        Route("58412", "digitel"),
        Route("58412", "digitel-backup", priority=5),
    ]
)
ALL = {"default-a", "default-b", "venezuela", "digitel", "digitel-backup"}


def test_longest_prefix_wins_then_priority():
    assert TABLE.tiers("+584121234567") == [["digitel"], ["digitel-backup"], ["venezuela"], ["default-a", "default-b"]]
    assert TABLE.choose("+584121234567", up=ALL, mine=ALL) == "digitel"
    assert TABLE.choose("+584241234567", up=ALL, mine=ALL) == "venezuela"


def test_failover_walks_down_the_tiers():
    assert TABLE.choose("+584121234567", up=ALL - {"digitel"}, mine=ALL) == "digitel-backup"
    assert TABLE.choose("+584121234567", up={"venezuela", "default-b"}, mine=ALL) == "venezuela"
    assert TABLE.choose("+584121234567", up={"default-b"}, mine=ALL) == "default-b"
    assert TABLE.choose("+584121234567", up=set(), mine=ALL) is None


def test_equal_routes_prefer_the_one_this_worker_holds():
    assert TABLE.choose("+13055550000", up={"default-a", "default-b"}, mine={"default-b"}) == "default-b"
    assert TABLE.choose("+13055550000", up={"default-a", "default-b"}, mine={"default-a"}) == "default-a"
    # Held by nobody here: still routed (tagged for the worker that holds it).
    assert TABLE.choose("+13055550000", up={"default-a"}, mine=set()) == "default-a"


def test_simulator_is_the_default_route_only_until_a_connector_takes_over(platform):
    settings = Settings(smsc_sim=True)
    with read(platform.engine) as c:
        specs, table = load(c, settings)
    assert set(specs) == {SIM_NAME} and specs[SIM_NAME].simulated
    registry.add(
        platform.engine,
        "usa",
        host="127.0.0.1",
        port=2776,
        system_id="u",
        password="p",
        secret=platform.secret,
        prefixes=["1"],
    )
    with read(platform.engine) as c:
        specs, table = load(c, settings)
    assert set(specs) == {SIM_NAME, "usa"}  # a prefix-limited connector leaves the rest to the simulator
    assert table.choose("+13055550000", up=set(specs), mine=set(specs)) == "usa"
    assert table.choose("+34600000000", up=set(specs), mine=set(specs)) == SIM_NAME
    registry.add(
        platform.engine, "world", host="127.0.0.1", port=2777, system_id="w", password="p", secret=platform.secret
    )
    with read(platform.engine) as c:
        specs, table = load(c, settings)
    assert set(specs) == {"usa", "world"}
    registry.set_enabled(platform.engine, "usa", False)
    with read(platform.engine) as c:
        specs, _ = load(c, Settings(smsc_sim=False))
    assert set(specs) == {"world"}
    registry.set_enabled(platform.engine, "usa", True)
    registry.set_enabled(platform.engine, "world", False)
    with read(platform.engine) as c:
        specs, _ = load(c, settings)
    assert set(specs) == {"usa", SIM_NAME}


def test_connector_states_for_the_portal(platform, smsc, connector_to, dispatcher, poll):
    from uvox.dispatch.status import connector_states, simulator_active
    from uvox.platform import Platform

    sim_platform = Platform(platform.settings.with_(smsc_sim=True), platform.engine)
    assert simulator_active(sim_platform)
    connector_to(smsc, "live")
    registry.add(
        platform.engine,
        "dead",
        host="127.0.0.1",
        port=1,
        system_id="d",
        password="p",
        secret=platform.secret,
        prefixes=["44"],
    )
    registry.add(
        platform.engine,
        "off",
        host="127.0.0.1",
        port=1,
        system_id="o",
        password="p",
        secret=platform.secret,
        prefixes=["33"],
    )
    registry.set_enabled(platform.engine, "off", False)
    assert not simulator_active(sim_platform)
    assert connector_states(platform) == {"live": "not held", "dead": "not held", "off": "disabled"}
    d = dispatcher()
    d.wait_bound(["live"])
    assert poll(lambda: connector_states(platform) == {"live": "bound", "dead": "down", "off": "disabled"})
