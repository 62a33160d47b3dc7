"""Draw RRG Desk's application icon (no downloaded art): a stylised chest radiograph (two
lung fields on a dark film) with one region box, as SVG and as PNGs for the .desktop file.

    python packaging/make_icon.py [OUT_DIR]   (default: packaging/icons)
"""
from __future__ import annotations

import sys
from pathlib import Path

from PIL import Image, ImageDraw, ImageFilter

SIZES = (256, 128, 48)
FILM, LUNG, BONE, BOX = (24, 30, 38), (70, 82, 96), (222, 228, 236), (255, 176, 32)

SVG = """<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 256 256" width="256" height="256">
  <rect x="8" y="8" width="240" height="240" rx="36" fill="rgb{film}"/>
  <path d="M128 40 L128 214" stroke="rgb{bone}" stroke-width="14" stroke-linecap="round"/>
  <ellipse cx="84" cy="128" rx="38" ry="70" fill="rgb{lung}"/>
  <ellipse cx="172" cy="128" rx="38" ry="70" fill="rgb{lung}"/>
  <path d="M60 70 Q128 40 196 70 M54 104 Q128 76 202 104 M54 140 Q128 112 202 140"
        stroke="rgb{bone}" stroke-width="7" fill="none" stroke-linecap="round" opacity="0.85"/>
  <ellipse cx="140" cy="170" rx="34" ry="26" fill="rgb{bone}" opacity="0.55"/>
  <rect x="138" y="84" width="62" height="62" rx="6" fill="none" stroke="rgb{box}" stroke-width="8"/>
</svg>
"""


def draw(size: int) -> Image.Image:
    """Rasterise the same drawing as the SVG (PIL has no SVG renderer) at 4x, then downsample."""
    scale = 4 * size / 256
    big = Image.new("RGBA", (round(256 * scale),) * 2, (0, 0, 0, 0))
    pen = ImageDraw.Draw(big)

    def s(*values: float) -> list[float]:
        return [v * scale for v in values]

    pen.rounded_rectangle(s(8, 8, 248, 248), radius=36 * scale, fill=FILM)
    pen.ellipse(s(46, 58, 122, 198), fill=LUNG)
    pen.ellipse(s(134, 58, 210, 198), fill=LUNG)
    for y_side, y_mid in ((70, 40), (104, 76), (140, 112)):  # ribs as shallow arcs
        pen.arc(s(54, y_mid, 202, 2 * y_side - y_mid + 40), 200, 340, fill=BONE, width=round(7 * scale))
    pen.line(s(128, 40, 128, 214), fill=BONE, width=round(14 * scale))
    pen.ellipse(s(106, 144, 174, 196), fill=BONE + (140,))
    pen.rounded_rectangle(s(138, 84, 200, 146), radius=6 * scale, outline=BOX, width=round(8 * scale))
    return big.filter(ImageFilter.SMOOTH).resize((size, size), Image.Resampling.LANCZOS)


def main(out_dir: Path) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "rrg-desk.svg").write_text(SVG.format(film=FILM, lung=LUNG, bone=BONE, box=BOX), encoding="utf-8")
    for size in SIZES:
        draw(size).save(out_dir / f"rrg-desk-{size}.png")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parent / "icons")
