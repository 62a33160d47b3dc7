"""RRG Desk: chest X-ray reporting workstation."""

__version__ = "0.1.0"
