"""One rule per formatter: how driftloop writes quantities, changes, intervals, p-values, steps, money and
times (real minus signs, no exponents, no wrong precision)."""

from __future__ import annotations

import math

from driftloop import fmt


def test_significant_figures_without_exponents() -> None:
    assert fmt.significant(0.0028) == "0.0028"
    assert fmt.significant(0.384) == "0.38"
    assert fmt.significant(2.6) == "2.6"
    assert fmt.significant(12.3) == "12"
    assert fmt.significant(1234.5) == "1,234"
    assert fmt.significant(0) == "0"
    assert fmt.significant(0.000013754, 2) == "0.000014"
    assert fmt.significant(-0.384) == "−0.38"
    assert fmt.significant(123.4, 3) == "123"


def test_fixed_decimals() -> None:
    assert fmt.fixed(0.8312, 2) == "0.83" and fmt.fixed(31.24, 1) == "31.2" and fmt.fixed(-0.12, 2) == "−0.12"
    assert fmt.fixed(math.inf, 1) == "∞" and fmt.fixed(math.nan, 1) == "n/a"


def test_signed_uses_a_real_minus_and_two_significant_digits() -> None:
    assert fmt.signed(-0.2397) == "−0.24"
    assert fmt.signed(22.4) == "+22"
    assert fmt.signed(0.0) == "0"
    assert fmt.signed(-0.0001, 2) == "0.00"
    assert fmt.signed(12.0, 0, " K") == "+12 K"
    assert fmt.signed(-math.inf) == "−∞"
    assert fmt.interval(-0.271, -0.214, 2) == "[−0.27, −0.21]"


def test_decimals_follow_the_value_and_the_interval_width() -> None:
    assert fmt.decimals_for(0.24) == 2 and fmt.decimals_for(24.0) == 0 and fmt.decimals_for(None) == 2
    assert fmt.interval_decimals(5.0, 4.99, 5.01) == 2  # a narrow interval needs more decimals than 5.0


def test_p_values() -> None:
    assert fmt.p_value(0.0004) == "p<0.001"
    assert fmt.p_value(0.0123) == "p=0.012"
    assert fmt.p_value(0.005, True) == "p≤0.005"
    assert fmt.p_value(None) == "p n/a"
    assert fmt.probability(1.0) == "1" and fmt.probability(0.0625) == "0.062"


def test_steps() -> None:
    assert fmt.step(12.0) == "12" and fmt.step(12.5) == "12.5"
    assert fmt.step_range({"min": 9, "max": 14}) == "9–14" and fmt.step_range({"min": 3, "max": 3}) == "3"


def test_money_and_time() -> None:
    assert fmt.usd(0) == "$0.00" and fmt.usd(0.0531) == "$0.053" and fmt.usd(1234.561) == "$1,234.56"
    assert fmt.usd(0.4) == "$0.40" and fmt.usd(0.246) == "$0.246" and fmt.usd(3) == "$3.00"
    assert fmt.duration(0.0049) == "0.0049 s" and fmt.duration(12.3) == "12 s"
    assert fmt.duration(206.3) == "3.4 min" and fmt.duration(7600) == "2.1 h"
