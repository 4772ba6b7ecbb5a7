"""Error types. Every user-facing failure is a `PhysgroundError` whose message names the
field, file or array at fault and what was expected; the CLI prints it on one line."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class PhysgroundError(Exception):
    """Base class for errors caused by user input or data, reported without a traceback."""


class UnknownNameError(PhysgroundError, KeyError):
    """A name looked up in a registry or config that does not exist."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


class ValidationError(PhysgroundError, ValueError):
    """An array, parameter or config value that does not satisfy the contract."""


class ErrorList(ValidationError):
    """Several independent input errors found in one pass (e.g. every bad prediction file),
    reported together: the CLI prints one ``error:`` line per message."""

    def __init__(self, messages: Iterable[str]) -> None:
        self.messages = [" ".join(str(m).split()) for m in messages]
        super().__init__("; ".join(self.messages))


class DataIntegrityError(PhysgroundError):
    """A file on disk that is corrupted, truncated or does not match its manifest."""


class SimulationError(PhysgroundError):
    """A simulator that diverged (NaN, Inf, energy explosion); never written as ground truth."""


def did_you_mean(name: str, choices: Iterable[str]) -> str:
    """Return ' (did you mean 'x'?)' for the closest choice, or '' when nothing is close."""
    close = difflib.get_close_matches(name, list(choices), n=1, cutoff=0.5)
    return f" (did you mean '{close[0]}'?)" if close else ""
