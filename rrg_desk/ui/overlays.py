"""Overlays on one ImageView: the detected region boxes with names, and one heatmap.

Items are children of the view's pixmap item, so they live in image pixel coordinates and
follow zoom and pan. Styles tell apart the regions the selector chose (solid, coloured),
the others (thin, dashed, dim) and the region under the mouse or linked to the sentence
being read (thick, amber, lightly filled). Pens are cosmetic and labels ignore the view's
scale, so boxes and names stay readable at any zoom.
"""
from __future__ import annotations

import numpy as np
from PySide6.QtCore import QEvent, QObject, QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QBrush, QColor, QFont, QPen, QPixmap
from PySide6.QtWidgets import (QGraphicsItem, QGraphicsPixmapItem, QGraphicsRectItem, QGraphicsSimpleTextItem,
                               QGraphicsView)

from rrg_desk.ui.colormap import heatmap_to_qimage

SELECTED_COLOR = QColor(64, 200, 255)
UNSELECTED_COLOR = QColor(160, 160, 160, 150)
HIGHLIGHT_COLOR = QColor(255, 190, 40)
CLICK_SLOP_PX = 4  # a press and release closer than this is a click, not a pan
HEATMAP_Z, BOX_Z, HIGHLIGHT_Z = 1.0, 2.0, 3.0
DEFAULT_HEATMAP_OPACITY = 0.55


def region_label(name: str) -> str:
    return name.replace("_", " ")


class RegionBoxItem(QGraphicsRectItem):
    def __init__(self, name: str, box: tuple[float, float, float, float], chosen: bool,
                 owner: "RegionOverlay") -> None:
        x0, y0, x1, y1 = box
        super().__init__(QRectF(QPointF(x0, y0), QPointF(x1, y1)).normalized())
        self.name, self.chosen, self._owner = name, chosen, owner
        self.hovered = self.highlighted = False
        self.setAcceptHoverEvents(True)
        self.setToolTip(f"{region_label(name)} — {'described' if chosen else 'not described'} by the model")
        self.label = QGraphicsSimpleTextItem(region_label(name), self)
        self.label.setFlag(QGraphicsItem.GraphicsItemFlag.ItemIgnoresTransformations, True)
        self.label.setPos(self.rect().topLeft())
        self.update_style()

    def update_style(self) -> None:
        emphasised = self.hovered or self.highlighted
        color = HIGHLIGHT_COLOR if emphasised else SELECTED_COLOR if self.chosen else UNSELECTED_COLOR
        pen = QPen(color, 3.0 if emphasised else 2.0 if self.chosen else 1.0)
        pen.setCosmetic(True)
        if not self.chosen and not emphasised:
            pen.setStyle(Qt.PenStyle.DashLine)
        self.setPen(pen)
        fill = QColor(HIGHLIGHT_COLOR)
        fill.setAlpha(40)
        self.setBrush(QBrush(fill) if emphasised else Qt.BrushStyle.NoBrush)
        self.setZValue(HIGHLIGHT_Z if emphasised else BOX_Z)
        font = QFont()
        font.setPointSizeF(9.0 if self.chosen or emphasised else 7.5)
        font.setBold(emphasised)
        self.label.setFont(font)
        self.label.setBrush(color)
        self.label.setVisible(self.chosen or emphasised)  # dim regions name themselves on hover

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
    """Region boxes + heatmap on one ImageView, and clicks on the boxes."""

    regionHovered = Signal(str)  # "" when the mouse left every box
    regionClicked = Signal(str)

    def __init__(self, view, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.view = view
        self._items: dict[str, RegionBoxItem] = {}
        self._hidden: set[str] = set()
        self._show_regions = True
        self._highlighted = ""
        self._press_pos = None
        self.heatmap = HeatmapItem()
        self.heatmap.setVisible(False)
        view.add_overlay(self.heatmap)
        view.viewport().installEventFilter(self)

    # ----- regions ------------------------------------------------------------------
    def set_regions(self, regions) -> None:
        """regions: RegionResult-like objects (name, box, selected) for this view's image."""
        for item in self._items.values():
            if item.scene() is not None:
                item.scene().removeItem(item)
        self._items = {}
        for region in regions:
            item = RegionBoxItem(region.name, region.box, bool(region.selected), self)
            self._items[region.name] = item
            self.view.add_overlay(item)
        self._apply_visibility()
        self.set_highlighted(self._highlighted)

    def region_names(self) -> list[str]:
        return list(self._items)

    def item(self, name: str) -> RegionBoxItem | None:
        return self._items.get(name)

    def set_regions_visible(self, visible: bool) -> None:
        self._show_regions = visible
        self._apply_visibility()

    def regions_visible(self) -> bool:
        return self._show_regions

    def set_region_visible(self, name: str, visible: bool) -> None:
        (self._hidden.discard if visible else self._hidden.add)(name)
        self._apply_visibility()

    def is_region_shown(self, name: str) -> bool:
        item = self._items.get(name)
        return item is not None and item.isVisible()

    def _apply_visibility(self) -> None:
        for name, item in self._items.items():
            # the linked region shows even when its box is switched off: the reader asked for it
            item.setVisible(self._show_regions and name not in self._hidden or name == self._highlighted)

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

    def set_heatmap_opacity(self, opacity: float) -> None:
        self.heatmap.setOpacity(min(max(opacity, 0.0), 1.0))

    def heatmap_shown(self) -> bool:
        return self.heatmap.isVisible() and not self.heatmap.pixmap().isNull()

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
        if kind == QEvent.Type.MouseButtonPress and event.button() == Qt.MouseButton.LeftButton:
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


def frontal_view(views: list[QGraphicsView], study) -> QGraphicsView | None:
    """The view showing the image the draft's regions refer to (the pipeline's frontal)."""
    if study is None or not study.images:
        return None
    frontal = study.frontal or study.images[0]
    return next((view for view in views if view.image is frontal), views[0] if views else None)
