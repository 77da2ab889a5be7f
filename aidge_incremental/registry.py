"""Named registries: methods, selection strategies, datasets, architectures,
layer kinds and export targets are each looked up by name in a
:class:`Registry`, so that adding one is one file plus its registration (no
``if``-chain to edit), and a user's code — or another installed package,
through an entry-point group — can add its own.

A lookup of an unknown name raises :class:`UnknownEntryError` (a ``KeyError``
and a ``ValueError``) naming the kind, the closest known name and the list of
known names.
"""
from __future__ import annotations

import difflib
from typing import Dict, Generic, Iterator, Mapping, Optional, TypeVar

__all__ = ["Registry", "UnknownEntryError"]

T = TypeVar("T")


class UnknownEntryError(KeyError, ValueError):
    """An unknown name was looked up in a registry; the message lists the known ones."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class Registry(Mapping[str, T], Generic[T]):
    """A name → object table of one kind of thing (``"method"``, ``"dataset"``...).

    ``entry_points``: an entry-point group (``importlib.metadata``) whose entries
    are loaded on first use; each entry point's object is registered under the
    entry point's name (a package adds a method with
    ``[project.entry-points."aidge_incremental.methods"] mine = "pkg.module:MyMethod"``).
    """

    def __init__(self, kind: str, entry_points: Optional[str] = None):
        self.kind = kind
        self.entry_points = entry_points
        self._entries: Dict[str, T] = {}
        self._loaded_entry_points = entry_points is None

    def register(self, name: str, obj: Optional[T] = None, *, replace: bool = False):
        """Register ``obj`` under ``name`` (or decorate: ``@REG.register("name")``).
        Refuses a name already taken unless ``replace``."""
        if not isinstance(name, str) or not name or name != name.strip():
            raise ValueError(f"a {self.kind} name must be a non-empty string without surrounding "
                             f"spaces, got {name!r}")

        def add(value: T) -> T:
            if name in self._entries and not replace and self._entries[name] is not value:
                raise ValueError(f"{self.kind} {name!r} is already registered "
                                 f"({self._entries[name]!r}); pass replace=True to replace it")
            self._entries[name] = value
            return value

        if obj is None:
            return add
        return add(obj)

    def unregister(self, name: str) -> T:
        """Remove ``name`` (e.g. a method a test registered); returns what it held."""
        self._load_entry_points()
        if name not in self._entries:
            raise self._unknown(name)
        return self._entries.pop(name)

    def _load_entry_points(self) -> None:
        if self._loaded_entry_points:
            return
        self._loaded_entry_points = True
        from importlib.metadata import entry_points
        for point in entry_points(group=self.entry_points):
            if point.name in self._entries:
                continue  # ours (or the user's) wins over a plug-in of the same name
            try:
                self._entries[point.name] = point.load()
            except Exception as e:  # a broken plug-in must not break the package
                import warnings
                warnings.warn(f"{self.kind} plug-in {point.name!r} ({point.value}) could not be "
                              f"loaded: {type(e).__name__}: {e}", RuntimeWarning, stacklevel=3)

    def _unknown(self, name) -> UnknownEntryError:
        known = sorted(self._entries)
        close = difflib.get_close_matches(str(name), known, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        return UnknownEntryError(f"unknown {self.kind} {name!r}{hint}: one of {', '.join(known) or 'none'}")

    def __getitem__(self, name: str) -> T:
        self._load_entry_points()
        try:
            return self._entries[name]
        except (KeyError, TypeError):
            raise self._unknown(name) from None

    def __contains__(self, name) -> bool:
        self._load_entry_points()
        try:
            return name in self._entries
        except TypeError:
            return False

    def __iter__(self) -> Iterator[str]:
        self._load_entry_points()
        return iter(sorted(self._entries))

    def __len__(self) -> int:
        self._load_entry_points()
        return len(self._entries)

    def names(self) -> tuple:
        """The registered names, sorted."""
        return tuple(self)

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}: {', '.join(self)})"

