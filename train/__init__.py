"""Training, evaluation and export of RRG Desk model bundles (never imported by the app)."""
