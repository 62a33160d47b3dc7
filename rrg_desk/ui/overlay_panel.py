"""Overlay controls: regions on/off (all and one by one), heatmap opacity, the colour legend."""
from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QFont
from PySide6.QtWidgets import (QCheckBox, QFormLayout, QLabel, QListWidget, QListWidgetItem, QPushButton, QSlider,
                               QVBoxLayout, QWidget)

from rrg_desk.ui.colormap import ColorLegend
from rrg_desk.ui.overlays import DEFAULT_HEATMAP_OPACITY, region_label

NO_HEATMAP = "Heatmap: none (hover or click a sentence, or pick a finding)"


class OverlayPanel(QWidget):
    regionsToggled = Signal(bool)
    regionToggled = Signal(str, bool)
    regionActivated = Signal(str)  # double-click: jump to the region's sentence
    opacityChanged = Signal(float)
    describeRequested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.show_regions = QCheckBox("Show region boxes", self)
        self.show_regions.setChecked(True)
        self.region_list = QListWidget(self)
        self.region_list.setToolTip("Untick a region to hide its box; double-click to find its sentence.\n"
                                    "Bold: regions the model wrote a sentence about.")
        self.opacity = QSlider(Qt.Orientation.Horizontal, self)
        self.opacity.setRange(0, 100)
        self.opacity.setValue(round(DEFAULT_HEATMAP_OPACITY * 100))
        self.opacity.setToolTip("Heatmap opacity")
        self.heatmap_label = QLabel(NO_HEATMAP, self)
        self.heatmap_label.setWordWrap(True)
        self.legend = ColorLegend(parent=self)
        self.legend.setVisible(False)  # appears with the first heatmap (its LUT needs matplotlib)
        self.describe_button = QPushButton("Describe a region…", self)
        self.describe_button.setToolTip("Draw a box on the frontal image (or Shift+drag any time): "
                                        "the model writes a sentence about it")
        form = QFormLayout()
        form.addRow("Heatmap opacity", self.opacity)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.show_regions)
        layout.addWidget(self.region_list, 1)
        layout.addWidget(self.describe_button)
        layout.addLayout(form)
        layout.addWidget(self.legend)
        layout.addWidget(self.heatmap_label)
        self.show_regions.toggled.connect(self._on_show_regions)
        self.region_list.itemChanged.connect(self._on_item_changed)
        self.region_list.itemDoubleClicked.connect(lambda item: self.regionActivated.emit(item.data(Qt.ItemDataRole.UserRole)))
        self.opacity.valueChanged.connect(lambda value: self.opacityChanged.emit(value / 100.0))
        self.describe_button.clicked.connect(self.describeRequested)

    def set_regions(self, regions) -> None:
        self.region_list.blockSignals(True)
        self.region_list.clear()
        for region in sorted(regions, key=lambda r: (not r.selected, r.name)):
            item = QListWidgetItem(region_label(region.name))
            item.setData(Qt.ItemDataRole.UserRole, region.name)
            item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
            item.setCheckState(Qt.CheckState.Checked)
            if region.selected:
                font = QFont(item.font())
                font.setBold(True)
                item.setFont(font)
            self.region_list.addItem(item)
        self.region_list.blockSignals(False)

    def region_item(self, name: str) -> QListWidgetItem | None:
        for row in range(self.region_list.count()):
            item = self.region_list.item(row)
            if item.data(Qt.ItemDataRole.UserRole) == name:
                return item
        return None

    def set_heatmap_caption(self, caption: str) -> None:
        if caption:
            self.legend.setVisible(True)
            self.heatmap_label.setText(f"Heatmap: {caption}")
        else:
            self.heatmap_label.setText(NO_HEATMAP)

    def _on_show_regions(self, checked: bool) -> None:
        self.region_list.setEnabled(checked)
        self.regionsToggled.emit(checked)

    def _on_item_changed(self, item: QListWidgetItem) -> None:
        self.regionToggled.emit(item.data(Qt.ItemDataRole.UserRole), item.checkState() == Qt.CheckState.Checked)
