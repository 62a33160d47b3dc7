"""The annotated key image: the radiograph with region boxes, their names, and the R/L marker
of a frontal view.

Names sit on dark plates placed by the same label layout as the workstation's overlay, so
none is cut by its box, by the image edge or by another name; the whole-image region is not
drawn. Sizes follow the image, so the names stay legible once the PDF shrinks it.
"""
from __future__ import annotations

import io
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont, PngImagePlugin

from rrg_desk.imaging.types import XrayImage
from rrg_desk.imaging.windowing import apply_window
from rrg_desk.models.regions import WHOLE_IMAGE, region_label
from rrg_desk.reports.draft import RegionResult
from rrg_desk.reports.export.common import SOFTWARE_NAME, ReportMeta, write_atomic
from rrg_desk.reports.label_layout import Rect, place_labels, side_marker_spots

SELECTED_COLOUR = (255, 200, 0)
UNSELECTED_COLOUR = (120, 170, 255)
OUTLINE_FILL_ALPHA = 40  # organ tint on the key image
MARKER_COLOUR = (255, 255, 255)
PLATE_COLOUR = (0, 0, 0, 185)


class _Pen:
    """Line widths, fonts and gaps scaled to the image (a 2,000 px radiograph needs bigger text)."""

    def __init__(self, image: XrayImage) -> None:
        short_side = min(image.width, image.height)
        self.line = max(1, round(short_side / 300))
        self.text_px = max(12, round(short_side / 45))
        self.font = ImageFont.load_default(size=self.text_px)
        self.marker_font = ImageFont.load_default(size=round(self.text_px * 1.5))
        self.padding = max(2, round(self.text_px / 5))
        self.clearance = 2 * self.line + 2  # clear of the thickest outline, drawn half outside
        self.margin = self.padding * 2  # markers from the image edge


def _tag_size(draw: ImageDraw.ImageDraw, text: str, font, padding: int) -> tuple[float, float]:
    left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
    return right - left + 2 * padding, bottom - top + 2 * padding


def _draw_tag(draw: ImageDraw.ImageDraw, spot: Rect, text: str, font, padding: int, colour) -> None:
    """Text on a dark plate filling `spot` (a rectangle from _tag_size)."""
    draw.rectangle((spot.left, spot.top, spot.right - 1, spot.bottom - 1), fill=PLATE_COLOUR)
    left, top, _right, _bottom = draw.textbbox((0, 0), text, font=font)
    draw.text((spot.left + padding - left, spot.top + padding - top), text, fill=colour, font=font)


def _windowed(image: XrayImage) -> Image.Image:
    grey = apply_window(image.pixels, image.display_window())
    return Image.fromarray(grey).convert("RGBA")  # uint8 grey: mode L


def _draw_markers(draw: ImageDraw.ImageDraw, image: XrayImage, pen: _Pen, bounds: Rect) -> list[Rect]:
    """"R" at the viewer's left, "L" at the right: a frontal view shows the patient facing us."""
    if not image.view.is_frontal:
        return []
    sizes = [_tag_size(draw, letter, pen.marker_font, pen.padding) for letter in "RL"]
    spots = side_marker_spots(bounds, sizes, pen.margin)
    for letter, spot in zip("RL", spots):
        _draw_tag(draw, spot, letter, pen.marker_font, pen.padding, MARKER_COLOUR)
    return list(spots)


def _draw_outlines(draw: ImageDraw.ImageDraw, regions: list[RegionResult], pen: _Pen) -> None:
    """Boxes, or for organs with an outline its contour over a light tint (as on screen)."""
    for region in sorted(regions, key=lambda r: r.selected):  # selected outlines on top
        colour = SELECTED_COLOUR if region.selected else UNSELECTED_COLOUR
        width = pen.line * (2 if region.selected else 1)
        if len(region.outline) >= 3:
            points = [tuple(point) for point in region.outline]
            draw.polygon(points, fill=tuple(colour[:3]) + (OUTLINE_FILL_ALPHA,))
            draw.line(points + points[:1], fill=colour, width=width, joint="curve")
        else:
            draw.rectangle(region.box, outline=colour, width=width)


def _draw_names(draw: ImageDraw.ImageDraw, regions: list[RegionResult], pen: _Pen, bounds: Rect,
                obstacles: list[Rect]) -> None:
    named = sorted(regions, key=lambda r: not r.selected)  # selected regions choose their spot first
    texts = [region_label(region.name) for region in named]
    sizes = [_tag_size(draw, text, pen.font, pen.padding) for text in texts]
    spots = place_labels([Rect(*region.box) for region in named], sizes, bounds, obstacles,
                         clearance=pen.clearance, spacing=pen.padding)
    for region, text, spot in zip(named, texts, spots):
        if spot is not None:  # no free spot: left out rather than printed over another name
            colour = SELECTED_COLOUR if region.selected else UNSELECTED_COLOUR
            _draw_tag(draw, spot, text, pen.font, pen.padding, colour)


def render_annotated_image(image: XrayImage, regions: list[RegionResult], image_index: int = 0) -> Image.Image:
    """RGB PIL image: windowed radiograph, boxes with their names, and R/L on a frontal view."""
    picture = _windowed(image)
    layer = Image.new("RGBA", picture.size, (0, 0, 0, 0))  # plates blend over the image
    draw = ImageDraw.Draw(layer)
    pen = _Pen(image)
    bounds = Rect(0, 0, image.width, image.height)
    shown = [r for r in regions if r.image_index == image_index and r.name != WHOLE_IMAGE]
    _draw_outlines(draw, shown, pen)
    obstacles = _draw_markers(draw, image, pen, bounds)  # plates drawn after outlines cover them
    _draw_names(draw, shown, pen, bounds, obstacles)
    return Image.alpha_composite(picture, layer).convert("RGB")


def annotated_png_bytes(image: XrayImage, regions: list[RegionResult], meta: ReportMeta | None = None,
                        anonymise: bool = False) -> bytes:
    picture = render_annotated_image(image, regions)
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


def export_annotated_png(image: XrayImage, regions: list[RegionResult], out: str | Path, anonymise: bool = False,
                         meta: ReportMeta | None = None) -> Path:
    """Write the key image. Patient identity goes only into PNG text chunks (never burnt into
    the pixels), so `anonymise` replaces it there."""
    return write_atomic(Path(out), annotated_png_bytes(image, regions, meta, anonymise))
