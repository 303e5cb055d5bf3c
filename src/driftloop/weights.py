"""Where model weights come from.

Order: an explicit path → ``DRIFTLOOP_MODEL_DIR`` (one sub-folder per model, ``taef2/taef2_encoder.pth``) →
the user cache (``$XDG_CACHE_HOME/driftloop/models``) → a pinned download (URL + sha256) into that cache.
With ``HF_HUB_OFFLINE=1`` / ``DRIFTLOOP_OFFLINE=1``, or when the network fails, a missing file is one clear
error that lists where it looked and where to put the file.
"""

from __future__ import annotations

import hashlib
import os
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from driftloop._fs import atomic_write
from driftloop.errors import WeightsError

ProgressFn = Callable[[int, int | None], None]


@dataclass(frozen=True)
class WeightFile:
    """One pinned file: its name, where to download it, and its sha256 (``None``: not pinned)."""

    filename: str
    url: str
    sha256: str | None = None


def cache_dir() -> Path:
    """The per-user download cache."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "driftloop" / "models"


def offline() -> bool:
    """True when the user asked for no network access."""
    return any(
        os.environ.get(v, "").lower() in {"1", "true", "yes"} for v in ("HF_HUB_OFFLINE", "DRIFTLOOP_OFFLINE")
    )


def candidate_dirs(model: str, explicit: str | Path | None = None) -> list[Path]:
    """Folders searched for ``model``'s files, in order."""
    dirs: list[Path] = []
    if explicit:
        root = Path(explicit).expanduser()
        dirs += [root, root / model]
    env = os.environ.get("DRIFTLOOP_MODEL_DIR")
    if env:
        dirs.append(Path(env).expanduser() / model)
    dirs.append(cache_dir() / model)
    return dirs


def _why_not(folder: Path, files: list[WeightFile]) -> str:
    """Why ``folder`` did not serve: it does not exist, or which files it lacks."""
    if not folder.is_dir():
        return "no such folder"
    return "lacks " + " and ".join(f.filename for f in files if not (folder / f.filename).is_file())


def looked_in(model: str, files: list[WeightFile]) -> str:
    """Every place searched for ``model``'s files without an explicit path, each with why it did not
    serve; an unset ``DRIFTLOOP_MODEL_DIR`` is named as such (the usual cause on a new machine)."""
    env = os.environ.get("DRIFTLOOP_MODEL_DIR")
    if env:
        folder = Path(env).expanduser() / model
        places = [f"$DRIFTLOOP_MODEL_DIR/{model} = {folder} ({_why_not(folder, files)})"]
    else:
        places = ["$DRIFTLOOP_MODEL_DIR (not set)"]
    cache = cache_dir() / model
    places.append(f"the download cache {cache} ({_why_not(cache, files)})")
    return "; ".join(places)


def explicit_dirs(model: str, explicit: str | Path) -> list[Path]:
    """The folders an explicit ``weights=PATH`` names: PATH itself, or its sub-folder named for the model."""
    root = Path(explicit).expanduser()
    return [root, root / model]


def find_local(
    model: str, files: list[WeightFile], explicit: str | Path | None = None
) -> dict[str, Path] | None:
    """The first folder holding every file, or ``None``. Never touches the network.

    An explicit path is the only place looked at: files found elsewhere must never stand in for the ones the
    user named (the run would record one path and load another).
    """
    folders = explicit_dirs(model, explicit) if explicit else candidate_dirs(model)
    for folder in folders:
        paths = {f.filename: folder / f.filename for f in files}
        if all(p.is_file() for p in paths.values()):
            return paths
    return None


def explicit_missing(model: str, files: list[WeightFile], explicit: str | Path) -> str:
    """Why an explicit ``weights=PATH`` does not hold ``model``'s files, and what is expected there."""
    names = " and ".join(f.filename for f in files)
    root = Path(explicit).expanduser()
    if not root.exists():
        return f"weights path {explicit} does not exist"
    if root.is_file():
        return (
            f"weights={explicit} is a file; {model} needs a folder holding {names} "
            f"(give that folder, or one with a '{model}/' sub-folder holding them)"
        )
    looked = ", ".join(str(d) for d in explicit_dirs(model, explicit))
    return f"weights={explicit} does not hold {model}'s weight files: expected {names} in {looked}"


def download(
    weight: WeightFile, dest: Path, progress: ProgressFn | None = None, timeout: float = 60.0
) -> Path:
    """Download one file to ``dest`` atomically (the package's one atomic write), checking its pinned sha256
    before it is put in place: a wrong or partial download never takes the file's name."""
    digest = hashlib.sha256()
    try:
        with atomic_write(dest) as tmp:
            with open(tmp, "wb") as out, urllib.request.urlopen(weight.url, timeout=timeout) as resp:
                total = resp.headers.get("Content-Length")
                total_n = int(total) if total and total.isdigit() else None
                done = 0
                while block := resp.read(1 << 16):
                    out.write(block)
                    digest.update(block)
                    done += len(block)
                    if progress:
                        progress(done, total_n)
            got = digest.hexdigest()
            if weight.sha256 and got != weight.sha256:
                raise WeightsError(
                    f"{weight.filename}: downloaded from {weight.url} but its sha256 is {got}, expected "
                    f"{weight.sha256}; the file was discarded"
                )
        return dest
    except (urllib.error.URLError, OSError, TimeoutError) as exc:
        raise WeightsError(f"{weight.filename}: download from {weight.url} failed ({exc})") from None


def resolve(
    model: str,
    files: list[WeightFile],
    explicit: str | Path | None = None,
    progress: ProgressFn | None = None,
) -> dict[str, Path]:
    """Paths of every file of ``model``, downloading pinned files into the cache when allowed.

    With ``explicit`` (``weights=PATH``) only that path is used: its files, or a WeightsError saying what
    is missing there.
    """
    found = find_local(model, files, explicit)
    if found:
        return found
    if explicit:  # never downloads, never falls back to another folder
        raise WeightsError(explicit_missing(model, files, explicit))
    where = (
        f"put {', '.join(f.filename for f in files)} in a folder '{model}/' under DRIFTLOOP_MODEL_DIR "
        f"(or pass weights=PATH); looked in: {looked_in(model, files)}"
    )
    if offline():
        raise WeightsError(f"weights for {model!r} are missing and downloads are off (offline mode): {where}")
    target = cache_dir() / model
    try:
        for f in files:
            if not (target / f.filename).is_file():
                download(f, target / f.filename, progress)
    except WeightsError as exc:
        raise WeightsError(
            f"weights for {model!r} are missing and could not be downloaded: {exc}. {where}"
        ) from None
    return {f.filename: target / f.filename for f in files}
