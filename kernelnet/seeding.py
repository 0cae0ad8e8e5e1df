"""Every random number kernelnet draws comes from a Generator made here.

A cell's Generator depends on the run seed and the cell's canonical full config (its
:attr:`~kernelnet.config.Cell.digest`), never on the grid around it or the order cells
run in: the same settings give the same numbers alone, inside any grid, on any executor.
A user's data file counts by its bytes, not by how its path is spelled (``pets.csv``,
``./pets.csv`` and its absolute path give the same numbers; see
:func:`kernelnet.config.sweep.data_identity`).
Things shared by every cell of a run (a fixed probe point set, a run-level numerical
check) get a Generator derived from the run seed and a name saying what it is for.
"""

from __future__ import annotations

import hashlib

import numpy as np


def _words(text: str) -> list[int]:
    """Four 32-bit words of sha256(text): entropy for a SeedSequence."""
    digest = hashlib.sha256(text.encode()).digest()
    return [int.from_bytes(digest[i : i + 4], "big") for i in range(0, 16, 4)]


def cell_rng(seed: int, config_digest: str) -> np.random.Generator:
    """The Generator of the cell whose canonical config hashes to ``config_digest``."""
    return np.random.default_rng(np.random.SeedSequence([seed, *_words(config_digest)]))


def named_rng(seed: int | list[int], purpose: str) -> np.random.Generator:
    """A Generator shared by everything in a run that asks for ``purpose`` (e.g. "probe
    points"). ``seed`` may be the list of a swept seed: every value counts."""
    seeds = seed if isinstance(seed, list) else [seed]
    return np.random.default_rng(np.random.SeedSequence([*seeds, *_words(f"purpose:{purpose}")]))


def seeded_rng(seed: int) -> np.random.Generator:
    """The Generator of a plain integer seed as someone wrote it (a grading case's
    ``seed:``, the ``seed`` argument of a student's function): the same bits everywhere
    for that number, NumPy's own seeding of it."""
    return np.random.default_rng(int(seed))


def estimator_rng(random_state: int | np.random.Generator | None) -> np.random.Generator:
    """The Generator of a scikit-learn-style estimator: its own if given one, else seeded by
    ``random_state`` (None means 0: fits are reproducible unless asked otherwise)."""
    if isinstance(random_state, np.random.Generator):
        return random_state
    return seeded_rng(0 if random_state is None else random_state)
