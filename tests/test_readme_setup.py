"""README.md's set-up works as pasted on a new machine: CI runs exactly its commands, nothing exported by
hand, every fixture finds the weights whatever its scope, and the files its examples name exist."""

from __future__ import annotations

import glob
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
README = (REPO / "README.md").read_text(encoding="utf-8")
SESSION_VARS = ("DRIFTLOOP_MODEL_DIR", "RAY_AUTH_MODE", "DRIFTLOOP_OFFLINE", "XDG_CACHE_HOME")


def _setup_commands() -> list[str]:
    section = README[README.index("## Set up") :]
    block = re.search(r"```bash\n(.*?)```", section, re.S)
    assert block, "README's Set up has no bash block"
    return [line for line in block[1].splitlines() if line.strip()]


def test_ci_runs_the_readme_set_up_commands_verbatim_and_exports_nothing() -> None:
    script = (REPO / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    commands = _setup_commands()
    assert commands[-1] == "pytest" and any("pip install" in c for c in commands)
    for command in commands:
        assert command in script, f".ci/run does not run README's `{command}`"
    assert not [line for line in script if re.match(r"\s*export\b|\s*[A-Z_]+=\S+\s+\S", line)]


@pytest.fixture(scope="module")
def seen_by_a_module_fixture() -> dict[str, str | None]:
    """What a module-scoped fixture (built before any function-scoped one) sees of the environment."""
    return {name: os.environ.get(name) for name in SESSION_VARS}


def test_a_module_fixture_sees_the_weights(seen_by_a_module_fixture: dict[str, str | None]) -> None:
    seen = seen_by_a_module_fixture
    assert seen["DRIFTLOOP_MODEL_DIR"] and (Path(seen["DRIFTLOOP_MODEL_DIR"]) / "taef2").is_dir(), seen
    assert seen["RAY_AUTH_MODE"] == "disabled" and seen["DRIFTLOOP_OFFLINE"] == "1", seen
    assert seen["XDG_CACHE_HOME"] and not seen["XDG_CACHE_HOME"].startswith(str(Path.home() / ".cache"))


def test_nothing_needs_exporting(tmp_path: Path) -> None:
    """The check above, in a pytest started with none of the variables set, as on a new machine."""
    if os.environ.get("_DRIFTLOOP_INNER_PYTEST"):
        pytest.skip("already the inner run")
    env = {k: v for k, v in os.environ.items() if k not in SESSION_VARS}
    env["_DRIFTLOOP_INNER_PYTEST"] = "1"
    test = f"{Path(__file__).relative_to(REPO)}::test_a_module_fixture_sees_the_weights"
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", test, "--rootdir", str(REPO)],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0 and "1 passed" in done.stdout, done.stdout[-3000:] + done.stderr[-2000:]


def test_every_file_the_readme_names_in_examples_exists() -> None:
    named = set(re.findall(r"examples/[\w./*-]+", README))
    assert named, "README names no example file"
    missing = [name for name in sorted(named) if not glob.glob(str(REPO / name.rstrip(".")))]
    assert not missing, f"README names example files that do not exist: {missing}"
    runs = re.findall(r"^driftloop run (\S+)", README, re.M)  # imports name the user's own copies
    assert not [arg for arg in runs if arg.endswith((".jpg", ".png")) and not arg.startswith("examples/")]


def test_every_picture_the_readme_shows_exists_and_the_screenshots_stay_small() -> None:
    shown = re.findall(r"!\[[^\]]*\]\(([^)\s]+)\)", README)
    assert any(p.startswith("docs/screenshots/") for p in shown), "README shows no screenshot"
    missing = [p for p in shown if not (REPO / p).is_file()]
    assert not missing, f"README shows pictures that do not exist: {missing}"
    screenshots = [REPO / p for p in shown if p.startswith("docs/screenshots/")]
    big = {p.name: p.stat().st_size for p in screenshots if p.stat().st_size > 250_000}
    assert not big, f"screenshots over 250 KB (docs/screenshots/make_screenshots.py keeps them under): {big}"
    assert sum(p.stat().st_size for p in screenshots) <= 1_500_000
