"""The experiment registry: command name -> :class:`~kernelnet.experiments.base.Experiment`.

Names and help come from :mod:`kernelnet.experiments.catalog`; an experiment's module is
imported the first time that experiment is looked up, so listing commands stays cheap.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, MutableMapping
from typing import TYPE_CHECKING

from kernelnet.errors import ConfigError
from kernelnet.experiments.catalog import CATALOG

if TYPE_CHECKING:
    from kernelnet.experiments.base import Experiment


class Registry(MutableMapping):
    """Every catalogued experiment, its module imported on first access. Entries can be
    replaced (tests swap a report in and out); the catalog's names are always there."""

    def __init__(self) -> None:
        self._loaded: dict[str, Experiment] = {}

    def __getitem__(self, name: str) -> Experiment:
        if name not in self._loaded:
            if name not in CATALOG:
                raise KeyError(name)
            module = importlib.import_module(f"{__name__}.{CATALOG[name].module}")
            self._loaded[name] = module.EXPERIMENT
        return self._loaded[name]

    def __setitem__(self, name: str, experiment: Experiment) -> None:
        self._loaded[name] = experiment

    def __delitem__(self, name: str) -> None:
        del self._loaded[name]

    def __iter__(self) -> Iterator[str]:
        return iter(CATALOG)

    def __len__(self) -> int:
        return len(CATALOG)

    def __contains__(self, name: object) -> bool:
        return name in CATALOG


REGISTRY = Registry()


def get_experiment(name: object, where: str = "") -> Experiment:
    """Look up an experiment; an unknown name is a config error listing the valid ones."""
    if not isinstance(name, str) or name not in REGISTRY:  # a list is unhashable, not a name
        prefix = f"{where}: " if where else ""
        raise ConfigError(
            f"{prefix}experiment: unknown experiment {name!r}; valid: {', '.join(REGISTRY)}"
        )
    return REGISTRY[name]
