"""The one JSON cleaner: what JSON cannot hold becomes something it can, and floats carry no CPU noise."""

from __future__ import annotations

import json
import math

import numpy as np

from driftloop._fs import JSON_DIGITS, json_safe


def test_non_finite_numbers_numpy_scalars_tuples_and_keys() -> None:
    value = {1: (np.float32(0.25), math.nan, -math.inf), "n": np.int64(7), "ok": True, "s": "x"}
    assert json_safe(value) == {"1": [0.25, None, None], "n": 7, "ok": True, "s": "x"}
    assert type(json_safe(np.float64(1.5))) is float and type(json_safe(np.int64(3))) is int


def test_floats_are_written_at_a_fixed_number_of_significant_digits() -> None:
    # one interval bound as two CPUs computed it: equal but for the last bits of a 17-digit repr
    here, there = -0.5183424616626309, -0.5183424616626306
    assert json.dumps(json_safe(here)) == json.dumps(json_safe(there)) == "-0.518342461663"
    for value in (0.1 + 0.2, 2.0 / 3.0, 123456.78901234567, 6.02214076e23, -1.2345678901234e-9):
        written = json_safe(value)
        assert len(repr(written).lstrip("-").replace(".", "").split("e")[0].strip("0")) <= JSON_DIGITS
        assert math.isclose(written, value, rel_tol=10.0 ** (1 - JSON_DIGITS))
    assert json_safe(3.0) == 3.0 and json_safe(-0.0) == 0.0 and json_safe(1e-300) == 1e-300
