"""The bias card's statistics computed for the whole table at once give what their definitions give chain by
chain: the per-chain changes and rates, the two-way interval's additive fit, the fixed points, and the
attractors when only a sample of the chains is fitted."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from driftloop.analysis import attractors
from driftloop.analysis.attractors import find_attractors
from driftloop.analysis.bias import chain_statistics
from driftloop.analysis.chain_rate import chain_rate_ci
from driftloop.analysis.chains import fixed_point_step, fixed_point_steps
from driftloop.analysis.intervals import _additive_fit


def _table(seed: int = 0, n_chains: int = 40) -> pd.DataFrame:
    """Chains of uneven length with gaps, missing values, a repeated step, constant series and faces."""
    rng = np.random.default_rng(seed)
    rows = []
    for c in range(n_chains):
        model = ("jpeg", "a", "b")[c % 3]
        steps = range(int(rng.integers(1, 30))) if c % 4 else sorted(rng.choice(60, 12, replace=False))
        for s in steps:
            rows.append({"model": model, "image": "one" if model == "b" else f"i{c % 5}", "chain": c,
                         "chain_seed": c // 5, "step": int(s),
                         "lab_b_mean": rng.normal() + 0.1 * s if rng.random() > 0.1 else np.nan,
                         "lab_l_mean": 5.0 if c % 6 == 0 else rng.normal(),
                         "face_found": float(rng.random() > 0.2)})  # fmt: skip
        rows.append(dict(rows[-1], lab_b_mean=42.0))  # the same step again: the last row wins
    return pd.DataFrame(rows).sample(frac=1, random_state=seed)


@pytest.mark.parametrize("seed", [0, 1])
def test_chain_statistics_match_their_definitions_chain_by_chain(seed: int) -> None:
    df = _table(seed)
    table = chain_statistics(df, steps=(1, 5, 10), rate_steps=20)
    assert len(table) == df["chain"].nunique()
    for got in table.to_dict("records"):
        chain = int(str(got["chain_id"]))
        mine = df[df["chain"] == chain]
        rows = mine.drop_duplicates("step", keep="last").sort_values("step")
        st, v = rows["step"].to_numpy(), rows["lab_b_mean"].to_numpy(dtype=float)
        window = st <= 20
        iv = chain_rate_ci(st[window].astype(float), v[window])
        rate = got["lab_b_mean:rate"]
        assert (math.isnan(rate) and math.isnan(iv.mean)) or rate == pytest.approx(
            iv.mean, rel=1e-12, abs=1e-12
        )
        assert got["lab_b_mean:rate:ci"] == iv  # "all": every chain's own interval, exactly
        v0 = v[st == 0][0] if (st == 0).any() else math.nan
        for s in (1, 5, 10):
            want = v[st == s][0] - v0 if (st == s).any() else math.nan
            assert got[f"lab_b_mean:{s}"] == pytest.approx(want, nan_ok=True)
        last = v[-1] - v0 if st[-1] > 0 else math.nan
        assert got["lab_b_mean:last"] == pytest.approx(last, nan_ok=True)
        assert got["last_step"] == st[-1] and got["rate_max_step"] == st[window].max()


def test_rate_intervals_only_where_asked() -> None:
    df = _table(2)
    full = chain_statistics(df, rate_intervals="all")
    some = chain_statistics(df, rate_intervals="one image")
    none = chain_statistics(df, rate_intervals="none")
    for name in ("lab_b_mean:rate", "lab_l_mean:rate", "lab_b_mean:last"):
        assert np.allclose(full[name], none[name], rtol=1e-12, atol=1e-12, equal_nan=True)
    single = some["model"] == "b"  # every chain of model b comes from one image
    assert some.loc[single, "lab_b_mean:rate:ci"].notna().all()
    assert some.loc[~single, "lab_b_mean:rate:ci"].isna().all() and none["lab_b_mean:rate:ci"].isna().all()
    with pytest.raises(ValueError, match="rate_intervals"):
        chain_statistics(df, rate_intervals="some")


def _dense_fit(vals: np.ndarray, img: np.ndarray, sd: np.ndarray) -> tuple[np.ndarray, int]:
    """The additive image + seed fit as least squares on the full design matrix (what it replaced)."""
    n_img, n_seed = int(img.max()) + 1, int(sd.max()) + 1
    design = np.zeros((vals.size, n_img + n_seed - 1))
    design[np.arange(vals.size), img] = 1.0
    rows = sd > 0
    design[np.flatnonzero(rows), n_img + sd[rows] - 1] = 1.0
    coef, _, rank, _ = np.linalg.lstsq(design, vals, rcond=None)
    return vals - design @ coef, int(rank)


def test_the_additive_fit_matches_least_squares_on_the_design() -> None:
    rng = np.random.default_rng(4)
    for trial in range(60):
        n = int(rng.integers(3, 150))
        img = rng.integers(0, int(rng.integers(1, 10)), n)
        sd = rng.integers(0, int(rng.integers(1, 12)), n) + (img % 2) * 20 * (trial % 3 == 0)  # split groups
        img, sd = np.unique(img, return_inverse=True)[1], np.unique(sd, return_inverse=True)[1]
        vals = rng.normal(size=n) * 10.0 ** rng.integers(-3, 4) + rng.normal(size=img.max() + 1)[img]
        want, rank = _dense_fit(vals, img, sd)
        got, got_rank = _additive_fit(vals, img, sd)
        assert got_rank == rank
        assert np.allclose(got, want, rtol=0, atol=1e-11 * max(1.0, float(np.abs(vals).max())))


def test_fixed_points_of_a_whole_table_match_chain_by_chain() -> None:
    rng = np.random.default_rng(5)
    rows = []
    for c in range(200):
        steps = range(int(rng.integers(1, 15))) if c % 5 else sorted(rng.choice(20, 8, replace=False))
        for s in steps:
            digest = None if c % 17 == 0 else f"h{rng.integers(0, 2)}"  # some chains without hashes
            rows.append(
                {
                    "chain": f"r/{c}",
                    "step": int(s),
                    "sha256": digest,
                    "mae_to_prev": float(rng.integers(0, 2)),
                }
            )
    df = pd.DataFrame(rows).sample(frac=1, random_state=0)
    patience = {f"r/{c}": 1 + c % 4 for c in range(200)}
    want = {name: fixed_point_step(g, patience[name]) for name, g in df.groupby("chain")}
    got = fixed_point_steps(df, patience)
    assert got == want and sum(v is not None for v in got.values()) > 20


def test_attractors_fitted_on_a_sample_keep_every_chain(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(6)
    colours = [(230, 40, 40), (40, 40, 230), (40, 200, 60)]
    frames = {}
    for c in range(60):
        base = np.array(colours[c % 3], dtype=float)
        frames[f"run/{c:02d}"] = np.clip(base + rng.normal(0, 6, (16, 16, 3)), 0, 255).astype(np.uint8)
    sources = {k: f"img{i % 7}" for i, k in enumerate(frames)}
    whole = find_attractors(frames, sources=sources)
    monkeypatch.setattr(attractors, "MAX_FIT_CHAINS", 20)
    sampled = find_attractors(frames, sources=sources)
    assert whole.k == sampled.k == 3 and sampled.n_chains == 60
    assert sorted(sorted(c.members) for c in sampled.clusters) == sorted(
        sorted(c.members) for c in whole.clusters
    )
    assert any("20 of the 60 chains" in note for note in sampled.notes)
    assert not any("of the 60 chains" in note for note in whole.notes)
