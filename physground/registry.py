"""One generic registry used for scenarios, models and metrics.

Entries are registered eagerly with a decorator or lazily as ``"module:attr"`` strings, so
that Warp, MuJoCo and torch are imported only when an entry is used. Entries carry tags
(``rigid``, ``cloth``, ``fluid``, ``baseline``, ``slow`` ...) from which lists and suites are
derived.

Third-party packages add entries through the entry-point group ``physground.<kind>s``
(``physground.scenarios``, ``physground.models``, ``physground.metrics``,
``physground.losses``, ``physground.laws``); the tags ride in the entry point's extras,
so listing them imports nothing::

    [project.entry-points."physground.scenarios"]
    "toy/glide" = "physground_toy.glide:ScenarioGlide [toy, rigid, benchmark]"
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

    def __init__(self, kind: str, providers: Iterable[str] = (), *,
                 group: str | None = None) -> None:
        self.kind = kind
        self.group = group or f"physground.{kind}s"  # entry points of third-party packages
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
        self._scan_entry_points()

    def refresh(self) -> None:
        """Scan the entry points again (after a plugin was installed into this process)."""
        self._ensure_providers()
        self._scan_entry_points()

    def _scan_entry_points(self) -> None:
        for ep in entry_points(group=self.group):
            if ep.name not in self._entries:
                target = f"{ep.module}:{ep.attr}" if ep.attr else ep.module
                self._entries[ep.name] = _Entry(ep.name, target, frozenset(ep.extras))

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

    def all_tags(self) -> list[str]:
        """Every tag some entry carries, sorted."""
        self._ensure_providers()
        return sorted({t for e in self._entries.values() for t in e.tags})

    def check_tag(self, tag: str) -> str:
        """``tag`` if some entry carries it; else an error with the closest tag."""
        known = self.all_tags()
        if tag not in known:
            raise UnknownNameError(f"no {self.kind} carries tag '{tag}'"
                                   f"{did_you_mean(tag, known)}; tags: {', '.join(known)}")
        return tag

    def tags(self, name: str) -> frozenset[str]:
        self._ensure_providers()
        self.get(name)
        return self._entries[name].tags

    def select(self, patterns: Iterable[str]) -> list[str]:
        """Expand names and ``tag:NAME`` selectors into a sorted, de-duplicated list."""
        out: dict[str, None] = {}
        for pattern in patterns:
            if pattern.startswith("tag:"):
                out.update(dict.fromkeys(self.names(self.check_tag(pattern[4:]))))
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

