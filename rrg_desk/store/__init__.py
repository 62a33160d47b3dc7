"""RRG Desk store layer."""
