"""Exception classes that carry kernelnet's exit-code contract.

``KernelnetError`` subclasses know their exit code so the CLI maps any of them to
one clear line on stderr: 2 for problems with what the user gave us (usage, config,
data), 1 for a run that started and failed.
"""

from __future__ import annotations


class KernelnetError(Exception):
    """Base class; ``exit_code`` is what the CLI exits with."""

    exit_code = 1


class ConfigError(KernelnetError):
    """A config file, ``--set`` override or flag is invalid."""

    exit_code = 2


class DataError(KernelnetError, ValueError):
    """A dataset is missing, corrupt or unsuitable for the estimator (a ValueError too, as
    scikit-learn expects of bad input)."""

    exit_code = 2


class RunFailed(KernelnetError):
    """The experiment ran and failed (e.g. some grid cells failed)."""

    exit_code = 1


class CellFailed(KernelnetError):
    """One grid cell failed; ``fields`` are metric columns worth keeping anyway."""

    exit_code = 1

    def __init__(self, message: str, fields: dict | None = None):
        super().__init__(message)
        self.fields = dict(fields or {})


class Diverged(KernelnetError):
    """Training produced a non-finite loss; ``details`` says where."""

    exit_code = 1

    def __init__(self, message: str, details: dict | None = None):
        super().__init__(message)
        self.details = dict(details or {})


class ModelError(KernelnetError, ValueError):
    """A saved model (model.json and model-arrays.npz) that is missing, damaged or not
    consistent as a whole: refused before any of it is used."""

    exit_code = 2


class ResourceError(KernelnetError):
    """Work whose estimated footprint (memory or time) is over a bound the user can raise:
    the message says what it needs, the bound, and what to do instead."""

    exit_code = 2
