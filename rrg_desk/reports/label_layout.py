"""Where region names go: beside their box, inside the picture, never on top of each other.

Pure geometry (no Qt, no PIL), shared by the workstation overlay (viewport pixels) and the
exported key image (image pixels). y grows downwards. A label either sits well inside its box
or clear outside it, never on the outline, so the outline never cuts a letter off
("ight lung"). Labels are placed greedily in the caller's order (most important first); one
that finds no free spot is left out (None) rather than stacked on another.
"""
from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

EDGE_CLEARANCE = 3.0  # pixels kept between a label and its box's outline (outlines are 1-3 px wide)
LABEL_SPACING = 2.0  # pixels kept between two labels
STACK_DEPTH = 3  # inside a box, labels may stack this many deep below the top-left one


@dataclass(frozen=True)
class Rect:
    left: float
    top: float
    right: float
    bottom: float

    @classmethod
    def from_size(cls, left: float, top: float, width: float, height: float) -> "Rect":
        return cls(left, top, left + width, top + height)

    @property
    def width(self) -> float:
        return self.right - self.left

    @property
    def height(self) -> float:
        return self.bottom - self.top

    def overlaps(self, other: "Rect") -> bool:
        """True when the two share some area (touching edges do not count)."""
        return (self.left < other.right and other.left < self.right
                and self.top < other.bottom and other.top < self.bottom)

    def contains(self, other: "Rect") -> bool:
        return (self.left <= other.left and other.right <= self.right
                and self.top <= other.top and other.bottom <= self.bottom)

    def grown(self, margin: float) -> "Rect":
        """Bigger by `margin` on every side (smaller when negative)."""
        return Rect(self.left - margin, self.top - margin, self.right + margin, self.bottom + margin)

    def intersection(self, other: "Rect") -> "Rect | None":
        left, top = max(self.left, other.left), max(self.top, other.top)
        right, bottom = min(self.right, other.right), min(self.bottom, other.bottom)
        return Rect(left, top, right, bottom) if left < right and top < bottom else None

    def moved_inside(self, bounds: "Rect") -> "Rect":
        """Slid (not resized) the least distance that puts it inside `bounds`, where it fits."""
        dx = max(bounds.left - self.left, 0.0) or min(bounds.right - self.right, 0.0)
        dy = max(bounds.top - self.top, 0.0) or min(bounds.bottom - self.bottom, 0.0)
        return Rect(self.left + dx, self.top + dy, self.right + dx, self.bottom + dy)


def crosses_outline(label: Rect, box: Rect, clearance: float = EDGE_CLEARANCE) -> bool:
    """True when the label comes within `clearance` of the box's outline (from either side)."""
    well_inside = box.grown(-clearance).contains(label)
    clear_outside = not label.overlaps(box.grown(clearance))
    return not (well_inside or clear_outside)


def candidate_spots(box: Rect, size: tuple[float, float], bounds: Rect,
                    clearance: float = EDGE_CLEARANCE) -> Iterator[Rect]:
    """Spots for a label of `size` (width, height), best first: inside the visible part of
    the box at its top-left (and stacked below it), then above, below, the other corners,
    left and right of the box; each slid along its side into `bounds`."""
    width, height = size
    seen = box.intersection(bounds)
    if seen is None:
        return
    inset_left, inset_top = seen.left + clearance, seen.top + clearance
    for depth in range(STACK_DEPTH + 1):
        stacked = Rect.from_size(inset_left, inset_top + depth * (height + LABEL_SPACING), width, height)
        if stacked.bottom > seen.bottom - clearance:
            break  # stacking only ever happens inside the box
        yield stacked
    above, below = box.top - clearance - height, box.bottom + clearance
    right_aligned = box.right - width
    outside = (Rect.from_size(box.left, above, width, height), Rect.from_size(box.left, below, width, height),
               Rect.from_size(right_aligned, above, width, height),
               Rect.from_size(right_aligned, below, width, height))
    yield from (spot.moved_inside(bounds) for spot in outside)
    yield Rect.from_size(seen.right - clearance - width, inset_top, width, height)
    yield Rect.from_size(inset_left, seen.bottom - clearance - height, width, height)
    beside = (Rect.from_size(box.left - clearance - width, seen.top, width, height),
              Rect.from_size(box.right + clearance, seen.top, width, height))
    yield from (spot.moved_inside(bounds) for spot in beside)


def place_labels(boxes: Sequence[Rect], sizes: Sequence[tuple[float, float]], bounds: Rect,
                 obstacles: Sequence[Rect] = (), clearance: float = EDGE_CLEARANCE,
                 spacing: float = LABEL_SPACING) -> list[Rect | None]:
    """One rectangle per box for its label (None: no free spot, or the box is out of sight).

    Every rectangle lies inside `bounds` (the visible picture), keeps `clearance` from its
    own box's outline and `spacing` from every earlier label and every obstacle (markers,
    legends already drawn). Earlier boxes choose first: pass the most important first."""
    if len(boxes) != len(sizes):
        raise ValueError(f"{len(boxes)} boxes but {len(sizes)} label sizes")
    taken = [obstacle.grown(spacing) for obstacle in obstacles]
    placed: list[Rect | None] = []
    for box, size in zip(boxes, sizes):
        spot = next((spot for spot in candidate_spots(box, size, bounds, clearance)
                     if bounds.contains(spot) and not crosses_outline(spot, box, clearance)
                     and not any(spot.overlaps(other) for other in taken)), None)
        placed.append(spot)
        if spot is not None:
            taken.append(spot.grown(spacing))
    return placed


def side_marker_spots(bounds: Rect, sizes: Sequence[tuple[float, float]], margin: float) -> tuple[Rect, Rect]:
    """Orientation markers: the first size at the middle of the left edge, the second at the
    middle of the right edge, `margin` in from the sides (e.g. "R" and "L" on a frontal view)."""
    (left_w, left_h), (right_w, right_h) = sizes
    middle = (bounds.top + bounds.bottom) / 2
    left = Rect.from_size(bounds.left + margin, middle - left_h / 2, left_w, left_h)
    right = Rect.from_size(bounds.right - margin - right_w, middle - right_h / 2, right_w, right_h)
    return left, right


def bottom_right_spot(bounds: Rect, size: tuple[float, float], margin: float) -> Rect:
    """A legend's place: the bottom-right corner of `bounds`, `margin` in."""
    width, height = size
    return Rect.from_size(bounds.right - margin - width, bounds.bottom - margin - height, width, height)
