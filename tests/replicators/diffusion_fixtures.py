"""Tiny, randomly initialised diffusers / transformers models, saved the way the hub stores real ones.

The tests (and ``benchmarks/bench_diffusion.py --tiny``) load these folders through driftloop's real
loading path (``AutoPipelineForImage2Image.from_pretrained(folder)`` and friends), so everything but the
weights' values is what a user's run goes through. Everything is seeded: the same folders every time.

Run ``python tests/replicators/diffusion_fixtures.py DEST`` to write them to ``DEST`` (sd/, pix2pix/, vae/,
blip/).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

TOKEN_LENGTH = 32  # the tiny CLIP tokenizer's model_max_length (SD uses 77)


def _bytes_to_unicode() -> list[str]:
    """The byte → printable character table of GPT-2/CLIP byte-level BPE."""
    bs = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return [chr(c) for c in cs]


def clip_tokenizer():
    """A CLIP BPE tokenizer over single bytes (no merges), from a vocab.json + merges.txt written here."""
    import tempfile

    from transformers import CLIPTokenizer

    with tempfile.TemporaryDirectory() as tmp:
        return _clip_tokenizer(Path(tmp), CLIPTokenizer)


def _clip_tokenizer(folder: Path, cls):
    chars = _bytes_to_unicode()
    vocab: dict[str, int] = {}
    for c in chars:
        vocab[c] = len(vocab)
    for c in chars:
        vocab[c + "</w>"] = len(vocab)
    for special in ("<|startoftext|>", "<|endoftext|>"):
        vocab[special] = len(vocab)
    (folder / "vocab.json").write_text(json.dumps(vocab))
    (folder / "merges.txt").write_text("#version: 0.2\n")
    return cls(str(folder / "vocab.json"), str(folder / "merges.txt"), model_max_length=TOKEN_LENGTH)


def _text_encoder(vocab_size: int):
    from transformers import CLIPTextConfig, CLIPTextModel

    config = CLIPTextConfig(
        vocab_size=vocab_size,
        hidden_size=32,
        intermediate_size=37,
        num_hidden_layers=2,
        num_attention_heads=4,
        max_position_embeddings=TOKEN_LENGTH,
        bos_token_id=vocab_size - 2,
        eos_token_id=vocab_size - 1,
        pad_token_id=vocab_size - 1,
        projection_dim=32,
    )
    return CLIPTextModel(config).eval()


def _unet(in_channels: int = 4):
    from diffusers import UNet2DConditionModel

    return UNet2DConditionModel(
        sample_size=8,
        in_channels=in_channels,
        out_channels=4,
        block_out_channels=(16, 32),
        layers_per_block=1,
        norm_num_groups=8,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=32,
        attention_head_dim=8,
    ).eval()


def tiny_vae():
    """Two blocks: latents are 1/2 of the image side; scaling and shift factors like FLUX's VAE has."""
    from diffusers import AutoencoderKL

    return AutoencoderKL(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D", "DownEncoderBlock2D"),
        up_block_types=("UpDecoderBlock2D", "UpDecoderBlock2D"),
        block_out_channels=(16, 32),
        layers_per_block=1,
        latent_channels=4,
        norm_num_groups=8,
        sample_size=32,
        scaling_factor=0.5,
        shift_factor=0.1,
    ).eval()


def _scheduler():
    from diffusers import EulerDiscreteScheduler

    return EulerDiscreteScheduler(
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        timestep_spacing="trailing",
        steps_offset=1,
    )


def _save_sd_family(folder: Path, pipeline_class: type, seed: int, unet_in_channels: int = 4) -> Path:
    """A tiny pipeline of the Stable Diffusion family (its VAE, CLIP text encoder, UNet and scheduler)."""
    import torch

    torch.manual_seed(seed)
    tokenizer = clip_tokenizer()
    pipe = pipeline_class(
        vae=tiny_vae(),
        text_encoder=_text_encoder(len(tokenizer)),
        tokenizer=tokenizer,
        unet=_unet(in_channels=unet_in_channels),
        scheduler=_scheduler(),
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    pipe.save_pretrained(folder)
    return folder


def save_sd(folder: Path) -> Path:
    """A tiny ``StableDiffusionPipeline`` (text-to-image; AutoPipelineForImage2Image maps it to img2img)."""
    from diffusers import StableDiffusionPipeline

    return _save_sd_family(folder, StableDiffusionPipeline, seed=0)


def save_pix2pix(folder: Path) -> Path:
    """A tiny ``StableDiffusionInstructPix2PixPipeline``: image + instruction in, image out."""
    from diffusers import StableDiffusionInstructPix2PixPipeline

    return _save_sd_family(folder, StableDiffusionInstructPix2PixPipeline, seed=1, unet_in_channels=8)


def save_vae(folder: Path) -> Path:
    import torch

    torch.manual_seed(2)
    tiny_vae().save_pretrained(folder)
    return folder


BERT_WORDS = [
    "a",
    "the",
    "of",
    "on",
    "in",
    "with",
    "photo",
    "cat",
    "dog",
    "red",
    "blue",
    "sky",
    "tree",
    "man",
]


def save_blip(folder: Path) -> Path:
    """A tiny ``BlipForConditionalGeneration`` + ``BlipProcessor`` (a BERT WordPiece vocab.txt it writes)."""
    import torch
    from transformers import (
        BertTokenizer,
        BlipConfig,
        BlipForConditionalGeneration,
        BlipImageProcessor,
        BlipProcessor,
    )

    torch.manual_seed(3)
    folder.mkdir(parents=True, exist_ok=True)
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "[DEC]"]
    vocab = [*specials, *BERT_WORDS, *"abcdefghijklmnopqrstuvwxyz"]
    vocab_file = folder / "_vocab_src.txt"
    vocab_file.write_text("\n".join(vocab) + "\n")
    tokenizer = BertTokenizer(str(vocab_file), bos_token="[DEC]", model_max_length=32)
    processor = BlipProcessor(
        image_processor=BlipImageProcessor(size={"height": 32, "width": 32}), tokenizer=tokenizer
    )
    config = BlipConfig(
        text_config={
            "vocab_size": len(vocab),
            "hidden_size": 32,
            "encoder_hidden_size": 32,
            "intermediate_size": 37,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
            "max_position_embeddings": 64,
            "pad_token_id": 0,
            "sep_token_id": 3,
            "eos_token_id": 3,
            "bos_token_id": 5,
        },
        vision_config={
            "hidden_size": 32,
            "intermediate_size": 37,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
            "image_size": 32,
            "patch_size": 8,
        },
        projection_dim=32,
    )
    model = BlipForConditionalGeneration(config).eval()
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    vocab_file.unlink()
    return folder


def save_flux_kontext(folder: Path) -> Path:
    """A tiny ``FluxKontextPipeline`` (CLIP + T5 text encoders, a flux transformer, a 4-block VAE).

    Kontext resizes its input image to ≈1 MP whatever is asked, so even tiny it takes seconds a call.
    """
    import torch
    from diffusers import (
        AutoencoderKL,
        FlowMatchEulerDiscreteScheduler,
        FluxKontextPipeline,
        FluxTransformer2DModel,
    )
    from transformers import CLIPTextConfig, CLIPTextModel, T5Config, T5EncoderModel, T5Tokenizer

    torch.manual_seed(4)
    tokenizer = clip_tokenizer()
    words = ["the", "a", "of", "image", "create", "exact", "replica", "this", "don't", "change", "thing"]
    pieces = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0)]
    pieces += [(c, -1.0) for c in "abcdefghijklmnopqrstuvwxyz▁"] + [("▁" + w, -0.5) for w in words]
    t5_tokenizer = T5Tokenizer(vocab=pieces, extra_ids=0)
    vocab = len(tokenizer)
    pipe = FluxKontextPipeline(
        scheduler=FlowMatchEulerDiscreteScheduler(),
        vae=AutoencoderKL(
            in_channels=3,
            out_channels=3,
            block_out_channels=(4, 4, 4, 4),
            down_block_types=("DownEncoderBlock2D",) * 4,
            up_block_types=("UpDecoderBlock2D",) * 4,
            layers_per_block=1,
            latent_channels=4,
            norm_num_groups=1,
            use_quant_conv=False,
            use_post_quant_conv=False,
            shift_factor=0.0609,
            scaling_factor=1.5035,
        ),
        text_encoder=CLIPTextModel(
            CLIPTextConfig(
                vocab_size=vocab,
                hidden_size=32,
                intermediate_size=37,
                num_hidden_layers=2,
                num_attention_heads=4,
                max_position_embeddings=TOKEN_LENGTH,
                bos_token_id=vocab - 2,
                eos_token_id=vocab - 1,
                pad_token_id=vocab - 1,
                projection_dim=32,
            )
        ),
        tokenizer=tokenizer,
        text_encoder_2=T5EncoderModel(
            T5Config(vocab_size=len(t5_tokenizer), d_model=32, d_kv=8, d_ff=37, num_layers=2, num_heads=4)
        ),
        tokenizer_2=t5_tokenizer,
        transformer=FluxTransformer2DModel(
            patch_size=1,
            in_channels=16,
            num_layers=1,
            num_single_layers=1,
            attention_head_dim=16,
            num_attention_heads=2,
            joint_attention_dim=32,
            pooled_projection_dim=32,
            axes_dims_rope=(4, 4, 8),
        ),
    )
    pipe.save_pretrained(folder)
    return folder


def save_all(root: Path) -> dict[str, Path]:
    """Every tiny model under ``root``: sd/, pix2pix/, vae/, blip/."""
    root = Path(root)
    return {
        "sd": save_sd(root / "sd"),
        "pix2pix": save_pix2pix(root / "pix2pix"),
        "vae": save_vae(root / "vae"),
        "blip": save_blip(root / "blip"),
    }


def install_in_hf_cache(folder: Path, cache: Path, repo_id: str, commit: str = "0" * 40) -> Path:
    """Lay ``folder`` out as the hub cache does (refs/main → snapshots/<commit>/), as a download would."""
    import shutil

    repo = cache / f"models--{repo_id.replace('/', '--')}"
    snapshot = repo / "snapshots" / commit
    if snapshot.exists():
        shutil.rmtree(snapshot)
    shutil.copytree(folder, snapshot, ignore=shutil.ignore_patterns("_*"))
    (repo / "refs").mkdir(parents=True, exist_ok=True)
    (repo / "refs" / "main").write_text(commit)
    return snapshot


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python tests/replicators/diffusion_fixtures.py DEST")
    for name, path in save_all(Path(sys.argv[1])).items():
        print(f"{name}: {path}")
