"""Overlays on one ImageView: the detected region boxes with names, one heatmap with its
colour legend, and the R/L marker of a frontal view.

Boxes and the heatmap are children of the view's pixmap item, so they live in image pixel
coordinates and follow zoom and pan. Styles tell apart the regions the selector chose
(solid, coloured), the others (thin, dashed, dim; hidden until the reader asks for all) and
the region under the mouse or linked to the sentence being read (thick, amber, lightly
filled). Organs with an outline (lungs, heart, clavicles) are drawn as that contour, filled at
low opacity, their box reduced to a faint dotted frame. Pens are cosmetic. Names, markers and the legend keep their screen size; after every
zoom, pan or resize they are laid out again in viewport pixels by the Qt-free label layout,
so no name is cut by its box, by the viewport or by another name.
"""
from __future__ import annotations

import contextlib

import numpy as np
from PySide6.QtCore import QEvent, QObject, QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QBrush, QColor, QFont, QPainterPath, QPen, QPixmap, QPolygonF
from PySide6.QtWidgets import QGraphicsItem, QGraphicsPathItem, QGraphicsPixmapItem, QGraphicsRectItem, QGraphicsView

from rrg_desk.models.regions import WHOLE_IMAGE, region_label
from rrg_desk.reports.label_layout import Rect, bottom_right_spot, place_labels, side_marker_spots
from rrg_desk.ui.colormap import heatmap_to_qimage
from rrg_desk.ui.overlay_items import LegendItem, TagItem

SELECTED_COLOR = QColor(64, 200, 255)
UNSELECTED_COLOR = QColor(160, 160, 160, 150)
UNSELECTED_LABEL_COLOR = QColor(200, 200, 200)  # on the dark plate: dim but legible
HIGHLIGHT_COLOR = QColor(255, 190, 40)
MARKER_COLOR = QColor(255, 255, 255)
CLICK_SLOP_PX = 4  # a press and release closer than this is a click, not a pan
HEATMAP_Z, BOX_Z, HIGHLIGHT_Z, LABEL_Z, FURNITURE_Z = 1.0, 2.0, 3.0, 4.0, 5.0
DEFAULT_HEATMAP_OPACITY = 0.55
FURNITURE_MARGIN_PX = 6  # markers and legend keep this far from the picture's edges
OUTLINE_FILL_ALPHA = 35  # organ contours: a tint that leaves the bone and lung markings readable


def _outline_path(points) -> QPainterPath:
    path = QPainterPath()
    path.addPolygon(QPolygonF([QPointF(x, y) for x, y in points]))
    path.closeSubpath()
    return path


class RegionBoxItem(QGraphicsRectItem):
    def __init__(self, name: str, box: tuple[float, float, float, float], chosen: bool,
                 owner: "RegionOverlay", outline=()) -> None:
        x0, y0, x1, y1 = box
        super().__init__(QRectF(QPointF(x0, y0), QPointF(x1, y1)).normalized())
        self.name, self.chosen, self._owner = name, chosen, owner
        # the organ's contour, a child: it shows, hides and highlights with its box
        self.outline = QGraphicsPathItem(_outline_path(outline), self) if len(outline) >= 3 else None
        if self.outline is not None:
            self.outline.setAcceptedMouseButtons(Qt.MouseButton.NoButton)
        self.hovered = self.highlighted = False
        self.setAcceptHoverEvents(True)
        self.setToolTip(f"{region_label(name)} — {'described' if chosen else 'not described'} by the model")
        # a sibling, not a child: names stack above every box outline; the overlay places it
        self.label = TagItem(region_label(name))
        self.label.setZValue(LABEL_Z)
        self.label.setVisible(False)
        font = QFont()
        font.setPointSizeF(9.0)  # one size whatever the state: hovering never reflows the names
        self.label.setFont(font)
        self.update_style()

    def update_style(self) -> None:
        emphasised = self.hovered or self.highlighted
        color = HIGHLIGHT_COLOR if emphasised else SELECTED_COLOR if self.chosen else UNSELECTED_COLOR
        pen = QPen(color, 3.0 if emphasised else 2.0 if self.chosen else 1.0)
        pen.setCosmetic(True)
        if not self.chosen and not emphasised:
            pen.setStyle(Qt.PenStyle.DashLine)
        fill = QColor(HIGHLIGHT_COLOR)
        fill.setAlpha(40)
        if self.outline is not None:
            self.outline.setPen(pen)
            tint = QColor(color)
            tint.setAlpha(OUTLINE_FILL_ALPHA * (2 if emphasised else 1))
            self.outline.setBrush(QBrush(tint))
            frame = QPen(color, 1.0, Qt.PenStyle.DotLine)  # the box stays as a faint frame
            frame.setCosmetic(True)
            pen, fill = frame, None
        self.setPen(pen)
        self.setBrush(QBrush(fill) if emphasised and fill is not None else Qt.BrushStyle.NoBrush)
        self.setZValue(HIGHLIGHT_Z if emphasised else BOX_Z)
        self.label.setColor(color if emphasised or self.chosen else UNSELECTED_LABEL_COLOR)

    def hoverEnterEvent(self, event) -> None:
        self.hovered = True
        self.update_style()
        self._owner.regionHovered.emit(self.name)
        super().hoverEnterEvent(event)

    def hoverLeaveEvent(self, event) -> None:
        self.hovered = False
        self.update_style()
        self._owner.regionHovered.emit("")
        super().hoverLeaveEvent(event)


class HeatmapItem(QGraphicsPixmapItem):
    """A coarse heatmap stretched over the whole image, smoothly interpolated."""

    def __init__(self) -> None:
        super().__init__()
        self.setZValue(HEATMAP_Z)
        self.setTransformationMode(Qt.TransformationMode.SmoothTransformation)
        self.setAcceptedMouseButtons(Qt.MouseButton.NoButton)
        self.setAcceptHoverEvents(False)
        self.setOpacity(DEFAULT_HEATMAP_OPACITY)

    def set_heatmap(self, heatmap: np.ndarray | None, image_size: tuple[int, int]) -> None:
        if heatmap is None:
            self.setPixmap(QPixmap())
            self.setVisible(False)
            return
        width, height = image_size
        pixmap = QPixmap.fromImage(heatmap_to_qimage(heatmap, size=(width, height)))
        self.setPixmap(pixmap)
        self.resetTransform()
        self.setTransform(self.transform().scale(width / pixmap.width(), height / pixmap.height()))
        self.setVisible(True)


class RegionOverlay(QObject):
    """Region boxes + heatmap + legend + R/L marker on one ImageView, and clicks on the boxes."""

    regionHovered = Signal(str)  # "" when the mouse left every box
    regionClicked = Signal(str)

    def __init__(self, view, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.view = view
        self._items: dict[str, RegionBoxItem] = {}
        self._hidden: set[str] = set()
        self._show_regions = True
        self._show_unselected = False  # the regions without a sentence clutter; one toggle shows them
        self._highlighted = ""
        self._press_pos = None
        self.heatmap = HeatmapItem()
        self.heatmap.setVisible(False)
        view.add_overlay(self.heatmap)
        self.legend = self._add_furniture(LegendItem())
        self.markers = (self._add_furniture(self._marker("R", "the patient's right")),
                        self._add_furniture(self._marker("L", "the patient's left")))
        view.viewport().installEventFilter(self)
        self._view_signals = ((view.zoomChanged, self.layout_annotations),
                              (view.horizontalScrollBar().valueChanged, self.layout_annotations),
                              (view.verticalScrollBar().valueChanged, self.layout_annotations))
        for signal, slot in self._view_signals:
            signal.connect(slot)
        self.layout_annotations()

    def _add_furniture(self, item: QGraphicsItem) -> QGraphicsItem:
        item.setZValue(FURNITURE_Z)
        item.setVisible(False)
        return self.view.add_overlay(item)

    @staticmethod
    def _marker(letter: str, meaning: str) -> TagItem:
        marker = TagItem(letter)
        font = QFont()
        font.setPointSizeF(13.0)
        font.setBold(True)
        marker.setFont(font)
        marker.setColor(MARKER_COLOR)
        marker.setToolTip(f"{letter}: {meaning} (frontal view, patient facing the viewer)")
        return marker

    # ----- regions ------------------------------------------------------------------
    def set_regions(self, regions) -> None:
        """regions: RegionResult-like objects (name, box, selected) for this view's image.
        The whole-image region is never drawn: a box round the frame tells the reader nothing."""
        for item in self._items.values():
            for part in (item, item.label):
                if part.scene() is not None:
                    part.scene().removeItem(part)
        self._items = {}
        for region in regions:
            if region.name == WHOLE_IMAGE:
                continue
            item = RegionBoxItem(region.name, region.box, bool(region.selected), self,
                                 tuple(getattr(region, "outline", ()) or ()))
            self._items[region.name] = item
            self.view.add_overlay(item)
            self.view.add_overlay(item.label)
        self.set_highlighted(self._highlighted)

    def region_names(self) -> list[str]:
        return list(self._items)

    def item(self, name: str) -> RegionBoxItem | None:
        return self._items.get(name)

    def set_regions_visible(self, visible: bool) -> None:
        self._show_regions = visible
        self._apply_visibility()

    def set_unselected_visible(self, visible: bool) -> None:
        """Also show the regions the model wrote no sentence about (hidden by default)."""
        self._show_unselected = visible
        self._apply_visibility()

    def unselected_visible(self) -> bool:
        return self._show_unselected

    def set_region_visible(self, name: str, visible: bool) -> None:
        (self._hidden.discard if visible else self._hidden.add)(name)
        self._apply_visibility()

    def is_region_shown(self, name: str) -> bool:
        item = self._items.get(name)
        return item is not None and item.isVisible()

    def _apply_visibility(self) -> None:
        for name, item in self._items.items():
            wanted = self._show_regions and name not in self._hidden and (item.chosen or self._show_unselected)
            # the linked region shows even when its box is switched off: the reader asked for it
            item.setVisible(wanted or name == self._highlighted)
        self.layout_annotations()

    def set_highlighted(self, name: str | None) -> None:
        self._highlighted = name or ""
        for item_name, item in self._items.items():
            item.highlighted = item_name == self._highlighted
            item.update_style()
        self._apply_visibility()

    def highlighted(self) -> str:
        return self._highlighted

    # ----- heatmap ------------------------------------------------------------------
    def set_heatmap(self, heatmap: np.ndarray | None) -> None:
        image = self.view.image
        if image is None:
            heatmap = None
        self.heatmap.set_heatmap(heatmap, (image.width, image.height) if image is not None else (1, 1))
        self.layout_annotations()  # the legend comes and goes with the heatmap

    def set_heatmap_opacity(self, opacity: float) -> None:
        self.heatmap.setOpacity(min(max(opacity, 0.0), 1.0))

    def heatmap_shown(self) -> bool:
        return self.heatmap.isVisible() and not self.heatmap.pixmap().isNull()

    # ----- names, markers and legend, in viewport pixels ------------------------------
    def layout_annotations(self) -> None:
        """Place the R/L markers and the legend, then every shown box's name around them."""
        bounds = self._visible_picture()
        obstacles = self._place_markers(bounds) + self._place_legend(bounds)
        named = self._named_items() if bounds is not None else []
        for item in self._items.values():
            item.label.setVisible(False)
        if not named:
            return
        boxes = [self._to_viewport(item.mapRectToScene(item.rect())) for item in named]
        sizes = [(item.label.boundingRect().width(), item.label.boundingRect().height()) for item in named]
        for item, spot in zip(named, place_labels(boxes, sizes, bounds, obstacles)):
            if spot is not None:  # no free spot: the name stays off rather than on another
                self._put(item.label, spot)
                item.label.setVisible(True)

    def _named_items(self) -> list[RegionBoxItem]:
        """Shown boxes, most important first: the linked region, then the described ones."""
        shown = [item for item in self._items.values() if item.isVisible()]
        return sorted(shown, key=lambda item: (not item.highlighted, not item.chosen))

    def _place_markers(self, bounds: Rect | None) -> list[Rect]:
        image = self.view.image
        frontal = image is not None and image.view.is_frontal  # on a lateral, R/L would mislead
        for marker in self.markers:
            marker.setVisible(frontal and bounds is not None)
        if not frontal or bounds is None:
            return []
        sizes = [(m.boundingRect().width(), m.boundingRect().height()) for m in self.markers]
        spots = side_marker_spots(bounds, sizes, FURNITURE_MARGIN_PX)  # R on the viewer's left
        for marker, spot in zip(self.markers, spots):
            self._put(marker, spot)
        return list(spots)

    def _place_legend(self, bounds: Rect | None) -> list[Rect]:
        shown = self.heatmap_shown() and bounds is not None
        self.legend.setVisible(shown)
        if not shown:
            return []
        spot = bottom_right_spot(bounds, LegendItem.SIZE, FURNITURE_MARGIN_PX)
        self._put(self.legend, spot)
        return [spot]

    def _visible_picture(self) -> Rect | None:
        """The part of the image on screen, in viewport pixels (None when nothing shows)."""
        if self.view.image is None:
            return None
        picture = self._to_viewport(self.view.image_item.sceneBoundingRect())
        viewport = self.view.viewport().rect()
        return picture.intersection(Rect(0, 0, viewport.width(), viewport.height()))

    def _to_viewport(self, scene_rect: QRectF) -> Rect:
        rect = self.view.viewportTransform().mapRect(scene_rect)
        return Rect(rect.left(), rect.top(), rect.right(), rect.bottom())

    def _put(self, item: QGraphicsItem, spot: Rect) -> None:
        """Move a screen-sized item so its top-left lands on a viewport point."""
        to_scene, _invertible = self.view.viewportTransform().inverted()
        item.setPos(self.view.image_item.mapFromScene(to_scene.map(QPointF(spot.left, spot.top))))

    # ----- clicks -------------------------------------------------------------------
    def region_at(self, viewport_pos) -> str | None:
        """The smallest visible box under a viewport point (nested regions: the specific one)."""
        scene_pos = self.view.mapToScene(viewport_pos)
        hits = [item for item in self._items.values()
                if item.isVisible() and item.sceneBoundingRect().contains(scene_pos)]
        if not hits:
            return None
        return min(hits, key=lambda item: item.rect().width() * item.rect().height()).name

    def eventFilter(self, watched, event) -> bool:
        kind = event.type()
        if kind == QEvent.Type.Resize:
            self.layout_annotations()
        elif kind == QEvent.Type.MouseButtonPress and event.button() == Qt.MouseButton.LeftButton:
            self._press_pos = event.position().toPoint()
        elif kind == QEvent.Type.MouseButtonRelease and event.button() == Qt.MouseButton.LeftButton:
            start, self._press_pos = self._press_pos, None
            end = event.position().toPoint()
            if start is not None and (end - start).manhattanLength() <= CLICK_SLOP_PX:
                name = self.region_at(end)
                if name:
                    self.regionClicked.emit(name)
        return False  # the view still pans as usual

    def detach(self) -> None:
        self.view.viewport().removeEventFilter(self)
        with contextlib.suppress(RuntimeError):  # the view may already be on its way out
            for signal, slot in self._view_signals:
                signal.disconnect(slot)


def frontal_view(views: list[QGraphicsView], study) -> QGraphicsView | None:
    """The view showing the image the draft's regions refer to (the pipeline's frontal)."""
    if study is None or not study.images:
        return None
    primary = study.primary_image
    return next((view for view in views if view.image is primary), views[0] if views else None)
