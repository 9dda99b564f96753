"""The block formula and the time limit of VOICE.md, to the sixth decimal."""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from uvox.voice.rating import Tariff, whole_seconds


@pytest.mark.parametrize(
    "init,block,d,billed",
    [
        (60, 60, 0, 60),
        (60, 60, 1, 60),
        (60, 60, 60, 60),
        (60, 60, 61, 120),
        (60, 60, 119, 120),
        (30, 6, 29, 30),
        (30, 6, 30, 30),
        (30, 6, 31, 36),
        (30, 6, 36, 36),
        (30, 6, 37, 42),
        (1, 1, 0, 1),
        (1, 1, 7, 7),
        (0, 1, 0, 0),
        (0, 1, 5, 5),
        (0, 60, 1, 60),
        (6, 6, 13, 18),
    ],
)
def test_billed_seconds_follow_the_block_formula(init, block, d, billed):
    assert Tariff(D("0.01"), init_block=init, billing_block=block).billed_seconds(d) == billed


def test_price_is_connect_plus_rate_per_minute_rounded_half_up_once():
    # 0.0202/min for 36 s = 0.01212; + 0.05 connect.
    assert Tariff(D("0.0202"), D("0.05"), 30, 6).price(31) == D("0.062120")
    # 0.01/min for 20 s = 0.0033333.. -> 0.003333; 0.0100005 rounds half up.
    assert Tariff(D("0.01"), init_block=20, billing_block=1).price(20) == D("0.003333")
    assert Tariff(D("0.000001"), init_block=30, billing_block=1).price(30) == D("0.000001")  # 0.0000005 -> up
    assert Tariff(D("0.11820")).price(61) == D("0.236400")


def test_limit_is_the_largest_block_whose_price_fits_and_hold_is_its_price():
    # 0.6/min = 0.01/s; 0.03 buys 3 one-second blocks.
    assert Tariff(D("0.6"), init_block=1, billing_block=1).limit(D("0.03"), 10800) == (3, D("0.030000"))
    # 60/60 blocks at 0.0100: 0.025 buys two minutes, not three.
    assert Tariff(D("0.0100")).limit(D("0.025"), 10800) == (120, D("0.020000"))
    # connect charge counts: 1.00 - 0.10 = 0.90 at 0.05/min in 30+6 blocks.
    limit, hold = Tariff(D("0.05"), D("0.10"), 30, 6).limit(D("1"), 10800)
    assert limit == 1080 and hold == D("1.000000")
    assert Tariff(D("0.05"), D("0.10"), 30, 6).price(limit + 1) > D("1")


def test_limit_is_capped_and_refuses_when_the_first_block_does_not_fit():
    assert Tariff(D("0.01")).limit(D("1000"), 10800) == (10800, D("1.800000"))
    assert Tariff(D("0")).limit(D("0"), 600) == (600, D("0.000000"))
    assert Tariff(D("0.0100")).limit(D("0.009999"), 10800) is None
    assert Tariff(D("0.0100"), D("0.5")).limit(D("0.5"), 10800) is None
    assert Tariff(D("0.01")).limit(D("-1"), 10800) is None


@pytest.mark.parametrize("available", ["0.01", "0.0123", "0.5", "1", "3.33", "7.77"])
@pytest.mark.parametrize(
    "tariff",
    [
        Tariff(D("0.0202"), D("0.05"), 30, 6),
        Tariff(D("0.11820")),
        Tariff(D("0.013"), init_block=1, billing_block=1),
        Tariff(D("3.15"), D("0"), 0, 10),
    ],
)
def test_no_call_within_its_limit_costs_more_than_its_hold(tariff, available):
    fit = tariff.limit(D(available), 10800)
    if fit is None:
        assert tariff.price(1) > D(available)
        return
    limit, hold = fit
    assert hold <= D(available)
    assert all(tariff.price(d) <= hold for d in range(0, limit + 1, max(1, limit // 50)))
    assert tariff.price(limit) == hold
    # One block more would not have fit (or the cap was reached).
    assert limit == 10800 or tariff.price_of_billed(tariff.billed_seconds(limit) + tariff.billing_block) > D(available)


def test_whole_seconds_round_up_and_never_pass_the_limit():
    assert whole_seconds(0.2, 10, ended_by_limit=False) == 1
    assert whole_seconds(4.0, 10, ended_by_limit=False) == 4
    assert whole_seconds(4.001, 10, ended_by_limit=False) == 5
    assert whole_seconds(10.4, 10, ended_by_limit=False) == 10
    assert whole_seconds(10.9, 10, ended_by_limit=True) == 10
    assert whole_seconds(9.1, 10, ended_by_limit=True) == 10  # the timer ticks by the second
    # The dialog timer also ends a call whose ACK never came: billed what it lasted.
    assert whole_seconds(76.07, 10800, ended_by_limit=True) == 77
    assert whole_seconds(0, 10, ended_by_limit=False) == 0


def test_bad_blocks_are_refused():
    with pytest.raises(ValueError):
        Tariff(D("0.01"), billing_block=0)
    with pytest.raises(ValueError):
        Tariff(D("0.01"), init_block=-1)
