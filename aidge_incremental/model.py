"""Kept for compatibility: the models now live in :mod:`aidge_incremental.models`."""
from .models import ARCHITECTURES, FEATURES, HEAD, IncrementalModel  # noqa: F401

__all__ = ["ARCHITECTURES", "IncrementalModel", "FEATURES", "HEAD"]
