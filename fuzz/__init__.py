"""Fuzzing and crash-safety campaigns of RRG Desk (issue 8). Not part of the application.

    python -m fuzz [--cases N] [--targets dicom raster bundle] [--seed S]   readers + bundle loader
    python -m fuzz crash [--iterations N]                                   SIGKILL during save/sign/export

Every fuzz case runs in a worker process with an address-space limit (memory bound) and a
wall-clock limit (time bound); it must end in our typed error or a correct result.
Figures go to fuzz/results.json and fuzz/summary.md.
"""
