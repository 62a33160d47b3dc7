"""Names vulture reports as unused in rrg_desk/ and train/ that are used, one group per reason.

`make lint` runs `python -m vulture rrg_desk train tools/vulture_whitelist.py` (default
confidence 60). `_` stands for any object: vulture counts every `_.name` below as a use of
`name` (an attribute, method, function or parameter alike), and the file stays valid Python that
runs and that pyflakes accepts. Add a name here only with its reason; code that nothing uses is
deleted instead.
"""


class _AnyObject:
    def __getattr__(self, _name):
        return None


_ = _AnyObject()

# --- Qt virtual overrides and hooks: Qt calls them, our code never does --------------------------
_.eventFilter  # box_tool.py, overlays.py
_.watched  # eventFilter's first parameter, fixed by Qt's signature
_.paintEvent  # colormap.py, findings_panel.py
_.paint  # overlay_items.py (QGraphicsItem)
_.sizeHint  # findings_panel.py
_.minimumSizeHint  # findings_panel.py
_.wheelEvent  # image_view.py
_.dragEnterEvent  # main_window.py
_.dragMoveEvent  # main_window.py
_.dropEvent  # main_window.py
_.highlightBlock  # section_edit.py (QSyntaxHighlighter)
_.fetchMore  # worklist_panel.py (QAbstractTableModel)
_.columnCount  # worklist_panel.py
_.headerData  # worklist_panel.py

# --- attributes set for a library that reads them ------------------------------------------------
# pydicom Dataset keywords: written into the DICOM file, read by whoever opens it
_.TransferSyntaxUID  # imaging/dicom.py
_.PatientIdentityRemoved  # reports/deid.py
_.DeidentificationMethod
_.DeidentificationMethodCodeSequence
_.LongitudinalTemporalInformationModified
_.CodeMeaning
_.CodeValue
_.CodingSchemeDesignator
_.PatientName  # reports/export/dicom_sr.py
_.PatientID
_.PatientBirthDate
_.PatientSex
_.StudyDate
_.StudyTime
_.StudyID
_.AccessionNumber
_.ReferringPhysicianName
_.VerifyingObserverName
_.VerifyingObserverIdentificationCodeSequence
_.VerifyingOrganization
_.VerificationDateTime
_.VerifyingObserverSequence
_.SpecificCharacterSet
_.SeriesDate
_.SeriesTime
# torch's state-dict hook signature (models/gpt2.py)
_.local_metadata
# the tokenizers library's pipeline (models/tokenizer.py)
_.normalizer
_.pre_tokenizer
# requests.Session.auth (pacs/client.py)
_.auth

# --- references held so an object lives as long as its owner -------------------------------------
_._buffer  # image_view.py: the numpy pixels a QImage points into
_._worker  # pacs_panel.py: the running PACS worker, until it reports
_.review_dialog  # signoff.py: the open non-modal dialogs (tests read them too)
_.addendum_dialog
_.export_dialog
_.back_button  # review_dialog.py: the dialog's reject button

# --- interpreter hooks ---------------------------------------------------------------------------
_._mark_exiting  # inference/process.py: registered with atexit

# --- record fields: part of a stored or exchanged record even where no code reads them -----------
_.bits_stored  # imaging/types.py XrayImage metadata
_.imported_at  # store/records.py StudyRecord (worklist columns)
_.updated_at
_.created_at  # pacs/outbox.py delivery rows
_.sent_at
_.unk_id  # models/tokenizer.py: the four special token ids, unpacked together
_.deidentified  # store/export.py ExportSummary: written to export.json
# models/card.py: bundle card entries kept in card.json for whoever reads the card
_.target_regions_per_report  # RegionSelection: how the trainer chose the threshold
_.mean_selected_on_val
_.stored_dtype  # ComponentEntry: the file holds float16 weights (loading casts to the model's dtype anyway)
_.card_sha256  # ParentBundle: the parent's card.json when the fine-tune started

# --- used by the programs outside rrg_desk/ and train/ (bench, fuzz, packaging) and by tests ------
_.build_random_bundle  # models/bundle.py: bench, fuzz seeds, packaging --random-bundle, tests
_.explain  # store/database.py: bench_worklist's query plans, tests
_.set_status  # store/database.py: bench_worklist, tests
_.child_pid  # ui/draft_worker.py: bench_workstation's memory probe, tests
_.refreshing  # ui/worklist_panel.py: bench_worklist, tests

# --- read only by tests: the state a test asks a model or widget for -----------------------------
_.finding_logits  # models/clip_classifier.py
_.region_targets  # models/detector.py
_.tokenize  # models/tokenizer.py
_.encode_batch
_.was_clean_shutdown  # store/database.py
_.count_studies
_.set_filters  # ui/audit_dialog.py
_.is_armed  # ui/box_tool.py
_.crash_child_at  # ui/draft_worker.py
_.set_formats  # ui/export_dialog.py
_.is_inverted  # ui/image_view.py
_.displayed_qimage
_.is_fit_mode
_.overlays
_.region_item  # ui/overlay_panel.py
_.unselected_visible  # ui/overlays.py
_.is_region_shown
_.qimage_to_gray  # ui/qt_image.py
_.section_text  # ui/report_editor.py
_.panes  # ui/study_viewer.py
_.visible_uids  # ui/worklist_panel.py
