"""Do the "95%" intervals cover 95%? Coverage and type-I error with a known truth, by simulation.

    python benchmarks/coverage.py                  # 1000 replications per cell, about 30 s
    python benchmarks/coverage.py --reps 400 --boot 999

Chains are drawn as ``rate = 0.3 + image effect + seed effect + chain noise``: image effect normal (sd 0.2)
or skewed (log-normal with σ = 0.5 or 1, skewness 1.75 or 6.2, scaled to sd 0.2 and centred so the true
mean is 0.3),
seed effect normal (sd 0.05) and shared by the chains of that seed on every image (crossed) or absent,
chain noise normal (sd 0.05), 3 seeds per image, at 3, 5, 10, 20 and 30 source images. For each design
the table gives the share of replications whose 95% interval covers 0.3:

* ``card: percentile bootstrap over images``: the bias card's estimator before driftloop 0.2
  (``bias.cluster_bootstrap`` without seeds: resample images, percentile interval), reimplemented
  vectorised; ``card: image×seed bootstrap``: what it did when the same seeds ran on every image (Owen's
  two-way pigeonhole bootstrap);
* ``t over images``: Student's t on the image means, df = G − 1;
* ``BCa over images`` and ``studentized bootstrap over images`` (bootstrap-t), on the image means;
* ``two-way CGM, df = min(G, S) − 1``: the textbook two-way cluster-robust variance with grand-mean
  residuals (it over-subtracts the chain part);
* ``mean_ci``: :func:`driftloop.analysis.intervals.mean_ci` itself, given the seeds (what the package uses).

Then the type-I error at α = 0.05 of the paired comparisons under a true null (model and control have the
same mean): the paired sign-flip permutation test
(:func:`driftloop.analysis.intervals.paired_permutation_test`, 5000 relabellings, exact when 2^G ≤ 5000;
vectorised here, checked against the function) and the paired interval
:func:`driftloop.analysis.intervals.paired_diff_ci` with images only and with images and seeds (rejects when
its interval excludes 0). Three nulls (see :func:`null_pairs`): exchangeable, skewed (per-image differences
with mean 0 but not symmetric) and crossed seed effects (model and control each have their own).

Monte Carlo standard error of a coverage near 0.95 with R replications: sqrt(0.95·0.05/R) (0.007 at 1000).
Fixed seed: the same numbers every run.
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np
from scipy import stats

from driftloop.analysis.intervals import mean_ci, paired_diff_ci, paired_permutation_test

TRUE_MEAN = 0.3
IMAGE_SD = 0.2
SEED_SD = 0.05
NOISE_SD = 0.05
SEEDS = 3
SIZES = (3, 5, 10, 20, 30)
LOGNORMAL_SIGMA = 1.0
CHUNK = 100  # replications per vectorised bootstrap block (memory: CHUNK × boot × G floats)


def effects(rng: np.random.Generator, shape: tuple[int, ...], sigma: float, sd: float) -> np.ndarray:
    """Mean-zero effects with standard deviation ``sd``: normal (``sigma`` 0), or a log-normal with log-sd
    ``sigma``, centred and scaled (right-skewed; skewness 1.75 at σ = 0.5, 6.2 at σ = 1)."""
    if not sigma:
        return rng.normal(0.0, sd, shape)
    s2 = sigma**2
    raw = np.exp(sigma * rng.standard_normal(shape))
    return (raw - math.exp(s2 / 2)) / math.sqrt((math.exp(s2) - 1) * math.exp(s2)) * sd


def simulate(rng: np.random.Generator, reps: int, g: int, sigma: float, seed_sd: float) -> np.ndarray:
    """(reps, G images, S seeds) chain values; seed effects are shared across the images of a replication."""
    y = TRUE_MEAN + effects(rng, (reps, g, 1), sigma, IMAGE_SD) + rng.normal(0.0, NOISE_SD, (reps, g, SEEDS))
    if seed_sd:
        y = y + rng.normal(0.0, seed_sd, (reps, 1, SEEDS))
    return y


# ------------------------------------------------------------------------------ the methods, vectorised


def t_images(y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    m = y.mean(axis=2)
    g = m.shape[1]
    half = stats.t.ppf(0.975, g - 1) * m.std(axis=1, ddof=1) / math.sqrt(g)
    return m.mean(axis=1) - half, m.mean(axis=1) + half


def cgm_two_way(y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """V_image + V_seed − V_chain with grand-mean residuals and C/(C−1) factors; df = min(G, S) − 1."""
    _, g, s = y.shape
    n = g * s
    theta = y.mean(axis=(1, 2))
    v_img = y.mean(axis=2).var(axis=1, ddof=1) / g
    v_seed = y.mean(axis=1).var(axis=1, ddof=1) / s
    v_chain = y.reshape(len(y), -1).var(axis=1, ddof=1) / n
    var = v_img + v_seed - v_chain
    var = np.where(var > 0, var, np.maximum(v_img, v_seed))
    half = stats.t.ppf(0.975, min(g, s) - 1) * np.sqrt(var)
    return theta - half, theta + half


def bootstraps(
    y: np.ndarray, rng: np.random.Generator, n_boot: int
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Percentile (card), pigeonhole image×seed (card with crossed seeds), BCa, and bootstrap-t intervals,
    all from the same image resamples."""
    reps, g, s = y.shape
    out = {k: (np.empty(reps), np.empty(reps)) for k in ("pct", "two", "bca", "boot_t")}
    z = stats.norm.ppf([0.025, 0.975])
    for a in range(0, reps, CHUNK):
        yc = y[a : a + CHUNK]
        r = len(yc)
        m = yc.mean(axis=2)  # (r, G) image means; balanced, so the chain mean is their mean
        theta = m.mean(axis=1)
        idx = rng.integers(0, g, size=(r, n_boot, g))
        bm = np.take_along_axis(m[:, None, :], idx, axis=2)  # (r, B, G)
        boot = bm.mean(axis=2)
        lo, hi = np.quantile(boot, [0.025, 0.975], axis=1)
        out["pct"][0][a : a + r], out["pct"][1][a : a + r] = lo, hi

        # Owen's pigeonhole: chain weight = image draw count × seed draw count.
        flat = idx + (np.arange(r * n_boot) * g).reshape(r, n_boot, 1)
        w_img = np.bincount(flat.ravel(), minlength=r * n_boot * g).reshape(r, n_boot, g).astype(float)
        w_seed = rng.multinomial(s, np.full(s, 1.0 / s), size=(r, n_boot)).astype(float)
        num = np.einsum("rbg,rgs,rbs->rb", w_img, yc, w_seed)
        two = num / (w_img.sum(axis=2) * w_seed.sum(axis=2))
        lo, hi = np.quantile(two, [0.025, 0.975], axis=1)
        out["two"][0][a : a + r], out["two"][1][a : a + r] = lo, hi

        # BCa: bias correction from the share of resamples below θ̂, acceleration from the jackknife.
        below = (boot < theta[:, None]).mean(axis=1)
        z0 = stats.norm.ppf(np.clip(below, 1e-6, 1 - 1e-6))
        jack = (m.sum(axis=1, keepdims=True) - m) / (g - 1)
        dev = jack.mean(axis=1, keepdims=True) - jack
        den = 6 * (dev**2).sum(axis=1) ** 1.5
        acc = np.where(den > 0, (dev**3).sum(axis=1) / np.where(den > 0, den, 1), 0.0)
        sorted_boot = np.sort(boot, axis=1)
        for k, zk in enumerate(z):
            alpha = stats.norm.cdf(z0 + (z0 + zk) / (1 - acc * (z0 + zk)))
            pos = np.clip(np.round(alpha * (n_boot - 1)).astype(int), 0, n_boot - 1)
            out["bca"][k][a : a + r] = np.take_along_axis(sorted_boot, pos[:, None], axis=1)[:, 0]

        # Bootstrap-t: the t statistic's own distribution over resamples (degenerate resamples dropped).
        se = m.std(axis=1, ddof=1) / math.sqrt(g)
        bse = bm.std(axis=2, ddof=1) / math.sqrt(g)
        with np.errstate(divide="ignore", invalid="ignore"):
            tstar = np.where(bse > 0, (boot - theta[:, None]) / bse, np.nan)
        q_lo, q_hi = np.nanquantile(tstar, [0.025, 0.975], axis=1)
        out["boot_t"][0][a : a + r], out["boot_t"][1][a : a + r] = theta - q_hi * se, theta - q_lo * se
    return out


def package_mean_ci(y: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """(low, high, share of replications where it went two-way) from the public function, one call per
    replication, with the chains' images and seeds."""
    _, g, s = y.shape
    images = np.repeat(np.arange(g), s)
    seeds = np.tile(np.arange(s), g)
    lows, highs, two = np.empty(len(y)), np.empty(len(y)), 0
    for i, rep in enumerate(y):
        res = mean_ci(rep.ravel(), images, seeds)
        lows[i], highs[i] = res.ci_low, res.ci_high
        two += res.n_seeds > 0
    return lows, highs, two / len(y)


METHODS = {
    "pct": "card: percentile bootstrap over images",
    "two": "card: image×seed bootstrap",
    "t": "t over images",
    "bca": "BCa over images",
    "boot_t": "studentized bootstrap over images",
    "cgm": "two-way CGM, df = min(G, S) − 1",
    "pkg": "**mean_ci (images + seeds)**",
}


def coverage_table(rng: np.random.Generator, reps: int, n_boot: int, sigma: float, seed_sd: float) -> str:
    cover: dict[str, list[str]] = {k: [] for k in METHODS}
    widths: dict[str, list[str]] = {k: [] for k in METHODS}
    two_share = []
    for g in SIZES:
        y = simulate(rng, reps, g, sigma, seed_sd)
        found = bootstraps(y, rng, n_boot)
        found["t"] = t_images(y)
        found["cgm"] = cgm_two_way(y)
        lo, hi, share = package_mean_ci(y)
        found["pkg"] = (lo, hi)
        two_share.append(share)
        ref = np.median(found["t"][1] - found["t"][0])
        for key in METHODS:
            lo, hi = found[key]
            cover[key].append(f"{np.mean((lo <= TRUE_MEAN) & (hi >= TRUE_MEAN)):.3f}")
            widths[key].append(f"{np.median(hi - lo) / ref:.2f}")
    head = " | ".join(f"{g} images" for g in SIZES)
    lines = [f"| 95% interval | {head} |", "|---" * (len(SIZES) + 1) + "|"]
    lines += [f"| {METHODS[k]} | " + " | ".join(cover[k]) + " |" for k in METHODS]
    lines.append("")
    lines.append("Median width relative to the t interval: " + "; ".join(
        f"{METHODS[k].strip('*')} " + "/".join(widths[k]) for k in METHODS if k != "t"
    ) + ".")  # fmt: skip
    lines.append("mean_ci went two-way in " + "/".join(f"{s:.0%}" for s in two_share) + " of replications.")
    return "\n".join(lines)


NULLS = {
    "exchangeable": "exchangeable null",
    "skewed": "skewed null",
    "seeds": "null with crossed seed effects",
}


def null_pairs(rng: np.random.Generator, reps: int, g: int, kind: str) -> tuple[np.ndarray, np.ndarray]:
    """(model, control) chain values (reps, G, S) under a true null: equal means. ``exchangeable``: each
    adds an independent normal image × model effect (sd 0.1); ``skewed``: the control is flat and the model
    adds a centred log-normal one (σ = 1, sd 0.1); ``seeds``: exchangeable, plus each model's own seed
    effects (sd 0.05) crossed over the images."""
    base = TRUE_MEAN + effects(rng, (reps, g, 1), 0.0, IMAGE_SD)
    noise = rng.normal(0.0, NOISE_SD, (2, reps, g, SEEDS))
    if kind == "skewed":
        return base + effects(rng, (reps, g, 1), LOGNORMAL_SIGMA, 0.1) + noise[0], base + 0.2 * noise[1]
    inter = effects(rng, (2, reps, g, 1), 0.0, 0.1)
    model, control = base + inter[0] + noise[0], base + inter[1] + noise[1]
    if kind == "seeds":
        model = model + rng.normal(0.0, SEED_SD, (reps, 1, SEEDS))
        control = control + rng.normal(0.0, SEED_SD, (reps, 1, SEEDS))
    return model, control


def sign_flip_p(d: np.ndarray, rng: np.random.Generator, n_perm: int = 5000) -> np.ndarray:
    """The two-sided p of :func:`driftloop.analysis.intervals.sign_flip_test` for every row of ``d``
    (reps, G), at once: same statistic, tie tolerance and p; exact when 2^G ≤ n_perm, else one set of
    ``n_perm`` random sign patterns per block of replications."""
    r, g = d.shape
    need = np.abs(d.mean(axis=1)) - 1e-9 * np.abs(d).max(axis=1)
    if 2**g <= n_perm:
        signs = ((np.arange(2**g)[:, None] >> np.arange(g)[None, :]) & 1) * 2.0 - 1.0
        return (np.abs(d @ signs.T) / g >= need[:, None]).mean(axis=1)
    p = np.empty(r)
    for a in range(0, r, CHUNK):
        signs = rng.choice(np.array([-1.0, 1.0]), size=(n_perm, g))
        count = (np.abs(d[a : a + CHUNK] @ signs.T) / g >= need[a : a + CHUNK, None]).sum(axis=1)
        p[a : a + CHUNK] = (1 + count) / (n_perm + 1)
    return p


def type_one_table(rng: np.random.Generator, reps: int) -> str:
    rows = []
    for kind, label in NULLS.items():
        perm, ci, ci_seeds = [], [], []
        for g in SIZES:
            images, seeds = np.repeat(np.arange(g), SEEDS), np.tile(np.arange(SEEDS), g)
            model, control = null_pairs(rng, reps, g, kind)
            d = model.mean(axis=2) - control.mean(axis=2)
            p = sign_flip_p(d, rng)
            if 2**g <= 5000:  # the vectorised test is the package's test
                check = paired_permutation_test(model[0].ravel(), control[0].ravel(), images)
                assert check is not None and abs(check.p_value - p[0]) < 1e-12
            perm.append(f"{np.mean(p < 0.05):.3f}")
            one = [paired_diff_ci(m.ravel(), c.ravel(), images) for m, c in zip(model, control, strict=True)]
            two = [
                paired_diff_ci(m.ravel(), c.ravel(), images, seeds=seeds)
                for m, c in zip(model, control, strict=True)
            ]
            ci.append(f"{np.mean([x.excludes_zero for x in one]):.3f}")
            ci_seeds.append(f"{np.mean([x.excludes_zero for x in two]):.3f}")
        rows.append(f"| paired sign-flip permutation test, {label} | " + " | ".join(perm) + " |")
        rows.append(f"| paired_diff_ci (images), {label} | " + " | ".join(ci) + " |")
        rows.append(f"| paired_diff_ci (images + seeds), {label} | " + " | ".join(ci_seeds) + " |")
    head = " | ".join(f"{g} images" for g in SIZES)
    return "\n".join([f"| rejects at α = 0.05 | {head} |", "|---" * (len(SIZES) + 1) + "|", *rows])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--reps", type=int, default=1000, help="replications per cell (default 1000)")
    parser.add_argument("--boot", type=int, default=499, help="bootstrap resamples (default 499)")
    parser.add_argument("--seed", type=int, default=20261201)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    start = time.perf_counter()
    se = math.sqrt(0.95 * 0.05 / args.reps)
    print(f"Coverage of the true mean, {args.reps} replications per cell (Monte Carlo SE ≈ {se:.3f}), "
          f"{args.boot} bootstrap resamples, {SEEDS} seeds per image.\n")  # fmt: skip
    for sigma in (0.0, 0.5, LOGNORMAL_SIGMA):
        kind = f"log-normal σ = {sigma:g}" if sigma else "normal"
        for seed_sd in (0.0, SEED_SD):
            seeds = f"seed effect sd {seed_sd:g} (crossed)" if seed_sd else "no seed effect"
            print(f"### Image effects {kind}, {seeds}\n")
            print(coverage_table(rng, args.reps, args.boot, sigma, seed_sd))
            print()
    print("### Type-I error of the paired comparisons (true null)\n")
    print(type_one_table(rng, args.reps))
    print(f"\n({time.perf_counter() - start:.0f} s)")


if __name__ == "__main__":
    main()
