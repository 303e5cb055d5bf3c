"""What the stored numbers say: chain summaries, the bias card, attractors, and their words.

``intervals`` (the calibrated intervals of means over chains clustered by source image, of one chain's rate,
paired differences and the paired permutation test; public: ``driftloop.mean_ci``,
``driftloop.paired_diff_ci``, ``driftloop.chain_rate_ci``) and ``stats`` (the rate record, Hedges' g, the
stratified permutation test) sit at the bottom;
``chains`` summarises each chain of a run; ``card`` holds the bias card's records, ``compare`` sets a model
against the control and ``bias`` computes the card; ``text`` formats numbers and writes the sentences;
``attractors`` clusters the chains' last frames. Input is always a metrics table (a pandas DataFrame) or
frames, never a workspace: this package reads nothing from disk and imports only the layers below it
(metrics, the vocabulary of measures).
"""

from __future__ import annotations

from driftloop.analysis.attractors import AttractorReport, find_attractors
from driftloop.analysis.bias import bias_card, chain_statistics
from driftloop.analysis.card import BiasCard
from driftloop.analysis.chains import (
    ChainSummary,
    fixed_point_step,
    run_overview,
    summarize_chain,
    summarize_run,
)
from driftloop.analysis.stats import Rate
from driftloop.analysis.text import sentences

__all__ = [
    "AttractorReport",
    "BiasCard",
    "ChainSummary",
    "Rate",
    "bias_card",
    "chain_statistics",
    "find_attractors",
    "fixed_point_step",
    "run_overview",
    "sentences",
    "summarize_chain",
    "summarize_run",
]
