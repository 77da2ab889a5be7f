"""The export's error, on its own so that every export module can raise it
without importing another (``cpp`` imports ``trust``, which raises it too)."""

__all__ = ["ExportError"]


class ExportError(RuntimeError):
    """An export that cannot be made, or would not compute what the model computes."""
