"""Exceptions raised by skabi.

Every error names the variable (or step, or parameter), what it got and what was expected.
This module imports nothing from skabi.
"""

from sklearn.exceptions import NotFittedError

__all__ = [
    "NotFittedError",
    "SkabiError",
    "ShapeError",
    "MissingKeyError",
    "SupportError",
    "NonFiniteError",
    "SimulatorError",
    "TrainingError",
    "LoadError",
    "DamagedBankError",
]


class SkabiError(Exception):
    """Base class of skabi's own errors."""


class ShapeError(SkabiError, ValueError):
    """An array has a shape (or rank) other than the one expected."""


class MissingKeyError(SkabiError, KeyError):
    """A variable is missing from a batch.

    Subclasses ``KeyError`` for ``except KeyError`` code, but prints its message as
    written (a bare ``KeyError`` quotes it).
    """

    def __str__(self):
        return str(self.args[0]) if self.args else ""


class SupportError(SkabiError, ValueError):
    """Values lie outside the support of a constraint or transform."""


class NonFiniteError(SkabiError, ValueError):
    """A batch holds NaN or infinite values."""


class SimulatorError(SkabiError, ValueError):
    """A simulator function returned something unusable."""


class TrainingError(SkabiError, RuntimeError):
    """Training diverged (NaN or infinite loss)."""


class LoadError(SkabiError, ValueError):
    """A saved estimator is corrupt, incomplete or from an incompatible version."""


class DamagedBankError(SkabiError, ValueError):
    """A simulation bank on disk is damaged: its commit record (``skabi_state``) cannot be
    read, or its data differ from what the record says was committed."""
