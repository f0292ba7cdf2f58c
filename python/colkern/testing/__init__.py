"""Helpers for testing code built on colkern without model downloads: tiny random-weight ColPali
and SigLIP models built offline."""
from .tiny_colpali import build_tiny_colpali, make_tiny_colpali
from .tiny_siglip import build_tiny_siglip, make_tiny_siglip

__all__ = ["build_tiny_colpali", "build_tiny_siglip", "make_tiny_colpali", "make_tiny_siglip"]
