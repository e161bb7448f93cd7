"""The notebook's files follow it to the runtime (see manager.py)."""

from .manager import FileSync

__all__ = ["FileSync"]
