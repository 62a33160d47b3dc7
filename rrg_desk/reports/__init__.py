"""RRG Desk reports layer."""
