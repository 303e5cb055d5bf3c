"""Sweeps: every (image, model, parameters, seed) of a TOML spec is a chain.

The workspace remembers each sweep (its models, control, inputs and seeds) and which runs hold its chains.
Running a spec again only runs what is missing: every (model, image, seed) chain already stored with the
same steps and size, by this sweep or any earlier run, is reused (an unfinished one resumed); the missing
chains of a model go into new runs (one per set of seeds, e.g. all images × an added seed). The bias card
reads exactly the sweep's chains, each once. The control model is run too when it is not among the models.

    name = "controls"          # tags the runs; `driftloop bias controls` reads them back
    images = ["photos/", "extra/*.png", "portrait.jpg"]   # files, folders, globs; relative to the spec
    seeds = [1, 2, 3]
    steps = 50
    size = 256
    control = "jpeg:quality=90"   # what the bias card compares with
    faces = true                  # measure face landmarks (portraits)

    [[models]]
    spec = "taef2"

    [[models]]
    spec = "jpeg"
    grid = { quality = [75, 90] }   # one run per combination

    [[models]]
    spec = "taef2"
    grid = { stabilize = ["none", "colour:lab"] }   # a stabilizer is an axis too: one arm per value

    [[imported]]                  # copies made elsewhere, on the bias card as imported:<label>
    run = "20260101-120000-imported-gpt-ab12"      # a run made by `driftloop import`
    [[imported]]
    path = "copies/gpt-image/"    # or a folder/GIF/video, imported when the sweep runs (once)
    label = "gpt-image"

A model with a stabilizer is the arm ``MODEL + stabilize=SPEC`` (:func:`driftloop.config.arm_label`): its
chains are stored in runs of MODEL whose configuration has ``stabilize = SPEC``.
"""

from driftloop.sweep.plan import (
    Coverage,
    Estimate,
    EstimateRow,
    PlanRow,
    coverage,
    estimate,
    hosted_call,
    missing_runs,
    plan,
    price_per_copy,
    probe_seconds,
)
from driftloop.sweep.run import finish, imported_runs, run_sweep, sweep_chains, sweep_labels, sweep_runs
from driftloop.sweep.spec import (
    DEFAULT_CONTROL,
    IMAGE_SUFFIXES,
    ImportedArm,
    Sweep,
    SweepSpecError,
    input_hashes,
    load_sweep,
    sweep_record,
)

__all__ = [
    "DEFAULT_CONTROL",
    "IMAGE_SUFFIXES",
    "Coverage",
    "Estimate",
    "EstimateRow",
    "ImportedArm",
    "PlanRow",
    "Sweep",
    "SweepSpecError",
    "coverage",
    "estimate",
    "finish",
    "hosted_call",
    "imported_runs",
    "input_hashes",
    "load_sweep",
    "missing_runs",
    "plan",
    "price_per_copy",
    "probe_seconds",
    "run_sweep",
    "sweep_chains",
    "sweep_labels",
    "sweep_record",
    "sweep_runs",
]
