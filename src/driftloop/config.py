"""The typed configuration of a run: what it was asked to do, validated once, stored as JSON.

A run's configuration is written into the workspace when the run is created and read back by everything
that continues or describes it (resume, sweeps, reports, the gallery). :class:`RunConfig` is that record:
built and validated by the start path, turned into JSON by :meth:`RunConfig.to_dict` (the exact keys and
order earlier releases stored), and read back by :meth:`RunConfig.from_dict`, which also accepts the
shorter records of workspaces made before a key existed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from typing import Any

from driftloop.errors import SpecError

DEFAULT_WORKSPACE = "driftloop-runs"
DEFAULT_STEPS = 101
#: Same figure as Pillow's own default ``Image.MAX_IMAGE_PIXELS`` (~ 0.25 GiB of RGB data at 3 bytes a
#: pixel): above it an input is much more likely to be a decompression bomb than a photo.
DEFAULT_MAX_PIXELS = 89_478_485
DEFAULT_SIZE = 512
MIN_SIZE = 8


IMPORTED_PREFIX = "imported:"  # the model of a run imported from copies made elsewhere
ARM_SEPARATOR = " + stabilize="


def parse_seeds(text: str, option: str = "--seeds") -> list[int]:
    """``1,2,3`` or ``0-4`` (inclusive) or a mix of both."""
    numbers: list[int] = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        match = re.fullmatch(r"(-?\d+)(?:-(-?\d+))?", part)
        if not match:
            raise SpecError(f"{option} {text!r}: expected whole numbers like 1,2,3 or a range like 0-4")
        lo = int(match[1])
        hi = int(match[2]) if match[2] is not None else lo
        numbers += range(lo, hi + 1)
    if not numbers:
        raise SpecError(f"{option}: give at least one number")
    return numbers


def arm_label(model: str, stabilize: str | None = "none") -> str:
    """What a run is on a bias card and in a sweep: ``MODEL`` for a plain run, ``MODEL + stabilize=SPEC``
    when a stabilizer changed each copy (a stabilized chain is another arm of the experiment)."""
    return model if not stabilize or stabilize == "none" else f"{model}{ARM_SEPARATOR}{stabilize}"


def split_arm(label: str) -> tuple[str, str]:
    """(model, stabilizer spec) of an :func:`arm_label` (``none`` for a plain model)."""
    model, sep, spec = label.partition(ARM_SEPARATOR)
    return (model, spec) if sep and spec else (label, "none")


def made_by(config: dict[str, Any]) -> str | None:
    """The model a user named for an imported chain (``driftloop import --model "GPT-5 in ChatGPT"``)."""
    imported = config.get("import") or {}
    return imported.get("model") if isinstance(imported, dict) else None


def config_arm(config: dict[str, Any]) -> str:
    """The arm of a stored configuration record (``model``, and ``stabilize`` when present)."""
    return arm_label(str(config.get("model")), config.get("stabilize"))


@dataclass(frozen=True)
class InputRef:
    """An input image as a run records it: the path given and the sha256 of the file."""

    path: str
    sha256: str


@dataclass(frozen=True)
class MetricsConfig:
    """What is measured per frame: the standard suite, LPIPS/CLIP/DINOv2, face landmarks."""

    enabled: bool = True
    perceptual: bool = False
    faces: bool = False


@dataclass(frozen=True)
class RunConfig:
    """Everything that decides a run's frames and records, plus how it is measured and priced."""

    model: str
    inputs: tuple[InputRef, ...]
    seeds: tuple[int, ...]
    n_steps: int = DEFAULT_STEPS
    size: int = DEFAULT_SIZE  # the frame side actually used (rounded to the model's multiple)
    requested_size: int = DEFAULT_SIZE
    batch_size: int | None = None
    stop_on_fixed_point: bool = False
    patience: int = 3
    refusal_retries: int = 2
    max_cost_usd: float | None = None
    cost: dict[str, Any] = field(default_factory=dict)  # {"factors": snapshot, "meters": description}
    metrics: MetricsConfig = field(default_factory=MetricsConfig)
    sweep: str | None = None
    stabilize: str = "none"  # a stabilizer spec (driftloop.stabilizers), applied to each copy
    keep_raw: bool = False  # also store the model's copy before the stabilizer

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Refuse settings no run can have, with the option's name and the value given."""
        if self.n_steps < 1:
            raise SpecError(f"number of steps must be at least 1 (got {self.n_steps})")
        if self.requested_size < MIN_SIZE:
            raise SpecError(f"--size must be at least {MIN_SIZE} pixels (got {self.requested_size})")
        if self.batch_size is not None and self.batch_size < 1:
            raise SpecError(f"batch size must be at least 1 (got {self.batch_size})")
        if self.patience < 1:
            raise SpecError(f"fixed-point patience must be at least 1 (got {self.patience})")
        if self.refusal_retries < 0:
            raise SpecError(f"refusal retries must be 0 or more (got {self.refusal_retries})")
        if self.max_cost_usd is not None and self.max_cost_usd < 0:
            raise SpecError(f"--max-cost must be 0 or more dollars (got {self.max_cost_usd})")
        if not self.seeds:
            raise SpecError("give at least one seed")
        if self.keep_raw and self.stabilize == "none":
            raise SpecError("--keep-raw keeps the model's copy before a stabilizer: give --stabilize too")

    @property
    def chain_count(self) -> int:
        return len(self.inputs) * len(self.seeds)

    def with_budget(self, max_cost_usd: float | None) -> RunConfig:
        """The same run with another ``--max-cost`` (a resume may raise it)."""
        return self if max_cost_usd is None else replace(self, max_cost_usd=max_cost_usd)

    def same_run_as(self, other: RunConfig) -> bool:
        """Whether two configurations make the same chains (what ``run --resume`` looks for)."""
        return self.key() == other.key()

    def key(self) -> tuple[Any, ...]:
        return (
            self.model,
            tuple(i.sha256 for i in self.inputs),
            self.seeds,
            self.n_steps,
            self.size,
            self.stop_on_fixed_point,
            *((self.stabilize,) if self.stabilize != "none" else ()),
        )

    @property
    def arm(self) -> str:
        """The run's arm: its model, with the stabilizer when there is one (see :func:`arm_label`)."""
        return arm_label(self.model, self.stabilize)

    def to_dict(self) -> dict[str, Any]:
        """The stored JSON record, with the keys and order of every release so far (``stabilize`` and
        ``keep_raw`` only when not their defaults, so a plain run's record is unchanged)."""
        extra: dict[str, Any] = {}
        if self.stabilize != "none":
            extra["stabilize"] = self.stabilize
        if self.keep_raw:
            extra["keep_raw"] = True
        return {
            "model": self.model,
            "inputs": [{"path": i.path, "sha256": i.sha256} for i in self.inputs],
            "seeds": list(self.seeds),
            "n_steps": self.n_steps,
            "size": self.size,
            "requested_size": self.requested_size,
            "batch_size": self.batch_size,
            "stop_on_fixed_point": self.stop_on_fixed_point,
            "patience": self.patience,
            "refusal_retries": self.refusal_retries,
            "max_cost_usd": self.max_cost_usd,
            "cost": self.cost,
            "metrics": {
                "enabled": self.metrics.enabled,
                "perceptual": self.metrics.perceptual,
                "faces": self.metrics.faces,
            },
            "sweep": self.sweep,
            **extra,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunConfig:
        """Read a stored record; keys added by later releases take their defaults when absent."""
        metrics = data.get("metrics") or {}
        return cls(
            model=data["model"],
            inputs=tuple(InputRef(str(i["path"]), str(i["sha256"])) for i in data.get("inputs", [])),
            seeds=tuple(int(s) for s in data.get("seeds", [])),
            n_steps=int(data["n_steps"]),
            size=int(data["size"]),
            requested_size=int(data.get("requested_size") or data["size"]),  # None: an imported run
            batch_size=data.get("batch_size"),
            stop_on_fixed_point=bool(data.get("stop_on_fixed_point", False)),
            patience=int(data.get("patience", 3)),
            refusal_retries=int(data.get("refusal_retries", 2)),
            max_cost_usd=data.get("max_cost_usd"),
            cost=dict(data.get("cost") or {}),
            metrics=MetricsConfig(
                enabled=bool(metrics.get("enabled", True)),
                perceptual=bool(metrics.get("perceptual", False)),
                faces=bool(metrics.get("faces", False)),
            ),
            sweep=data.get("sweep"),
            stabilize=str(data.get("stabilize") or "none"),
            keep_raw=bool(data.get("keep_raw", False)),
        )
