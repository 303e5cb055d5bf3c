"""Diffusion backends (img2img, instruct, vae, caption→redraw) on tiny random models loaded through the real
diffusers / transformers loading path; presets, seeds, schedules, offline and out-of-memory errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from diffusion_fixtures import install_in_hf_cache, save_all
from PIL import Image

import driftloop
from driftloop.errors import DriftloopError, RunInterrupted, SpecError, WeightsError
from driftloop.frames import frame_sha256
from driftloop.replicators import build, listing, parse, registry
from driftloop.replicators.base import StepContext
from driftloop.replicators.diffusers import caption_redraw, img2img, instruct, vae
from driftloop.replicators.diffusers.captioner import Captioner
from driftloop.replicators.diffusers.hub import ModelRef, load_model
from driftloop.replicators.diffusers.presets import PRESETS
from driftloop.replicators.diffusers.runtime import MissingDependencyError, OutOfMemoryError, scheduled
from driftloop.replicators.spec import format_spec, split_spec

pytest.importorskip("diffusers")
pytest.importorskip("transformers")

MODULES = (img2img, instruct, vae, caption_redraw)


@pytest.fixture(scope="session")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Tiny SD (text-to-image), InstructPix2Pix, VAE and BLIP folders, saved with save_pretrained."""
    return save_all(tmp_path_factory.mktemp("tiny-models"))


@pytest.fixture(scope="module", autouse=True)
def _registered_single_threaded() -> Iterator[None]:
    """The diffusion backends are in the registry (until registry.py lists them itself), and torch uses one
    thread: tiny models are dominated by thread start-up (up to 80× slower with 2 threads on a busy
    2-core machine)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    with pytest.MonkeyPatch.context() as mp:
        if "img2img" not in registry.backends():
            original = registry.backends

            def with_diffusion() -> dict:
                table = original()
                for module in MODULES:
                    for b in module.backends():
                        table.setdefault(b.name, b)
                return table

            mp.setattr(registry, "backends", with_diffusion)
        yield
    torch.set_num_threads(threads)


@pytest.fixture(autouse=True)
def _empty_offline_hf_cache(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The HF cache is an empty folder and downloads are off."""
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf-cache"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="session")
def photo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from skimage import data

    path = tmp_path_factory.mktemp("inputs") / "astronaut.png"
    Image.fromarray(data.astronaut()).save(path)
    return path


def frames(n: int, size: int = 32) -> list[np.ndarray]:
    return [np.random.default_rng(i).integers(0, 256, (size, size, 3), dtype=np.uint8) for i in range(n)]


def chain_frames(run) -> dict[tuple[int, int], str]:
    return {(r["chain"], r["step"]): r["sha256"] for r in run.records()}


# ------------------------------------------------------------------------------------- specs, presets


def test_preset_names_and_specs_parse() -> None:
    assert split_spec("blip+sd-turbo") == ("blip+sd-turbo", None, {})
    assert split_spec("blip+sd-turbo:steps=2") == ("blip+sd-turbo", None, {"steps": "2"})
    backend, config = parse("sd-turbo:strength=0.3,steps=4")
    assert (backend.name, config.model, config.strength, config.steps, config.guidance) == (
        "sd-turbo",
        "stabilityai/sd-turbo",
        0.3,
        4,
        0.0,
    )
    assert format_spec("sd-turbo", config, "model") == "sd-turbo:strength=0.3,steps=4"
    assert format_spec("sd-turbo", parse("sd-turbo")[1], "model") == "sd-turbo"
    _, config = parse("img2img:stabilityai/sdxl-turbo,strength=0.4")
    assert (config.model, config.strength) == ("stabilityai/sdxl-turbo", 0.4)
    _, config = parse("sd-turbo:/models/sd-turbo")  # a local copy instead of the hub id
    assert config.model == "/models/sd-turbo"
    _, config = parse("instruct:Qwen/Qwen-Image-Edit")
    assert config.instruction == "Create the exact replica of this image, don't change a thing."
    _, config = parse("vae:/some/where/vae,sample=true")
    assert (config.model, config.sample) == ("/some/where/vae", True)
    _, config = parse(
        "caption-redraw:captioner=Salesforce/blip-image-captioning-base,pipeline=stabilityai/sd-turbo"
    )
    assert config.pipeline == "stabilityai/sd-turbo"
    _, config = parse("blip+sd-turbo")
    assert (config.captioner, config.pipeline, config.steps) == (
        "Salesforce/blip-image-captioning-base",
        "stabilityai/sd-turbo",
        1,
    )
    _, config = parse("flux-kontext", device="cuda")  # the CLI's --device overrides the field
    assert (config.model, config.device, config.dtype) == (
        "black-forest-labs/FLUX.1-Kontext-dev",
        "cuda",
        "bf16",
    )
    for preset in PRESETS:  # turbo-style presets must denoise at least one step
        _, config = parse(preset.name)
        if hasattr(config, "strength"):
            assert int(config.steps * config.strength) >= 1


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("sd-turbo:steps=1", "steps×strength must be at least 1"),
        ("sd-turbo:strength=0.3", "use steps=4 or more"),
        ("img2img", "give the pipeline"),
        ("img2img:a/b,schedule=linear", "needs strength_end"),
        ("img2img:a/b,strength_end=0.2", "needs schedule=linear or schedule=cosine"),
        ("img2img:a/b,strength=1.5", "must be in (0, 1]"),
        ("sd-turbo:seed_policy=same", "is not one of fresh, fixed"),
        ("sd-turbo:dtype=fp8", "is not one of auto, fp32, fp16, bf16"),
        ("sd-turbo:device=tpu", "device='tpu'"),
        ("sd-vae:cpu_offload=true", "cpu_offload is for pipelines"),
        ("sd-turbo:device=cpu,cpu_offload=true", "cpu_offload=true needs a GPU"),
        ("caption-redraw:pipeline=a/b", "give both models"),
    ],
)
def test_bad_diffusion_specs(spec: str, message: str) -> None:
    with pytest.raises(SpecError) as info:
        parse(spec)
    assert message in str(info.value)


def test_models_listing_shows_presets_with_size_and_cache_state(tiny: dict[str, Path]) -> None:
    rows = {r.name: r for r in listing()}
    for name in ("sd-turbo", "sdxl-turbo", "sd15", "sdxl", "flux-kontext", "qwen-image-edit", "sd-vae"):
        assert name in rows
    assert "blip+sd-turbo" in rows
    turbo = rows["sd-turbo"]
    assert not turbo.weights.present
    assert "stabilityai/sd-turbo (≈2.6 GB" in turbo.weights.where and "≈2.6 GB" in turbo.notes
    assert "≈34 GB" in rows["flux-kontext"].weights.where
    # once in the HF cache (as a download leaves it), it is present, found without network
    cache = Path(os.environ["HF_HUB_CACHE"])
    install_in_hf_cache(tiny["sd"], cache, "stabilityai/sd-turbo")
    status = {r.name: r for r in listing()}["sd-turbo"].weights
    assert status.present and "hf-cache" in status.where
    both = {r.name: r for r in listing()}["blip+sd-turbo"].weights
    assert not both.present and "blip-image-captioning-base" in both.where


def test_dependency_note_and_error_without_diffusers(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "diffusers" else real(name, *a)
    )
    backend = next(b for b in img2img.backends() if b.name == "sd-turbo")
    assert "pip install 'driftloop[diffusers]'" in backend.notes
    with pytest.raises(MissingDependencyError, match=r"driftloop\[diffusers\]"):
        backend.build(backend.config_type())


def test_modules_import_without_loading_diffusers() -> None:
    code = (
        "import sys\n"
        "from driftloop.replicators.diffusers import img2img, instruct, vae, caption_redraw, presets\n"
        "names = [b.name for m in (img2img, instruct, vae, caption_redraw) for b in m.backends()]\n"
        "for m in (img2img, instruct, vae, caption_redraw):\n"
        "    [b.weights_status(b.config_type()) for b in m.backends()]\n"
        "print(len(names), 'diffusers' in sys.modules, 'transformers' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["12", "False", "False"]


# --------------------------------------------------------------------------------- offline, not found


def test_offline_missing_hub_model_is_one_clear_error(workspace: Path, photo: Path) -> None:
    with pytest.raises(WeightsError) as info:
        build("sd-turbo")
    message = str(info.value)
    for part in (
        "'stabilityai/sd-turbo'",
        "≈2.6 GB",
        "hf download stabilityai/sd-turbo",
        "HF_HUB_OFFLINE",
        "folder",
    ):
        assert part in message
    assert info.value.exit_code == 3
    with pytest.raises(WeightsError, match="is gated"):
        build("flux-kontext")
    with pytest.raises(WeightsError, match="does not exist"):
        build("img2img:/no/such/folder")
    with pytest.raises(WeightsError) as info:  # both missing models named in one error
        build("blip+sd-turbo")
    assert "Salesforce/blip-image-captioning-base" in str(info.value) and "≈0.99 GB" in str(info.value)
    assert "stabilityai/sd-turbo" in str(info.value)
    with pytest.raises(WeightsError):
        driftloop.run(photo, model="sd-turbo", n=2, size=32, workspace=workspace, render=False)
    assert not (workspace / "runs").exists() or not any((workspace / "runs").iterdir())


def test_hub_exceptions_become_weights_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    from huggingface_hub.errors import LocalEntryNotFoundError

    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.delenv("DRIFTLOOP_OFFLINE")
    ref = ModelRef("some-org/some-model", "some-org/some-model", "hub")
    for exc in (
        OSError("We couldn't connect to 'https://huggingface.co' to load the files"),
        LocalEntryNotFoundError("Cannot find the requested files in the disk cache"),
        OSError("some-org/some-model does not appear to have a file named model_index.json."),
    ):

        def loader(kwargs, exc=exc):
            raise exc

        with pytest.raises(WeightsError) as info:
            load_model(ref, "pipeline", loader)
        assert "'some-org/some-model'" in str(info.value) and "hf download some-org/some-model" in str(
            info.value
        )


def test_hub_id_in_the_hf_cache_loads_offline(tiny: dict[str, Path]) -> None:
    install_in_hf_cache(tiny["sd"], Path(os.environ["HF_HUB_CACHE"]), "tiny-org/tiny-sd", "ab" * 20)
    r = build("img2img:tiny-org/tiny-sd,steps=2,strength=0.5")
    facts = r.describe()
    assert (facts["source"], facts["revision"], facts["pipeline"]) == (
        "hf-cache",
        "ab" * 20,
        "StableDiffusionImg2ImgPipeline",
    )
    out = r.replicate(frames(1), [7])
    assert out[0].frame.shape == (32, 32, 3)


def test_hub_id_found_under_driftloop_model_dir(
    tiny: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import shutil

    shutil.copytree(tiny["vae"], tmp_path / "models" / "tiny-org" / "tiny-vae")
    monkeypatch.setenv("DRIFTLOOP_MODEL_DIR", str(tmp_path / "models"))
    facts = build("vae:tiny-org/tiny-vae").describe()
    assert facts["source"] == "model-dir" and facts["path"].endswith("tiny-org/tiny-vae")


def test_cpu_offload_needs_a_gpu(tiny: dict[str, Path]) -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is here")
    with pytest.raises(SpecError, match="cpu_offload=true needs a GPU"):
        build(f"img2img:{tiny['sd']},cpu_offload=true")


# ------------------------------------------------------------------------------------ chains, end to end


def test_img2img_chain_runs_and_is_deterministic(tiny: dict[str, Path], photo: Path, tmp_path: Path) -> None:
    spec = f"img2img:{tiny['sd']},steps=2,strength=0.5"
    runs = [
        driftloop.run(
            photo, model=spec, n=3, seeds=(0, 1), size=32, workspace=tmp_path / f"ws{i}", render=False
        )
        for i in range(2)
    ]
    first, second = (chain_frames(r) for r in runs)
    assert len(first) == 2 * 4 and first == second  # bit-identical frames for the same seeds
    assert first[(0, 3)] != first[(1, 3)]
    rec = [r for r in runs[0].records() if r["step"] > 0]
    assert all(r["info"]["noise_seed"] == r["seed"] and r["info"]["strength"] == 0.5 for r in rec)
    assert runs[0].config["model"] == f"img2img:{tiny['sd']},steps=2"  # canonical: defaults dropped
    assert runs[0].row.model_info["pipeline"] == "StableDiffusionImg2ImgPipeline"


def test_instruct_chain_runs(tiny: dict[str, Path], photo: Path, workspace: Path) -> None:
    run = driftloop.run(
        photo, model=f"instruct:{tiny['pix2pix']},steps=2", n=2, size=32, workspace=workspace, render=False
    )
    rec = run.records()
    assert [r["step"] for r in rec] == [0, 1, 2]
    assert rec[2]["info"]["noise_seed"] == rec[2]["seed"]
    assert run.frame(0, 2).shape == (32, 32, 3)


@pytest.mark.slow
def test_flux_kontext_batch_through_the_generic_instruct_path(
    tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """Kontext works at ≈1 MP whatever it is given: ~15 s of CPU even tiny (skip with -m "not slow")."""
    from diffusion_fixtures import save_flux_kontext

    folder = save_flux_kontext(tmp_path / "kontext")
    r = build(f"instruct:{folder},steps=2,size=32")
    assert r.describe()["pipeline"] == "FluxKontextPipeline" and r.requirements.size_multiple == 16
    x = frames(2)
    a, b = r.replicate(x, [1, 2]), r.replicate(x, [1, 9])
    assert [c.frame.shape for c in a] == [(32, 32, 3)] * 2
    assert np.array_equal(a[0].frame, b[0].frame) and not np.array_equal(a[1].frame, b[1].frame)
    native = build(f"instruct:{folder},steps=1").replicate(x[:1], [1])[0]
    assert native.info["model_output_size"] == [1024, 1024]  # Kontext's own ≈1 MP, resized back


def test_instruct_rejects_a_pipeline_without_image_input(tiny: dict[str, Path]) -> None:
    # a text-to-image folder loaded generically has no image= argument
    with pytest.raises(SpecError, match="not an instruction editor"):
        build(f"instruct:{tiny['sd']}")


def test_vae_round_trip_chain(tiny: dict[str, Path], photo: Path, workspace: Path) -> None:
    run = driftloop.run(photo, model=f"vae:{tiny['vae']}", n=2, size=32, workspace=workspace, render=False)
    assert len(run.records()) == 3
    r = build(f"vae:{tiny['vae']}")
    facts = r.describe()
    assert (facts["scaling_factor"], facts["shift_factor"], facts["subfolder"]) == (0.5, 0.1, None)
    x = frames(2)
    assert all(
        np.array_equal(a, b) for a, b in zip(r.replicate(x, [1, 2]), r.replicate(x, [3, 4]), strict=True)
    )
    # the VAE inside a pipeline folder is found in vae/
    assert build(f"vae:{tiny['sd']}").describe()["subfolder"] == "vae"
    sampled = build(f"vae:{tiny['vae']},sample=true")
    a, b, c = (sampled.replicate(x[:1], [s])[0] for s in (5, 5, 6))
    assert np.array_equal(a.frame, b.frame) and not np.array_equal(a.frame, c.frame)
    assert a.info["noise_seed"] == 5


def test_caption_redraw_stores_a_caption_per_frame(
    tiny: dict[str, Path], photo: Path, workspace: Path
) -> None:
    spec = f"caption-redraw:captioner={tiny['blip']},pipeline={tiny['sd']},steps=2"
    run = driftloop.run(photo, model=spec, n=2, size=32, workspace=workspace, render=False)
    rec = run.records()
    assert rec[0]["info"] is None
    for r in rec[1:]:
        assert isinstance(r["info"]["caption"], str) and r["info"]["caption"]


def test_prompt_auto_captions_each_chain_once(
    tiny: dict[str, Path], photo: Path, workspace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    captioned: list[list[str]] = []
    real = Captioner.caption

    def recording(self, batch):
        captioned.append([frame_sha256(f) for f in batch])
        return real(self, batch)

    monkeypatch.setattr(Captioner, "caption", recording)
    spec = f"img2img:{tiny['sd']},steps=2,strength=0.5,prompt=auto,captioner={tiny['blip']}"

    def interrupt_after_step_2(event) -> None:
        if event.step == 2:
            raise KeyboardInterrupt

    with pytest.raises(RunInterrupted):
        driftloop.run(photo, model=spec, n=4, seeds=(0, 1), size=32, workspace=workspace, render=False,
                      progress=interrupt_after_step_2)  # fmt: skip
    (summary,) = driftloop.runs(workspace)
    run = driftloop.resume(summary.id, workspace=workspace, render=False)  # a new replicator: asks again
    origin = run.records()[0]["sha256"]
    assert captioned == [[origin], [origin]]  # frame 0 (both chains start from it), once per process
    records = [r for r in run.records() if r["step"] > 0]
    assert [r["step"] for r in records if r["chain"] == 0] == [1, 2, 3, 4]
    prompts = {r["info"]["prompt"] for r in records}
    assert len(prompts) == 1 and prompts.pop()


# ------------------------------------------------------------------------------ seeds, schedules, batches


def test_schedule_values() -> None:
    linear = [scheduled(0.6, 0.2, "linear", k, 5) for k in range(1, 7)]
    assert linear == pytest.approx([0.6, 0.5, 0.4, 0.3, 0.2, 0.2])
    cosine = [scheduled(0.6, 0.2, "cosine", k, 5) for k in range(1, 6)]
    assert cosine == pytest.approx(
        [0.6, 0.2 + 0.4 * (1 + np.cos(np.pi / 4)) / 2, 0.4, 0.2 + 0.4 * (1 - np.cos(np.pi / 4)) / 2, 0.2]
    )
    assert scheduled(0.5, None, "constant", 3, 5) == 0.5
    assert scheduled(0.6, 0.2, "linear", 1, 1) == 0.6


@pytest.fixture(scope="module")
def sd_replicator(tiny: dict[str, Path]):
    return build(f"img2img:{tiny['sd']},steps=5,strength=0.6,strength_end=0.2,schedule=linear")


def test_strength_follows_the_schedule_with_context(sd_replicator) -> None:
    x = frames(1)
    got = [
        sd_replicator.replicate(x, [k], context=StepContext([0], [k], n_steps=5))[0].info["strength"]
        for k in (1, 3, 5)
    ]
    assert got == pytest.approx([0.6, 0.4, 0.2])
    # without the engine's context: the start value
    assert sd_replicator.replicate(x, [1])[0].info["strength"] == 0.6


def test_fixed_and_fresh_seed_policies(tiny: dict[str, Path]) -> None:
    x = frames(2)
    chain_seeds = [11, 12]
    step_seeds = {1: [101, 201], 2: [102, 202]}
    fixed = build(f"img2img:{tiny['sd']},steps=2,strength=0.5,seed_policy=fixed")
    fresh = build(f"img2img:{tiny['sd']},steps=2,strength=0.5")
    by_step = {}
    for policy, r in (("fixed", fixed), ("fresh", fresh)):
        for step in (1, 2):
            ctx = StepContext(chain_seeds, [step, step], n_steps=3)
            by_step[policy, step] = r.replicate(x, step_seeds[step], context=ctx)
    assert [c.info["noise_seed"] for c in by_step["fixed", 1]] == chain_seeds
    assert [c.info["noise_seed"] for c in by_step["fixed", 2]] == chain_seeds
    assert [c.info["noise_seed"] for c in by_step["fresh", 1]] == step_seeds[1]
    assert [c.info["noise_seed"] for c in by_step["fresh", 2]] == step_seeds[2]
    # same input, same noise: fixed gives the same copy at every step; fresh does not
    assert np.array_equal(by_step["fixed", 1][0].frame, by_step["fixed", 2][0].frame)
    assert not np.array_equal(by_step["fresh", 1][0].frame, by_step["fresh", 2][0].frame)
    with pytest.warns(UserWarning, match="seed_policy=fixed needs the chain seeds"):
        out = fixed.replicate(x, [5, 6])
    assert [c.info["seed_policy"] for c in out] == ["fresh", "fresh"]


def _engine_passes_context() -> bool:
    import dataclasses

    from driftloop.replicators.base import Requirements

    return "wants_context" in {f.name for f in dataclasses.fields(Requirements)}


@pytest.mark.skipif(not _engine_passes_context(), reason="the engine does not pass a StepContext yet")
def test_engine_context_drives_fixed_noise_and_schedules(
    tiny: dict[str, Path], photo: Path, workspace: Path
) -> None:
    spec = f"img2img:{tiny['sd']},steps=5,strength=0.6,strength_end=0.2,schedule=linear,seed_policy=fixed"
    run = driftloop.run(photo, model=spec, n=5, seeds=(3, 4), size=32, workspace=workspace, render=False)
    for r in run.records():
        if r["step"]:
            assert r["info"]["noise_seed"] == r["chain_seed"] and r["info"]["seed_policy"] == "fixed"
            assert r["info"]["strength"] == pytest.approx(0.6 - 0.1 * (r["step"] - 1))


def test_a_frame_does_not_depend_on_its_neighbours_seeds(sd_replicator) -> None:
    x = frames(3)
    a = sd_replicator.replicate(x, [1, 2, 3])
    b = sd_replicator.replicate(x, [1, 8, 9])
    assert np.array_equal(a[0].frame, b[0].frame)
    assert not np.array_equal(a[1].frame, b[1].frame)


def test_size_option_runs_the_model_at_another_size(tiny: dict[str, Path]) -> None:
    r = build(f"img2img:{tiny['sd']},steps=2,strength=0.5,size=16")
    out = r.replicate(frames(1, 32), [3])
    assert out[0].frame.shape == (32, 32, 3) and out[0].info["model_output_size"] == [16, 16]


# ------------------------------------------------------------------------------------ out of memory


def test_out_of_memory_becomes_a_clear_error(sd_replicator, monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    def oom(self, *args, **kwargs):
        raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(type(sd_replicator.pipe), "__call__", oom)
    with pytest.raises(OutOfMemoryError) as info:
        sd_replicator.replicate(frames(4), [1, 2, 3, 4])
    assert "--batch-size 2" in str(info.value) and isinstance(info.value, DriftloopError)

    def mps_oom(self, *args, **kwargs):
        raise RuntimeError("MPS backend out of memory (MPS allocated: 17.00 GB)")

    monkeypatch.setattr(type(sd_replicator.pipe), "__call__", mps_oom)
    with pytest.raises(OutOfMemoryError, match="ran out of"):
        sd_replicator.replicate(frames(2), [1, 2])

    def bug(self, *args, **kwargs):
        raise RuntimeError("shape mismatch")

    monkeypatch.setattr(type(sd_replicator.pipe), "__call__", bug)
    with pytest.raises(RuntimeError, match="shape mismatch"):
        sd_replicator.replicate(frames(1), [1])


def test_describe_is_json(sd_replicator) -> None:
    facts = sd_replicator.describe()
    json.dumps(facts)
    assert facts["device"] == "cpu" and facts["dtype"] == "fp32" and facts["schedule"] == "linear"


def test_a_blacked_out_copy_is_a_refusal_not_a_frame() -> None:
    """A safety checker returns a black image for a flagged copy: the chain must not go on from it."""
    from driftloop.replicators.base import Copy, Refusal
    from driftloop.replicators.diffusers.pipeline import PipelineReplicator

    black = np.zeros((8, 8, 3), np.uint8)
    flagged = PipelineReplicator.outcome(black, {"nsfw_content_detected": True, "noise_seed": 1})
    assert isinstance(flagged, Refusal) and "safety checker" in flagged.reason
    assert flagged.info["noise_seed"] == 1
    kept = PipelineReplicator.outcome(black + 5, {"noise_seed": 1})
    assert isinstance(kept, Copy) and kept.frame[0, 0, 0] == 5
