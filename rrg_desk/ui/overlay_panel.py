"""Overlay controls: regions on/off (all, also those without a sentence, one by one), heatmap
opacity, the colour legend."""
from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QFont
from PySide6.QtWidgets import (QCheckBox, QFormLayout, QLabel, QListWidget, QListWidgetItem, QPushButton, QSlider,
                               QVBoxLayout, QWidget)

from rrg_desk.models.regions import WHOLE_IMAGE, region_label
from rrg_desk.ui.colormap import ColorLegend
from rrg_desk.ui.overlays import DEFAULT_HEATMAP_OPACITY

NO_HEATMAP = "Heatmap: none (hover or click a sentence, or pick a finding)"
DESCRIBED_ROLE = Qt.ItemDataRole.UserRole + 1  # did the model write a sentence about the region?


class OverlayPanel(QWidget):
    regionsToggled = Signal(bool)
    allRegionsToggled = Signal(bool)  # also the regions without a sentence
    regionToggled = Signal(str, bool)
    regionActivated = Signal(str)  # double-click: jump to the region's sentence
    opacityChanged = Signal(float)
    describeRequested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.show_regions = QCheckBox("Show region boxes", self)
        self.show_regions.setChecked(True)
        self.show_all_regions = QCheckBox("Show all regions (also without a sentence)", self)
        self.show_all_regions.setToolTip("Show every region the detector found, not only those the model "
                                         "wrote about (dashed)")
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
        self.legend.setVisible(False)  # appears with the first heatmap
        self.describe_button = QPushButton("Describe a region…", self)
        self.describe_button.setToolTip("Draw a box on the frontal image (or Shift+drag any time): "
                                        "the model writes a sentence about it")
        form = QFormLayout()
        form.addRow("Heatmap opacity", self.opacity)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.show_regions)
        layout.addWidget(self.show_all_regions)
        layout.addWidget(self.region_list, 1)
        layout.addWidget(self.describe_button)
        layout.addLayout(form)
        layout.addWidget(self.legend)
        layout.addWidget(self.heatmap_label)
        self.show_regions.toggled.connect(self._on_show_regions)
        self.show_all_regions.toggled.connect(self._on_show_all_regions)
        self.region_list.itemChanged.connect(self._on_item_changed)
        self.region_list.itemDoubleClicked.connect(lambda item: self.regionActivated.emit(item.data(Qt.ItemDataRole.UserRole)))
        self.opacity.valueChanged.connect(lambda value: self.opacityChanged.emit(value / 100.0))
        self.describe_button.clicked.connect(self.describeRequested)

    def set_regions(self, regions) -> None:
        self.region_list.blockSignals(True)
        self.region_list.clear()
        for region in sorted(regions, key=lambda r: (not r.selected, r.name)):
            if region.name == WHOLE_IMAGE:
                continue  # never drawn, so nothing to switch
            item = QListWidgetItem(region_label(region.name))
            item.setData(Qt.ItemDataRole.UserRole, region.name)
            item.setData(DESCRIBED_ROLE, bool(region.selected))
            item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
            item.setCheckState(Qt.CheckState.Checked)
            if region.selected:
                font = QFont(item.font())
                font.setBold(True)
                item.setFont(font)
            self.region_list.addItem(item)
        self.region_list.blockSignals(False)
        self._filter_region_list()

    def _filter_region_list(self) -> None:
        """List only the regions the image can show: the described ones unless all are asked for."""
        show_all = self.show_all_regions.isChecked()
        for row in range(self.region_list.count()):
            item = self.region_list.item(row)
            item.setHidden(not (show_all or item.data(DESCRIBED_ROLE)))

    def region_item(self, name: str) -> QListWidgetItem | None:
        for row in range(self.region_list.count()):
            item = self.region_list.item(row)
            if item.data(Qt.ItemDataRole.UserRole) == name:
                return item
        return None

    def set_heatmap_caption(self, caption: str) -> None:
        self.legend.setVisible(bool(caption))  # the legend explains a heatmap on screen, or nothing
        self.heatmap_label.setText(f"Heatmap: {caption}" if caption else NO_HEATMAP)

    def _on_show_regions(self, checked: bool) -> None:
        self.region_list.setEnabled(checked)
        self.show_all_regions.setEnabled(checked)
        self.regionsToggled.emit(checked)

    def _on_show_all_regions(self, checked: bool) -> None:
        self._filter_region_list()
        self.allRegionsToggled.emit(checked)

    def _on_item_changed(self, item: QListWidgetItem) -> None:
        self.regionToggled.emit(item.data(Qt.ItemDataRole.UserRole), item.checkState() == Qt.CheckState.Checked)
