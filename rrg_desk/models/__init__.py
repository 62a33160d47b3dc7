"""RRG Desk models layer."""
