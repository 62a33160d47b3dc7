"""The annotated key image: the radiograph with region boxes, names and an optional heatmap."""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont, PngImagePlugin

from rrg_desk.imaging.types import XrayImage
from rrg_desk.imaging.windowing import apply_window
from rrg_desk.reports.draft import RegionResult
from rrg_desk.reports.export.common import SOFTWARE_NAME, ReportMeta, write_atomic

SELECTED_COLOUR = (255, 200, 0)
UNSELECTED_COLOUR = (120, 170, 255)
HEATMAP_ALPHA = 0.45
_colormap_lut: np.ndarray | None = None


def _heat_lut() -> np.ndarray:
    """256 x 3 uint8 colours of matplotlib's 'inferno' (imported only when a heatmap is drawn)."""
    global _colormap_lut
    if _colormap_lut is None:
        from matplotlib import colormaps

        _colormap_lut = (colormaps["inferno"](np.linspace(0.0, 1.0, 256))[:, :3] * 255).astype(np.uint8)
    return _colormap_lut


def render_annotated_image(image: XrayImage, regions: list[RegionResult], heatmap: np.ndarray | None = None,
                           image_index: int = 0) -> Image.Image:
    """RGB PIL image: windowed radiograph, heatmap blended where it is warm, boxes + names."""
    grey = apply_window(image.pixels, image.display_window())
    rgb = np.repeat(grey[:, :, None], 3, axis=2).astype(np.float32)
    if heatmap is not None:
        heat = np.clip(np.nan_to_num(np.asarray(heatmap, dtype=np.float32)), 0.0, 1.0)
        resized = Image.fromarray((heat * 255).astype(np.uint8)).resize((image.width, image.height),
                                                                       Image.Resampling.BILINEAR)
        levels = np.asarray(resized)
        alpha = (HEATMAP_ALPHA * levels / 255.0)[:, :, None]  # cold areas stay see-through
        rgb = rgb * (1.0 - alpha) + _heat_lut()[levels].astype(np.float32) * alpha
    picture = Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8), mode="RGB")
    draw = ImageDraw.Draw(picture)
    font = ImageFont.load_default()
    width = max(1, round(min(image.width, image.height) / 300))
    for region in sorted(regions, key=lambda r: r.selected):  # selected drawn last, on top
        if region.image_index != image_index:
            continue
        colour = SELECTED_COLOUR if region.selected else UNSELECTED_COLOUR
        x0, y0, x1, y1 = region.box
        draw.rectangle((x0, y0, x1, y1), outline=colour, width=width * (2 if region.selected else 1))
        label = region.name.replace("_", " ")
        left, top, right, bottom = draw.textbbox((x0 + 2, y0 + 1), label, font=font)
        draw.rectangle((left - 1, top - 1, right + 1, bottom + 1), fill=(0, 0, 0))
        draw.text((x0 + 2, y0 + 1), label, fill=colour, font=font)
    return picture


def annotated_png_bytes(image: XrayImage, regions: list[RegionResult], heatmap: np.ndarray | None = None,
                        meta: ReportMeta | None = None, anonymise: bool = False) -> bytes:
    picture = render_annotated_image(image, regions, heatmap)
    info = PngImagePlugin.PngInfo()
    info.add_text("Software", SOFTWARE_NAME)
    if meta is not None:
        shown = meta.for_export(anonymise)
        info.add_text("StudyInstanceUID", shown.study_uid)
        info.add_text("PatientName", shown.patient.name)
        info.add_text("PatientID", shown.patient.patient_id)
        if shown.patient.birth_date:
            info.add_text("PatientBirthDate", shown.patient.birth_date)
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG", pnginfo=info)
    return buffer.getvalue()


def export_annotated_png(image: XrayImage, regions: list[RegionResult], heatmap: np.ndarray | None,
                         out: str | Path, anonymise: bool = False, meta: ReportMeta | None = None) -> Path:
    """Write the key image. Patient identity goes only into PNG text chunks (never burnt into
    the pixels), so `anonymise` replaces it there."""
    return write_atomic(Path(out), annotated_png_bytes(image, regions, heatmap, meta, anonymise))
