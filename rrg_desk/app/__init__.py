"""RRG Desk app layer."""
