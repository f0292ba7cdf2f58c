"""Helpers for testing code built on colkern without model downloads: a tiny random ColPali."""
from .tiny_colpali import build_tiny_colpali, make_tiny_colpali

__all__ = ["build_tiny_colpali", "make_tiny_colpali"]
