"""Contact sheets: a grid of thumbnails, one row per chain, one column per chosen step.

The sheet is the at-a-glance comparison of chains (different images, seeds or models) at the same
depths, so columns are aligned by step number, not by position in each row.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from driftloop._fs import atomic_write
from driftloop.errors import RenderError
from driftloop.render._fonts import Font, displayable, font, line_height
from driftloop.render._frames import as_rgb

__all__ = ["DEFAULT_SHEET_STEPS", "SheetLayout", "contact_sheet", "pick_steps", "sheet_layout"]

# Early steps are dense because most drift happens in the first few copies; later ones are sparse.
DEFAULT_SHEET_STEPS: tuple[int, ...] = (0, 1, 2, 5, 10, 25, 50, 75, 100)

_MIN_THUMB = 16
_BACKGROUND = (255, 255, 255)
_TEXT = (20, 20, 20)
_CAPTION = (90, 90, 90)
_ELLIPSIS = "…"


def pick_steps(
    available: Sequence[int], wanted: Sequence[int] = DEFAULT_SHEET_STEPS, include_last: bool = True
) -> list[int]:
    """The ``wanted`` steps that exist in ``available``, plus the last available step, sorted and unique.

    The last step is added because a chain stopped early (or run longer than 100) should still show
    where it ended.
    """
    have = set(available)
    picked = {step for step in wanted if step in have}
    if include_last and have:
        picked.add(max(have))
    return sorted(picked)


@dataclass(frozen=True)
class SheetLayout:
    """Pixel geometry of a contact sheet; public so callers and tests can find a given thumbnail.

    Each row is: row label line, ``thumb`` x ``thumb`` cells separated by ``gap``, caption line.
    """

    n_rows: int
    n_cols: int
    thumb: int
    margin: int
    gap: int
    title_h: int
    label_h: int
    caption_h: int
    caption_px: int
    label_px: int
    title_px: int

    @property
    def row_h(self) -> int:
        """Height of one row band including the space after it."""
        return self.label_h + self.thumb + self.caption_h + self.gap

    @property
    def width(self) -> int:
        return 2 * self.margin + self.n_cols * self.thumb + (self.n_cols - 1) * self.gap

    @property
    def height(self) -> int:
        top = self.margin + (self.title_h + self.gap if self.title_h else 0)
        return top + self.n_rows * self.row_h - self.gap + self.margin

    def row_top(self, row: int) -> int:
        """Y of the top of row ``row``'s label line."""
        return self.margin + (self.title_h + self.gap if self.title_h else 0) + row * self.row_h

    def cell(self, row: int, col: int) -> tuple[int, int, int, int]:
        """The (x0, y0, x1, y1) box, exclusive ends, in which the thumbnail of (row, col) is centred."""
        x0 = self.margin + col * (self.thumb + self.gap)
        y0 = self.row_top(row) + self.label_h
        return x0, y0, x0 + self.thumb, y0 + self.thumb


def sheet_layout(n_rows: int, n_cols: int, thumb: int = 160, title: bool = False) -> SheetLayout:
    """Compute the geometry for ``n_rows`` x ``n_cols`` thumbnails of ``thumb`` px.

    Margins and fonts scale with ``thumb`` so a sheet of 64 px thumbnails is as tidy as one of 256 px.
    """
    caption_px = max(10, round(thumb * 0.08))
    label_px = max(11, round(caption_px * 1.15))
    title_px = max(13, round(caption_px * 1.5))
    spacing = max(2, thumb // 40)
    return SheetLayout(
        n_rows=n_rows,
        n_cols=max(1, n_cols),
        thumb=thumb,
        margin=max(6, thumb // 12),
        gap=max(4, thumb // 20),
        title_h=line_height(font(title_px)) + spacing if title else 0,
        label_h=line_height(font(label_px)) + spacing,
        caption_h=line_height(font(caption_px)) + spacing,
        caption_px=caption_px,
        label_px=label_px,
        title_px=title_px,
    )


def _fit_text(text: str, f: Font, max_width: int) -> str:
    """``text`` made drawable, cut with an ellipsis to fit ``max_width`` px (the sheet never grows)."""
    text = displayable(text)
    if f.getlength(text) <= max_width:
        return text
    while text and f.getlength(text + _ELLIPSIS) > max_width:
        text = text[:-1]
    return text.rstrip() + _ELLIPSIS if text else ""


def _thumbnail(frame: np.ndarray, thumb: int) -> Image.Image:
    """Scale a frame to fit a ``thumb`` square, keeping its aspect ratio."""
    img = Image.fromarray(as_rgb(frame))
    scale = thumb / max(img.width, img.height)
    size = (max(1, round(img.width * scale)), max(1, round(img.height * scale)))
    return img if size == img.size else img.resize(size, Image.Resampling.LANCZOS)


def contact_sheet(
    rows: Sequence[tuple[str, Sequence[tuple[int, np.ndarray]]]],
    path: Path,
    thumb: int = 160,
    title: str | None = None,
) -> Path:
    """Draw a PNG contact sheet and return ``path``.

    ``rows`` are ``(label, [(step, frame), ...])``, one per chain, e.g. ``("astronaut.png · seed 1",
    frames)``; choose the steps with ``pick_steps``. Columns are the union of all rows' steps in
    ascending order, so equal depths line up even when chains have different lengths; a chain without
    a given step leaves that cell blank. Each thumbnail is captioned with its step; the row label sits
    above its row and ``title``, if given, on a line at the top. Long texts are cut with an ellipsis
    rather than widening the sheet.
    """
    if not rows:
        raise RenderError("nothing to render: the contact sheet has no rows")
    if thumb < _MIN_THUMB:
        raise RenderError(f"thumbnail size must be at least {_MIN_THUMB} px, got {thumb}")
    by_row = [dict(frames) for _, frames in rows]
    columns = sorted({step for frames in by_row for step in frames})
    layout = sheet_layout(len(rows), len(columns), thumb, title=bool(title))
    col_of = {step: i for i, step in enumerate(columns)}

    sheet = Image.new("RGB", (layout.width, layout.height), _BACKGROUND)
    draw = ImageDraw.Draw(sheet)
    text_width = layout.width - 2 * layout.margin
    caption_font = font(layout.caption_px)
    label_font = font(layout.label_px)
    if title:
        title_font = font(layout.title_px)
        draw.text(
            (layout.margin, layout.margin),
            _fit_text(title, title_font, text_width),
            font=title_font,
            fill=_TEXT,
        )

    for r, ((row_label, _), frames) in enumerate(zip(rows, by_row, strict=True)):
        draw.text(
            (layout.margin, layout.row_top(r)),
            _fit_text(row_label, label_font, text_width),
            font=label_font,
            fill=_TEXT,
        )
        for step, frame in frames.items():
            x0, y0, x1, y1 = layout.cell(r, col_of[step])
            img = _thumbnail(frame, thumb)
            sheet.paste(img, (x0 + (thumb - img.width) // 2, y0 + (thumb - img.height) // 2))
            caption = _fit_text(f"step {step}", caption_font, thumb)
            draw.text(((x0 + x1) // 2, y1 + 1), caption, font=caption_font, fill=_CAPTION, anchor="ma")

    path = Path(path)
    with atomic_write(path) as tmp:
        sheet.save(tmp, format="PNG")
    return path
