"""The normalization family (to be written)."""
