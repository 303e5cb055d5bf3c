"""Backends built on diffusers / transformers: img2img, instruction editors, VAE round trips and
caption→redraw, with what they share split by job (:mod:`.runtime`, :mod:`.hub`, :mod:`.frames`,
:mod:`.captioner`, :mod:`.pipeline`) and the named presets (:mod:`.presets`).

Importing this package imports none of torch, diffusers or transformers (inside it, ``import diffusers``
still means the library: imports are absolute); a backend imports them when it is built.
"""
