"""Training datasets: R2Gen layout (IU X-ray, MIMIC-CXR), covid_cxr, JSRT regions, CSV,
report-text corpus and the sentence-to-region pairing."""
from train.data.csv_reports import CsvReportDataset
from train.data.jsrt import JsrtRegionDataset, region_label
from train.data.preprocess import load_image_tensor, scale_boxes
from train.data.r2gen import CovidCxrDataset, MissingImagesError, R2GenDataset, covid_view, read_annotation
from train.data.text_corpus import pairing_statistics, region_sentence_pairs, report_corpus, study_region_pairs

__all__ = [
    "CsvReportDataset", "JsrtRegionDataset", "region_label", "load_image_tensor",
    "scale_boxes", "CovidCxrDataset", "MissingImagesError", "R2GenDataset", "covid_view", "read_annotation",
    "pairing_statistics", "region_sentence_pairs", "report_corpus", "study_region_pairs",
]
