"""Attractors: where chains end up. Clusters of last frames, with an exemplar each, and fixed points.

If a model pulls every picture towards the same few images, the last frames of many chains, started from
different pictures, look alike. :func:`find_attractors` groups last frames by appearance:

* **features** per frame, in fixed units (not z-scored, so that frames which are all but identical stay
  one group instead of having their last-bit differences blown up to unit variance):
  a 16×16 thumbnail (area-averaged RGB, values 0..1) scaled so that the squared distance between two
  thumbnails is their mean squared pixel difference, and per-channel 8-bin RGB histograms (each channel
  sums to 1) scaled so that the squared distance is at most 1; the two blocks weigh the same;
* **k = 1** when the frames are near-identical: every frame's distance from the mean feature is below
  ``tight`` (default 0.02 ≈ 5 of 255 levels RMS);
* otherwise **k** maximises the silhouette score over ``2..max_clusters`` (at most n − 1), each fit a
  ``KMeans(n_init=10, random_state=seed)``, among the k whose cluster centres are all at least ``tight``
  apart (the silhouette is scale-free: without this, frames differing by a level or two would count as
  "perfect" separate clusters); a best silhouette below ``min_silhouette`` (0.25, "no substantial
  structure" in Kaufman & Rousseeuw's reading) means no clear clusters: one diffuse group;
* each cluster's **exemplar** is the member closest to its centroid (ties: the first chain id in sorted
  order); its frame is kept for a thumbnail;
* above :data:`MAX_FIT_CHAINS` chains, k and the clusters are chosen on that many chains, evenly spaced in
  chain-id order (the silhouette compares every pair of frames, so the whole set would grow with the square
  of the chains), and every chain then joins the cluster whose fitted centre is nearest; a note says so.
  Up to that many chains nothing changes.

A cluster counts as an **attractor** when its members started from at least two different source images
(pass ``sources``) and it is a real cluster (not the one group of a diffuse set); a cluster of chains from
one picture only shows that the picture survived. Chains given a fixed-point step in ``fixed_points``
(see :func:`driftloop.analysis.chains.fixed_point_step`) are listed with the cluster they ended in. Chain ids
are sorted first, so the result depends only on the mapping's content.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from PIL import Image

from driftloop import fmt
from driftloop._fs import json_safe
from driftloop.analysis.curves import evenly_spaced

__all__ = [
    "AttractorCluster",
    "AttractorReport",
    "find_attractors",
    "frame_features",
]

THUMB = 16
BINS = 8
TIGHT = 0.02
MIN_SILHOUETTE = 0.25
MAX_FIT_CHAINS = 1000  # chains k-means and the silhouette look at (evenly spaced above this many)


@dataclass
class AttractorCluster:
    """One group of last frames. ``exemplar_frame`` (RGB uint8) is for thumbnails and not in ``to_dict``."""

    label: int  # 1-based, largest cluster first
    members: list[str]
    exemplar: str
    exemplar_frame: np.ndarray = field(repr=False)
    spread: float  # RMS feature distance of members from the centroid (0 = identical frames)
    n_sources: int | None = None  # distinct source images among the members (None: sources not given)
    attractor: bool | None = None  # n_sources >= 2 (None: unknown)
    fixed_points: dict[str, int] = field(default_factory=dict)  # member → fixed-point step

    def to_dict(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "members": list(self.members),
            "n_members": len(self.members),
            "exemplar": self.exemplar,
            "exemplar_shape": list(self.exemplar_frame.shape),
            "spread": json_safe(self.spread),
            "n_sources": self.n_sources,
            "attractor": self.attractor,
            "fixed_points": dict(self.fixed_points),
        }


@dataclass
class AttractorReport:
    """Clusters of last frames (largest first), how k was chosen, and the chains at a fixed point."""

    clusters: list[AttractorCluster]
    n_chains: int
    k: int
    structure: str  # "none" (no frames), "single" (one chain), "converged", "clusters", "diffuse"
    silhouette: float | None  # of the chosen k (None for k = 1)
    silhouettes: dict[int, float] = field(default_factory=dict)  # k → silhouette score, as tried
    fixed_points: dict[str, int] = field(default_factory=dict)  # chain → fixed-point step
    notes: list[str] = field(default_factory=list)

    def cluster_of(self, chain: str) -> AttractorCluster:
        for c in self.clusters:
            if chain in c.members:
                return c
        raise KeyError(chain)

    def summary(self) -> str:
        """One sentence for reports and the CLI."""
        n = self.n_chains
        chains = "1 chain" if n == 1 else f"{n} chains"
        if self.structure == "none":
            return "no last frames to cluster"
        if self.structure == "single":
            return "1 chain: nothing to cluster"
        known = [c for c in self.clusters if c.attractor is not None]
        if self.structure == "converged":
            text = f"all {chains} end in near-identical frames"
            if known:
                sources = self.clusters[0].n_sources
                text += f" from {sources} source images: one attractor" if sources and sources > 1 else ""
                text += " (all from one source image)" if sources == 1 else ""
        elif self.structure == "diffuse":
            best = max(self.silhouettes.values()) if self.silhouettes else math.nan
            text = (
                f"the last frames of {chains} form no clear clusters (best silhouette {fmt.fixed(best, 2)})"
            )
        else:
            sil = "" if self.silhouette is None else f" (silhouette {fmt.fixed(self.silhouette, 2)})"
            text = f"the last frames of {chains} fall into {self.k} clusters{sil}"
            if known:
                n_att = sum(1 for c in known if c.attractor)
                text += f"; {n_att} of them gather chains from different source images"
        if self.fixed_points:
            text += f"; {len(self.fixed_points)} chain{'s' if len(self.fixed_points) != 1 else ''} reached a "
            text += "fixed point"
        return text

    def to_dict(self) -> dict[str, Any]:
        return {
            "n_chains": self.n_chains,
            "k": self.k,
            "structure": self.structure,
            "silhouette": json_safe(self.silhouette),
            "silhouettes": {str(k): json_safe(v) for k, v in self.silhouettes.items()},
            "clusters": [c.to_dict() for c in self.clusters],
            "fixed_points": dict(self.fixed_points),
            "summary": self.summary(),
            "notes": list(self.notes),
            "method": {
                "features": (
                    f"{THUMB}x{THUMB} area-averaged RGB thumbnail (RMS-difference units) + {BINS}-bin "
                    "per-channel RGB histograms, equal weight"
                ),
                "k": (
                    "1 if every frame is within 'tight' of the mean feature; else argmax silhouette over "
                    "KMeans(n_init=10) fits, k=2..max_clusters; one diffuse group if the best silhouette < "
                    f"{MIN_SILHOUETTE}"
                ),
                "exemplar": "the member closest to its cluster's centroid",
            },
        }


def _as_rgb(frame: np.ndarray) -> np.ndarray:
    arr = np.asarray(frame)
    if arr.ndim == 2:
        arr = np.stack([arr] * 3, axis=-1)
    if arr.ndim != 3 or arr.shape[2] not in (3, 4):
        raise ValueError(f"a frame must be H×W×3 RGB (got shape {arr.shape})")
    arr = arr[..., :3]
    if arr.dtype != np.uint8:
        arr = np.clip(np.rint(arr.astype(float) * (255.0 if arr.max() <= 1.0 else 1.0)), 0, 255)
        arr = arr.astype(np.uint8)
    return arr


def frame_features(frame: np.ndarray) -> np.ndarray:
    """The feature vector of one frame (see the module docstring): thumbnail block + histogram block."""
    rgb = _as_rgb(frame)
    thumb = Image.fromarray(rgb).resize((THUMB, THUMB), Image.Resampling.BOX)
    t = np.asarray(thumb, dtype=float).ravel() / 255.0
    t /= math.sqrt(t.size)
    hists = [np.bincount(rgb[..., c].ravel() >> 5, minlength=BINS)[:BINS] for c in range(3)]
    h = np.concatenate([hc / max(hc.sum(), 1) for hc in hists]).astype(float)
    h /= math.sqrt(2 * 3)
    return np.concatenate([t, h])


def find_attractors(
    last_frames: Mapping[str, np.ndarray],
    fixed_points: Mapping[str, int | None] | None = None,
    max_clusters: int = 8,
    seed: int = 0,
    sources: Mapping[str, str] | None = None,
    tight: float = TIGHT,
    min_silhouette: float = MIN_SILHOUETTE,
) -> AttractorReport:
    """Cluster chains by their last frames; see the module docstring for the method.

    ``last_frames``: chain id → last frame (RGB uint8); read when needed, so a mapping that loads frames
    from disk on access keeps only the exemplars' in memory. ``fixed_points``: chain id → fixed-point step or
    None. ``sources``: chain id → source image id, to tell attractors from surviving pictures.
    """
    fixed = {str(k): int(v) for k, v in (fixed_points or {}).items() if v is not None}
    key_of = {str(k): k for k in last_frames}
    ids = sorted(key_of)
    frames = _Frames(last_frames, key_of)
    src = {str(k): str(v) for k, v in (sources or {}).items()}
    notes: list[str] = []
    unknown = sorted(set(fixed) - set(ids))
    if unknown:
        notes.append(f"fixed points given for chains without a last frame: {', '.join(unknown)}")
    fixed = {k: v for k, v in sorted(fixed.items()) if k in frames}
    if not ids:
        return AttractorReport([], 0, 0, "none", None, fixed_points=fixed, notes=notes)
    feats = np.stack([frame_features(frames[i]) for i in ids])
    n = len(ids)
    fit = evenly_spaced(n, MAX_FIT_CHAINS)  # the chains k-means and the silhouette look at
    centre = feats.mean(axis=0)
    dist = np.sqrt(((feats - centre) ** 2).sum(axis=1))
    silhouettes: dict[int, float] = {}
    if n == 1:
        labels, structure, best = np.zeros(1, int), "single", None
    elif float(dist.max()) < tight:
        labels, structure, best = np.zeros(n, int), "converged", None
    elif n == 2:
        labels, structure, best = np.array([0, 1]), "clusters", None
        notes.append("2 chains with different last frames: each its own cluster")
    else:
        labels, best, structure = _cluster(feats, fit, max_clusters, seed, tight, min_silhouette,
                                           silhouettes, notes)  # fmt: skip
        if len(fit) < n:
            notes.append(
                f"clusters chosen on {len(fit)} of the {n} chains (evenly spaced); every chain then joins "
                "the cluster whose centre is nearest"
            )

    clusters: list[AttractorCluster] = []
    for lab in np.unique(labels):
        idx = np.flatnonzero(labels == lab)
        members = [ids[i] for i in idx]
        c = feats[idx].mean(axis=0)
        d = np.sqrt(((feats[idx] - c) ** 2).sum(axis=1))
        ex = members[int(np.argmin(d))]  # argmin takes the first of ties; members are in sorted order
        n_src = len({src[m] for m in members if m in src}) if src else None
        clusters.append(
            AttractorCluster(
                label=0,
                members=members,
                exemplar=ex,
                exemplar_frame=_as_rgb(frames[ex]),
                spread=float(np.sqrt(np.mean(d**2))),
                n_sources=n_src,
                attractor=(n_src >= 2 and structure != "diffuse") if n_src is not None else None,
                fixed_points={m: fixed[m] for m in members if m in fixed},
            )
        )
    clusters.sort(key=lambda c: (-len(c.members), c.members[0]))
    for i, c in enumerate(clusters, start=1):
        c.label = i
    if src and set(ids) - set(src):
        notes.append(f"{len(set(ids) - set(src))} chain(s) without a source image: attractor flags partial")
    return AttractorReport(
        clusters=clusters,
        n_chains=n,
        k=len(clusters),
        structure=structure,
        silhouette=best,
        silhouettes=silhouettes,
        fixed_points=fixed,
        notes=notes,
    )


class _Frames:
    """The frames of ``last_frames`` by chain-id string, each read from the mapping when asked for."""

    def __init__(self, last_frames: Mapping[Any, np.ndarray], key_of: Mapping[str, Any]) -> None:
        self._frames, self._key_of = last_frames, key_of

    def __getitem__(self, chain: str) -> np.ndarray:
        return self._frames[self._key_of[chain]]

    def __contains__(self, chain: object) -> bool:
        return chain in self._key_of


def _cluster(
    feats: np.ndarray,
    fit: list[int],
    max_clusters: int,
    seed: int,
    tight: float,
    min_silhouette: float,
    silhouettes: dict[int, float],
    notes: list[str],
) -> tuple[np.ndarray, float | None, str]:
    """(label of every chain, best silhouette, structure) of the k-means fits on the rows ``fit`` of
    ``feats`` (see the module docstring); fills ``silhouettes`` and ``notes``."""
    # scikit-learn is heavy to import and needed only when there are clusters to look for.
    from sklearn.cluster import KMeans  # scikit-learn is heavy (~1 s): only when clustering
    from sklearn.metrics import silhouette_score  # heavy, as above
    from threadpoolctl import threadpool_limits  # scikit-learn's own dependency, loaded with it

    sample = feats[fit]
    m = len(fit)
    fits: dict[int, np.ndarray] = {}
    centres_of: dict[int, np.ndarray] = {}
    split: list[int] = []  # k whose clusters have centres closer than `tight`: not distinct attractors
    distinct = len(np.unique(np.round(sample, 9), axis=0))
    # One thread: the same labels, and on a busy machine (more threads than free cores) k-means' OpenMP
    # threads wait on each other: 0.4 s against 13 s for 500 frames on 2 loaded cores.
    with threadpool_limits(1):
        for k in range(2, min(max_clusters, m - 1, distinct) + 1):
            km = KMeans(n_clusters=k, n_init=10, random_state=seed).fit(sample)
            if len(np.unique(km.labels_)) < 2:
                continue
            fits[k] = km.labels_
            silhouettes[k] = float(silhouette_score(sample, km.labels_))
            centres = np.stack([sample[km.labels_ == c].mean(axis=0) for c in np.unique(km.labels_)])
            centres_of[k] = centres
            gaps = np.sqrt(((centres[:, None, :] - centres[None, :, :]) ** 2).sum(axis=-1))
            if gaps[np.triu_indices(len(centres), 1)].min() < tight:
                split.append(k)
    admissible = {k: v for k, v in silhouettes.items() if k not in split}
    if split:
        notes.append(
            "k = " + ", ".join(map(str, split)) + " not considered: they split near-identical frames "
            f"(cluster centres closer than {tight:g})"
        )
    if not admissible or max(admissible.values()) < min_silhouette:
        return np.zeros(len(feats), int), None, "diffuse"
    k_best = max(admissible, key=lambda k: (admissible[k], -k))
    if m == len(feats):
        return fits[k_best], silhouettes[k_best], "clusters"
    centres = centres_of[k_best]
    nearest = np.argmin(
        (feats**2).sum(axis=1)[:, None] - 2 * feats @ centres.T + (centres**2).sum(axis=1)[None, :], axis=1
    )
    return np.unique(fits[k_best])[nearest], silhouettes[k_best], "clusters"
