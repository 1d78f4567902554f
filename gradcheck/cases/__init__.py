"""Gradient-check cases, one module per op family, each exposing ``CASES``."""
