"""A real Kamailio, with the shipped configuration, authenticates REGISTER from
the SIP accounts the platform writes; account changes apply without a restart."""

from __future__ import annotations

from uvox.softphone import kamailio, service

DOMAIN = "sip.uvox.test"


def test_register_follows_platform_changes_without_restart(pg_url, pg_engine, make_customer, sip_tools, tmp_path):
    port = sip_tools["free_udp_port"]()
    cfg = kamailio.render(database_url=pg_url, sip_domain=DOMAIN, listens=[f"udp:127.0.0.1:{port}"])
    server = sip_tools["Kamailio"](cfg, port, DOMAIN, tmp_path)
    register = lambda user, pw: sip_tools["register"](port, DOMAIN, user, pw, tmp_path)  # noqa: E731
    account_id, _ = make_customer(pg_engine)
    server.start()
    try:
        pid = server.proc.pid
        creds = service.create_sip_account(pg_engine, account_id, domain=DOMAIN)
        user = creds.account.username
        assert register(user, creds.password) == 200
        assert register(user, creds.password + "x") == 401

        new = service.reset_sip_password(pg_engine, account_id, creds.account.id)
        assert register(user, creds.password) == 401
        assert register(user, new.password) == 200

        service.delete_sip_account(pg_engine, account_id, creds.account.id)
        assert register(user, new.password) == 401
        assert server.proc.poll() is None and server.proc.pid == pid  # never restarted
    finally:
        server.stop()
