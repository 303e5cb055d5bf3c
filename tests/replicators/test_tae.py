"""The tiny-autoencoder backend on the real TAEF2 weights, and how weights are found or fetched."""

from __future__ import annotations

import hashlib
import http.server
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from skimage import data
from skimage.metrics import structural_similarity

from driftloop.errors import WeightsError
from driftloop.images import normalise
from driftloop.replicators import build
from driftloop.weights import WeightFile, download, resolve

ENC, DEC = "taef2_encoder.pth", "taef2_decoder.pth"


@pytest.fixture(scope="module")
def astronaut128() -> np.ndarray:
    from PIL import Image

    frame, _ = normalise(Image.fromarray(data.astronaut()), 128, 8)
    return frame


def test_round_trip_is_close_but_not_exact(models_dir: Path, astronaut128: np.ndarray) -> None:
    rep = build("taef2")
    out = rep.replicate([astronaut128], [0])[0]
    assert out.shape == astronaut128.shape and out.dtype == np.uint8
    ssim = structural_similarity(astronaut128, out, channel_axis=2)
    assert 0.8 < ssim < 0.999  # a real model: close, lossy
    assert np.array_equal(out, rep.replicate([astronaut128], [123])[0])  # deterministic, seed-free


def test_recursion_drifts_away(models_dir: Path, astronaut128: np.ndarray) -> None:
    rep = build("taef2")
    frame, scores = astronaut128, []
    for _ in range(4):
        frame = rep.replicate([frame], [0])[0]
        scores.append(structural_similarity(astronaut128, frame, channel_axis=2))
    assert scores == sorted(scores, reverse=True) and scores[-1] < scores[0]


def test_describe_records_weight_hashes(models_dir: Path) -> None:
    info = build("taef2").describe()
    files = info["weight_files"]
    assert files[ENC]["sha256"] == "10a4e1021e89d7551eaf161352da8dbd0b1aa83872ae28b150c1df1ce2f147b6"
    assert files[DEC]["sha256"] == "0a44a31e1ae59eb9dbf9359d24942fd3ef5928162c1800d97a28c61d51be0ab5"
    assert len(info["weights_sha256"]) == 64 and info["device"] == "cpu"


def test_explicit_weights_path_wins(
    models_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    own = tmp_path / "mine"
    own.mkdir()
    for name in (ENC, DEC):
        shutil.copy(models_dir / "taef2" / name, own / name)
    monkeypatch.delenv("DRIFTLOOP_MODEL_DIR")
    rep = build(f"taef2:weights={own}")
    assert Path(rep.describe()["weight_files"][ENC]["path"]).parent == own


def test_missing_weights_say_where_to_put_them(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DRIFTLOOP_MODEL_DIR", str(tmp_path / "empty"))
    with pytest.raises(WeightsError) as info:
        build("taef2")
    message = str(info.value)
    assert "taef2_encoder.pth" in message and "DRIFTLOOP_MODEL_DIR" in message and "offline" in message
    assert info.value.exit_code == 3


def test_corrupt_weight_file_is_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, models_dir: Path
) -> None:
    bad = tmp_path / "models" / "taef2"
    bad.mkdir(parents=True)
    (bad / ENC).write_bytes(b"garbage")
    shutil.copy(models_dir / "taef2" / DEC, bad / DEC)
    monkeypatch.setenv("DRIFTLOOP_MODEL_DIR", str(tmp_path / "models"))
    rep = build("taef2")
    with pytest.raises(WeightsError, match=f"{ENC}: not a valid taef2 weight file"):
        rep.replicate([np.zeros((16, 16, 3), np.uint8)], [0])


@pytest.fixture
def file_server(models_dir: Path) -> Iterator[str]:
    """A local HTTP server on 127.0.0.1 serving the weights folder, standing in for the upstream host."""
    handler = lambda *a, **k: http.server.SimpleHTTPRequestHandler(*a, directory=str(models_dir), **k)  # noqa: E731
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.RequestHandlerClass.log_message = lambda *a: None
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_download_checks_sha256(file_server: str, models_dir: Path, tmp_path: Path) -> None:
    good = WeightFile(ENC, f"{file_server}/taef2/{ENC}", _sha(models_dir / "taef2" / ENC))
    dest = download(good, tmp_path / "cache" / ENC)
    assert _sha(dest) == good.sha256
    bad = WeightFile(ENC, f"{file_server}/taef2/{ENC}", "0" * 64)
    with pytest.raises(WeightsError, match=r"sha256 is .* expected 0000"):
        download(bad, tmp_path / "cache2" / ENC)
    assert not (tmp_path / "cache2" / ENC).exists()
    assert list((tmp_path / "cache2").iterdir()) == []  # no partial file left


def test_resolve_downloads_into_cache_when_online(
    file_server: str, models_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DRIFTLOOP_OFFLINE")
    monkeypatch.setenv("DRIFTLOOP_MODEL_DIR", str(tmp_path / "empty"))
    files = [WeightFile(n, f"{file_server}/taef2/{n}", _sha(models_dir / "taef2" / n)) for n in (ENC, DEC)]
    seen = []
    paths = resolve("taef2", files, progress=lambda done, total: seen.append((done, total)))
    assert paths[ENC] == tmp_path / "xdg-cache" / "driftloop" / "models" / "taef2" / ENC
    assert _sha(paths[DEC]) == files[1].sha256
    assert seen and seen[-1][0] == seen[-1][1]
    # second time: found in the cache, no network needed
    monkeypatch.setenv("DRIFTLOOP_OFFLINE", "1")
    assert resolve("taef2", files) == paths


def test_unreachable_download_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DRIFTLOOP_OFFLINE")
    monkeypatch.setenv("DRIFTLOOP_MODEL_DIR", str(tmp_path / "empty"))
    files = [WeightFile(ENC, "http://127.0.0.1:9/none.pth", None)]
    with pytest.raises(WeightsError, match=r"could not be downloaded.*put taef2_encoder\.pth"):
        resolve("taef2", files)


def test_resume_uses_the_recorded_thread_count(models_dir: Path) -> None:
    import torch

    rep = build("taef2")
    before = torch.get_num_threads()
    try:
        other = 1 if before != 1 else 2
        assert rep.align_with({"threads": other}) and torch.get_num_threads() == other
        assert rep.align_with({"threads": other}) == []  # already aligned: nothing to say
        assert build("taef2:threads=3").align_with({"threads": other}) == []  # an explicit setting wins
    finally:
        torch.set_num_threads(before)


@pytest.mark.parametrize(("size", "batch"), [(64, 1), (96, 3), (128, 2)])
def test_fast_path_is_bit_identical_to_the_plain_model(
    models_dir: Path, astronaut128: np.ndarray, size: int, batch: int
) -> None:
    """The oneDNN blocked-layout runner must give exactly what the eager NCHW float32 model gives."""
    import torch

    from driftloop.replicators.tae_runtime import frames_to_tensor, tensor_to_frames

    rep = build("taef2")
    assert rep.exact
    frames = [np.roll(astronaut128[:size, :size], 7 * i, axis=1).copy() for i in range(batch)]
    fast = rep.replicate(frames, [0] * batch)
    with torch.no_grad():  # the plain loop: a contiguous NCHW float32 batch through the eager model
        x = frames_to_tensor(frames, torch.device("cpu"), torch.float32).contiguous()
        plain = tensor_to_frames(rep.model.decoder(rep.model.encoder(x)).clamp(0, 1))
    for a, b in zip(fast, plain, strict=True):
        assert np.array_equal(a, b)


@pytest.mark.parametrize(("name", "latent", "pool"), [("taesd", 4, False), ("taef1", 16, False)])
def test_family_members_load_their_files_by_name(tmp_path: Path, name: str, latent: int, pool: bool) -> None:
    """The other members' upstream files are plain state dicts named <model>_encoder/decoder.pth; random
    weights of the same architecture stand in for them (they are not on this machine)."""
    import torch

    from driftloop.replicators.tae_model import TinyAutoEncoder

    torch.manual_seed(0)
    model = TinyAutoEncoder(latent, pool)
    torch.save(model.encoder.state_dict(), tmp_path / f"{name}_encoder.pth")
    torch.save(model.decoder.state_dict(), tmp_path / f"{name}_decoder.pth")
    rep = build(f"{name}:weights={tmp_path}")
    frame = np.random.default_rng(0).integers(0, 256, (32, 48, 3), dtype=np.uint8)
    (out,) = rep.replicate([frame], [0])
    assert out.shape == frame.shape and out.dtype == np.uint8
    assert rep.describe()["variant"] == name
    with pytest.raises(WeightsError, match=f"{name}_encoder.pth: not a valid {name} weight file"):
        torch.save(TinyAutoEncoder(32, True).encoder.state_dict(), tmp_path / f"{name}_encoder.pth")
        build(f"{name}:weights={tmp_path}").replicate([frame], [0])
