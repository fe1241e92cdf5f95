"""A tiny name -> factory registry, one per pipeline stage (timm-style)."""

from __future__ import annotations

import difflib
import fnmatch
from typing import Callable, Generic, TypeVar

T = TypeVar("T")


class Registry(Generic[T]):
    """Maps names to factories. Registering a name twice is an error.

    Example:
        >>> DETECTORS = Registry("detector")
        >>> @DETECTORS.register("dummy")
        ... def make_dummy():
        ...     return "a detector"
        >>> DETECTORS.create("dummy")
        'a detector'
        >>> DETECTORS.create("dumy")
        Traceback (most recent call last):
        ...
        KeyError: "unknown detector 'dumy'; did you mean 'dummy'? Choices: dummy"
        >>> list(DETECTORS), len(DETECTORS)
        (['dummy'], 1)
    """

    def __init__(self, kind: str):
        self.kind = kind
        self._factories: dict[str, Callable[..., T]] = {}
        self._help: dict[str, str] = {}

    def register(self, name: str, help: str = "") -> Callable[[Callable[..., T]], Callable[..., T]]:
        def deco(factory: Callable[..., T]) -> Callable[..., T]:
            if name in self._factories:
                raise ValueError(f"{self.kind} {name!r} is already registered")
            self._factories[name] = factory
            self._help[name] = help or (factory.__doc__ or "").strip().split("\n")[0]
            return factory

        return deco

    def names(self, pattern: str = "*") -> list[str]:
        return sorted(n for n in self._factories if fnmatch.fnmatch(n, pattern))

    def describe(self) -> dict[str, str]:
        return {n: self._help[n] for n in self.names()}

    def get(self, name: str) -> Callable[..., T]:
        """The registered object itself (a factory, or a value registered as is)."""
        try:
            return self._factories[name]
        except KeyError:
            close = difflib.get_close_matches(name, self._factories, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise KeyError(f"unknown {self.kind} {name!r}{hint} Choices: {', '.join(self.names())}") from None

    __getitem__ = get

    def create(self, name: str, **kwargs) -> T:
        return self.get(name)(**kwargs)

    def __contains__(self, name: str) -> bool:
        return name in self._factories

    def __iter__(self):
        """The registered names, sorted (``list(DETECTORS)``, ``", ".join(CROPS)``)."""
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._factories)
