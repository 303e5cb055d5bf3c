"""An archive of posted chains imported in one go: one run per chain, one sweep over them, one card.

People collect chains others posted: a folder holding one GIF, video or folder of copies per chain.
``driftloop import ARCHIVE/`` imports each member as a chain labelled by its name, records the runs as a
sweep named after the archive (``driftloop bias NAME`` reads exactly them; no model is run, there is no
control), and writes the bias card: one row per source. A bad member (unreadable, too short, the same
chain as one already stored) is reported by name and the others are imported.

A folder is an archive when it holds chains and no loose still images: subfolders of images, videos, or
animated GIF/WebP files only (a folder of numbered copies is one chain, as before).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image

from driftloop.config import DEFAULT_WORKSPACE
from driftloop.errors import DriftloopError, InputError
from driftloop.importer import import_chain
from driftloop.report.bias_card import write_bias_card_for
from driftloop.sequences import IMAGE_SUFFIXES, VIDEO_SUFFIXES, natural_key
from driftloop.store import RunView, Store

__all__ = ["ArchiveImport", "archive_members", "import_archive", "is_archive"]

_ANIMATED = frozenset({".gif", ".webp", ".png"})


@dataclass
class ArchiveImport:
    """What an archive import did: the sweep's name, the run of each member imported, the bad members."""

    sweep: str
    runs: dict[str, str] = field(default_factory=dict)  # member name -> run id
    failed: dict[str, str] = field(default_factory=dict)  # member name -> why
    card: Path | None = None


def _frames(path: Path) -> int:
    try:
        with Image.open(path) as im:
            return int(getattr(im, "n_frames", 1))
    except (OSError, ValueError, Image.DecompressionBombError):
        return 0


def archive_members(folder: Path) -> list[Path] | None:
    """The chains of an archive folder in natural order, or None when the folder is one chain (it holds
    loose still images, or nothing that is a chain)."""
    try:
        entries = sorted((p for p in folder.iterdir() if not p.name.startswith(".")),
                         key=lambda p: natural_key(p.name))  # fmt: skip
    except OSError:
        return None
    members: list[Path] = []
    for p in entries:
        suffix = p.suffix.lower()
        if p.is_dir() or suffix in VIDEO_SUFFIXES or (suffix in _ANIMATED and _frames(p) != 1):
            members.append(p)  # a chain (an animation, or an unreadable one: a member to report)
        elif suffix in IMAGE_SUFFIXES:
            return None  # a loose still image: this folder is a chain of copies
    return members if members else None


def is_archive(folder: str | Path) -> bool:
    path = Path(folder)
    return path.is_dir() and archive_members(path) is not None


def import_archive(
    folder: str | Path,
    workspace: str | Path = DEFAULT_WORKSPACE,
    name: str | None = None,
    model: str | None = None,
    faces: bool = False,
    render: bool = True,
    log: Callable[[str], None] | None = None,
) -> ArchiveImport:
    """Import every chain of an archive folder, record them as the sweep ``name`` (default: the folder's
    name) and write its bias card. Raises ``InputError`` when no member could be imported."""
    say = log or (lambda _msg: None)
    root = Path(folder).expanduser().resolve()
    members = archive_members(root)
    if members is None:
        raise InputError(f"{root}: is not an archive of chains (subfolders, videos or animated GIF/WebP)")
    result = ArchiveImport(name or root.name)
    for i, member in enumerate(members, 1):
        label = member.stem if member.is_file() else member.name
        say(f"[{i}/{len(members)}] {member.name}")
        try:
            result.runs[member.name] = import_chain(member, workspace, label=label, model=model, faces=faces,
                                                    render=render, log=say)  # fmt: skip
        except DriftloopError as exc:
            result.failed[member.name] = str(exc).splitlines()[0]
            say(f"{member.name}: not imported: {result.failed[member.name]}")
    if not result.runs:
        listed = "; ".join(f"{k}: {v}" for k, v in result.failed.items())
        raise InputError(f"{root}: no chain could be imported ({listed})")
    store = Store(workspace)
    ids = list(result.runs.values())
    store.save_sweep(result.sweep, {
        "models": [], "control": False, "inputs": [], "seeds": [0], "steps": 0, "size": 0, "options": {},
        "spec_file": str(root), "imported": ids, "archive": {"folder": str(root), "failed": result.failed},
    })  # fmt: skip
    for run_id in ids:
        store.add_sweep_run(result.sweep, run_id)
    runs = [RunView(store, run_id) for run_id in ids]
    folder_out = Path(workspace) / "sweeps" / result.sweep
    result.card, _ = write_bias_card_for(runs, folder_out, f"bias card · {result.sweep}", False)
    return result
