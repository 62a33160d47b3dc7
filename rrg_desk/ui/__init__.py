"""RRG Desk ui layer."""
