"""One generic registry used for scenarios, models and metrics.

Entries are registered eagerly with a decorator or lazily as ``"module:attr"`` strings, so
that Warp, MuJoCo and torch are imported only when an entry is used. Entries carry tags
(``rigid``, ``cloth``, ``fluid``, ``baseline``, ``slow`` ...) from which lists and suites are
derived. Third-party packages can add entries through the entry-point group
``physground.<registry name>`` (e.g. ``physground.models``).
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import Any, Generic, TypeVar

from physground.errors import UnknownNameError, did_you_mean

T = TypeVar("T")


@dataclass
class _Entry:
    name: str
    target: Any  # the object, or a "module:attr" string until first use
    tags: frozenset[str] = field(default_factory=frozenset)

    def load(self) -> Any:
        if isinstance(self.target, str):
            module_name, _, attr = self.target.partition(":")
            obj: Any = importlib.import_module(module_name)
            for part in attr.split("."):
                obj = getattr(obj, part)
            self.target = obj
        return self.target


class Registry(Generic[T]):
    """Name -> object mapping with tags, lazy loading and helpful errors.

    ``providers`` are modules imported on first lookup; importing them registers the
    built-in entries (cheaply, as lazy strings) without a dependency from core to them.
    """

    def __init__(self, kind: str, providers: Iterable[str] = ()) -> None:
        self.kind = kind
        self._providers = tuple(providers)
        self._entries: dict[str, _Entry] = {}
        self._providers_loaded = False

    def register(
        self, name: str, target: T | str | None = None, *, tags: Iterable[str] = ()
    ) -> Any:
        """Register ``target`` under ``name``; without target, return a decorator."""
        if target is None:

            def decorator(obj: T) -> T:
                self.register(name, obj, tags=tags)
                return obj

            return decorator
        existing = self._entries.get(name)
        if existing is not None:
            # A lazy entry is replaced by the real object when its module registers it.
            if not isinstance(existing.target, str) and existing.target is not target:
                raise ValueError(f"{self.kind} '{name}' is already registered")
            tags = existing.tags | frozenset(tags)
        self._entries[name] = _Entry(name, target, frozenset(tags))
        return target

    def _ensure_providers(self) -> None:
        if self._providers_loaded:
            return
        self._providers_loaded = True
        for module in self._providers:
            importlib.import_module(module)
        for ep in entry_points(group=f"physground.{self.kind}s"):
            if ep.name not in self._entries:
                self._entries[ep.name] = _Entry(ep.name, ep.value)

    def get(self, name: str) -> T:
        """The object registered under ``name``; a clear error for unknown names."""
        self._ensure_providers()
        entry = self._entries.get(name)
        if entry is None:
            known = ", ".join(sorted(self._entries)) or "none"
            raise UnknownNameError(
                f"unknown {self.kind} '{name}'{did_you_mean(name, self._entries)}; "
                f"known: {known}"
            )
        return entry.load()

    def names(self, tag: str | None = None) -> list[str]:
        """Sorted names, optionally only those carrying ``tag``."""
        self._ensure_providers()
        return sorted(n for n, e in self._entries.items() if tag is None or tag in e.tags)

    def tags(self, name: str) -> frozenset[str]:
        self._ensure_providers()
        self.get(name)
        return self._entries[name].tags

    def select(self, patterns: Iterable[str]) -> list[str]:
        """Expand names and ``tag:NAME`` selectors into a sorted, de-duplicated list."""
        out: dict[str, None] = {}
        for pattern in patterns:
            if pattern.startswith("tag:"):
                tagged = self.names(pattern[4:])
                if not tagged:
                    raise UnknownNameError(f"no {self.kind} carries tag '{pattern[4:]}'")
                out.update(dict.fromkeys(tagged))
            else:
                self.get(pattern)
                out[pattern] = None
        return list(out)

    def __contains__(self, name: object) -> bool:
        self._ensure_providers()
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def items(self) -> Iterator[tuple[str, T]]:
        for name in self.names():
            yield name, self.get(name)

