"""Client pieces a customer relies on before any request: the address they paste, the
price lookup for a number, and where the command line finds the key."""

from __future__ import annotations

import os
from decimal import Decimal

import click
import pytest

from uvox.client import Client, Rate, api_base, best_rate
from uvox.client_cli import load_config


@pytest.mark.parametrize(
    "pasted",
    [
        "https://my.unityvox.com",
        "https://my.unityvox.com/",
        "my.unityvox.com",
        "https://my.unityvox.com/api/get-api/v1/",
        "https://my.unityvox.com/api/get-api/v1",
        " https://my.unityvox.com/api/get-api/v1/sms-api?accountnumber=1 ",
    ],
)
def test_any_form_of_the_address_reaches_the_api_root(pasted):
    assert api_base(pasted) == "https://my.unityvox.com/api/get-api/v1/"


def test_no_address_means_the_public_platform_and_a_path_is_kept():
    assert api_base(None) == "https://my.unityvox.com/api/get-api/v1/"
    assert api_base("http://10.0.0.5:8000/uvox") == "http://10.0.0.5:8000/uvox/api/get-api/v1/"


def test_the_rate_for_a_number_is_the_longest_matching_prefix():
    rates = [
        Rate("58", "Venezuela", Decimal("0.02025")),
        Rate("5841", "Venezuela Mobile", Decimal("0.04410")),
        Rate("58412", "Venezuela Mobile Digitel", Decimal("0.11820")),
        Rate("56", "Chile", Decimal("0.02850")),
    ]
    assert best_rate(rates, "+58 412-555-0101").destination == "Venezuela Mobile Digitel"
    assert best_rate(rates, "0058 416 555 0101").destination == "Venezuela Mobile"
    assert best_rate(rates, "+582125550101").destination == "Venezuela"
    assert best_rate(rates, "+13055550101") is None


def test_a_client_needs_a_key():
    with pytest.raises(ValueError):
        Client("123", "")


@pytest.fixture
def clean_env(monkeypatch, tmp_path):
    for name in ("UVOX_API_KEY", "UVOX_ACCOUNT", "UVOX_URL", "UVOX_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    return tmp_path


def write_config(path, text, mode=0o600):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    os.chmod(path, mode)
    return path


def test_the_key_comes_from_the_default_config_file(clean_env):
    write_config(
        clean_env / "xdg" / "uvox" / "client.toml",
        'api_key = "K1"\naccount = "100200"\nurl = "http://127.0.0.1:9"\n',
    )
    config = load_config()
    assert (config.api_key, config.account, config.url) == ("K1", "100200", "http://127.0.0.1:9")


def test_the_environment_wins_over_the_file_and_uvox_config_names_the_file(clean_env, monkeypatch):
    path = write_config(clean_env / "elsewhere.toml", 'api_key = "FILEKEY"\naccount = "1"\n')
    monkeypatch.setenv("UVOX_CONFIG", str(path))
    monkeypatch.setenv("UVOX_API_KEY", "ENVKEY")
    config = load_config()
    assert config.api_key == "ENVKEY"
    assert config.account == "1"
    assert config.source == "environment"


def test_without_a_key_the_message_says_where_to_put_one(clean_env):
    with pytest.raises(click.UsageError, match="UVOX_API_KEY"):
        load_config()


def test_a_missing_uvox_config_file_is_reported(clean_env, monkeypatch):
    monkeypatch.setenv("UVOX_CONFIG", str(clean_env / "nope.toml"))
    with pytest.raises(click.UsageError, match="does not exist"):
        load_config()


def test_a_world_readable_key_file_is_warned_about(clean_env, capsys):
    write_config(clean_env / "xdg" / "uvox" / "client.toml", 'api_key = "K"\n', mode=0o644)
    load_config()
    assert "chmod 600" in capsys.readouterr().err


def test_without_xdg_config_home_the_file_is_under_the_home_directory(clean_env, monkeypatch):
    monkeypatch.delenv("XDG_CONFIG_HOME")
    monkeypatch.setenv("HOME", str(clean_env / "home"))
    write_config(clean_env / "home" / ".config" / "uvox" / "client.toml", 'api_key = "HK"\naccount = "7"\n')
    config = load_config()
    assert (config.api_key, config.account, config.source) == (
        "HK",
        "7",
        str(clean_env / "home" / ".config" / "uvox" / "client.toml"),
    )


def test_account_and_url_from_the_environment_win_over_the_file_and_are_stripped(clean_env, monkeypatch):
    write_config(
        clean_env / "xdg" / "uvox" / "client.toml", 'api_key = "K1"\naccount = "100200"\nurl = "http://127.0.0.1:9"\n'
    )
    monkeypatch.setenv("UVOX_ACCOUNT", " 42 ")
    monkeypatch.setenv("UVOX_URL", "http://10.0.0.1:8000 ")
    config = load_config()
    assert (config.api_key, config.account, config.url) == ("K1", "42", "http://10.0.0.1:8000")
    assert config.source == str(clean_env / "xdg" / "uvox" / "client.toml")
