"""The static description of the built-in backends says exactly what their modules register: the same
names, summaries, notes and weight status, so ``driftloop models`` (which reads only the description) never
tells a different story from ``driftloop run``."""

from __future__ import annotations

from importlib import import_module

import pytest

from driftloop.errors import SpecError
from driftloop.replicators import known, registry


def test_every_builtin_is_described_as_its_module_registers_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")  # one hosted backend with a key, the others without
    real = {b.name: b for name, b in registry.backends().items() if name == b.name}
    described = {k.name: k for k in known.entries()}
    assert set(described) == set(real)
    for name, k in described.items():
        b = real[name]
        assert (k.summary, k.notes) == (b.summary, b.notes), name
        assert name in {m.name for m in import_module(k.module).backends()}, name
        assert k.weights() == b.weights_status(b.config_type()), name


def test_lookup_imports_only_the_module_of_the_model_named() -> None:
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from driftloop.replicators import registry\n"
        "registry.build('jpeg:quality=75')\n"
        "print(','.join(m for m in sys.modules if m.startswith('driftloop.replicators.')))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    loaded = set(out.strip().split(","))
    assert "driftloop.replicators.codec" in loaded
    assert not {
        m
        for m in loaded
        if m.startswith(("driftloop.replicators.hosted.", "driftloop.replicators.tae_runtime"))
    }
    assert "driftloop.replicators.diffusers.img2img" not in loaded


def test_an_unknown_model_names_every_known_one() -> None:
    with pytest.raises(SpecError, match=r"unknown model 'nope'.*jpeg.*taef2"):
        registry.lookup("nope")
