"""Preprocessing shared by training and inference (no torch anywhere below this package)."""
