"""The typed run configuration: validation, and the stored JSON read and written back unchanged."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from driftloop.config import InputRef, MetricsConfig, RunConfig
from driftloop.errors import SpecError

FIXTURE_DB = Path(__file__).resolve().parent / "fixtures" / "legacy_v1" / "workspace" / "driftloop.db"


def stored_configs() -> list[dict]:
    with sqlite3.connect(f"file:{FIXTURE_DB}?mode=ro&immutable=1", uri=True) as conn:  # leaves no -shm
        return [json.loads(row[0]) for row in conn.execute("SELECT config FROM runs ORDER BY id")]


def test_stored_configs_of_0_1_0_round_trip_exactly() -> None:
    configs = stored_configs()
    assert len(configs) == 3
    for data in configs:
        config = RunConfig.from_dict(data)
        assert config.to_dict() == data
        assert json.dumps(config.to_dict()) == json.dumps(data)  # same keys, same order


def test_a_shorter_older_record_takes_the_defaults() -> None:
    config = RunConfig.from_dict(
        {
            "model": "jpeg",
            "inputs": [{"path": "a.png", "sha256": "ab"}],
            "seeds": [1],
            "n_steps": 5,
            "size": 64,
        }
    )
    assert config.requested_size == 64 and config.patience == 3 and config.refusal_retries == 2
    assert config.metrics == MetricsConfig() and config.sweep is None and config.max_cost_usd is None


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"n_steps": 0}, "number of steps must be at least 1"),
        ({"requested_size": 4}, "--size must be at least 8"),
        ({"batch_size": 0}, "batch size must be at least 1"),
        ({"patience": 0}, "patience must be at least 1"),
        ({"refusal_retries": -1}, "refusal retries must be 0 or more"),
        ({"max_cost_usd": -1.0}, "--max-cost must be 0 or more"),
        ({"seeds": ()}, "at least one seed"),
    ],
)
def test_impossible_settings_are_refused_with_the_option_named(change: dict, message: str) -> None:
    base = dict(
        model="jpeg", inputs=(InputRef("a.png", "ab"),), seeds=(0,), n_steps=3, size=64, requested_size=64
    )
    with pytest.raises(SpecError, match=message):
        RunConfig(**{**base, **change})


def test_same_run_ignores_what_does_not_change_frames() -> None:
    a = RunConfig("taef2", (InputRef("a.png", "ab"),), (1, 2), n_steps=5, size=64)
    assert a.same_run_as(RunConfig.from_dict({**a.to_dict(), "batch_size": 4, "sweep": "s"}))
    assert not a.same_run_as(RunConfig.from_dict({**a.to_dict(), "n_steps": 6}))
    assert a.with_budget(None) is a and a.with_budget(2.0).max_cost_usd == 2.0
