"""Random search: a setting given as a distribution instead of a value or a sweep.

In a config or ``--set``, a one-key mapping where one value is expected::

    svm:
      C: {log_uniform: [0.001, 1000]}     # a float drawn log-uniformly between the bounds
    kernel:
      gamma: {uniform: [0.01, 1]}         # uniformly
      degree: {int_uniform: [2, 5]}       # a whole number, both bounds included
      name: {choice: [rbf, poly]}         # one of the listed values

``search.trials`` candidates are drawn (each distribution's draws zipped, trial i taking the
i-th draw of each); together with ordinary sweeps they multiply like another axis. The
draws come from a Generator derived from the run seed and the setting's dotted key only, so
the same seed draws the same candidates whatever else the config sweeps, and a resumed or
rerun run draws them again from its saved config (which keeps the distributions as written).
Drawn floats are rounded to four significant digits, so a candidate's cell id and the
``--set`` that reruns it hold the exact value its cell ran with. Two trials that draw the same
candidate are one cell.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

KINDS = ("uniform", "log_uniform", "int_uniform", "choice")
SIGNIFICANT = 4


def is_distribution(value: Any) -> bool:
    """A one-key mapping naming a distribution (no other config value is a mapping)."""
    return isinstance(value, dict) and len(value) == 1 and next(iter(value)) in KINDS


def looks_like_distribution(value: Any) -> bool:
    """A mapping where one value is expected: a distribution, or a misspelt one."""
    return isinstance(value, dict)


def distribution_problem(value: Any, kind: type) -> str | None:
    """Why ``value`` is not a distribution a field of type ``kind`` can take, else None.
    (Each bound and choice is then checked like any value of the field.)"""
    if not is_distribution(value):
        keys = ", ".join(map(str, value)) if isinstance(value, dict) else ""
        return (
            f"a mapping ({keys}) is not a value; a random-search distribution is one of "
            + ", ".join(f"{{{k}: [...]}}" for k in KINDS)
        )
    ((name, args),) = value.items()
    if not isinstance(args, list) or not args:
        return f"{name} takes a list ({'[low, high]' if name != 'choice' else '[a, b, ...]'})"
    if name == "choice":
        return None if len(args) >= 2 else "choice needs at least two values"
    if len(args) != 2:
        return f"{name} takes [low, high] (got {len(args)} value(s))"
    numbers = all(isinstance(a, (int, float)) and not isinstance(a, bool) for a in args)
    if not numbers or not all(math.isfinite(a) for a in args):
        return f"{name} bounds must be finite numbers"
    low, high = args
    if not low < high:
        return f"{name} needs low < high (got [{low}, {high}])"
    if name == "log_uniform" and low <= 0:
        return f"log_uniform needs low > 0 (got {low})"
    if name == "int_uniform" and not all(float(a).is_integer() for a in args):
        return "int_uniform bounds must be whole numbers"
    if kind is int and name != "int_uniform":
        return f"an integer setting takes int_uniform or choice, not {name}"
    if kind is float or (kind is int and name == "int_uniform"):
        return None
    return f"{name} draws numbers; this setting takes {getattr(kind, '__name__', kind)}: use choice"


def bounds_of(value: dict[str, list[Any]]) -> list[Any]:
    """The values to check against the field's own type and range: the bounds, or every
    choice."""
    ((_, args),) = value.items()
    return list(args)


@dataclass(frozen=True)
class Dimension:
    """One distribution-valued setting: its dotted key, id label and distribution."""

    path: str
    label: str
    kind: str
    args: tuple[Any, ...]

    def draw(self, seed: Any, trials: int) -> list[Any]:
        from kernelnet.seeding import named_rng

        rng = named_rng(seed, f"search draws {self.path}")
        if self.kind == "choice":
            return [self.args[i] for i in rng.integers(0, len(self.args), trials)]
        if self.kind == "int_uniform":
            low, high = int(self.args[0]), int(self.args[1])
            return [int(v) for v in rng.integers(low, high + 1, trials)]
        low, high = (float(a) for a in self.args)
        if self.kind == "log_uniform":
            raw = math.e ** rng.uniform(math.log(low), math.log(high), trials)
        else:
            raw = rng.uniform(low, high, trials)
        return [min(max(float(f"{v:.{SIGNIFICANT}g}"), low), high) for v in raw]


def candidates(dimensions: list[Dimension], seed: Any, trials: int) -> list[tuple[Any, ...]]:
    """The distinct candidates of ``trials`` zipped draws, in the order drawn."""
    draws = [d.draw(seed, trials) for d in dimensions]
    seen: dict[str, tuple[Any, ...]] = {}
    for combo in zip(*draws, strict=True):
        seen.setdefault(repr(combo), combo)
    return list(seen.values())
