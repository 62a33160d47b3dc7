"""RRG Desk inference layer."""
