"""Rendering of replication chains: step labels, animated GIF/WebP/MP4 and contact sheets.

Pure functions from frames (RGB uint8 HxWx3 arrays) to files; no knowledge of runs or the database.
Every file is written atomically, so a reader never sees a half-written output.
"""

from driftloop.errors import RenderError
from driftloop.render.animation import hold_frame_count, webp_animation, write_gif, write_mp4
from driftloop.render.contact_sheet import DEFAULT_SHEET_STEPS, contact_sheet, pick_steps
from driftloop.render.labels import draw_step_label, label_box

__all__ = [
    "DEFAULT_SHEET_STEPS",
    "RenderError",
    "contact_sheet",
    "draw_step_label",
    "hold_frame_count",
    "label_box",
    "pick_steps",
    "webp_animation",
    "write_gif",
    "write_mp4",
]
