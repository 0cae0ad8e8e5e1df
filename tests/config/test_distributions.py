"""Random search: distributions where a value is expected, drawn reproducibly, zipped into
candidates that multiply with the sweeps."""

import math
from dataclasses import dataclass, field

import numpy as np
import pytest

from kernelnet.config import RawConfig, expand, resolve
from kernelnet.config.distributions import Dimension, candidates
from kernelnet.config.schema import param
from kernelnet.errors import ConfigError


@dataclass
class Section:
    C: float = param(1.0, gt=0)
    gamma: float = param(0.5, gt=0, le=10)
    degree: int = param(3, ge=1)
    kernel: str = param("rbf", choices=("linear", "rbf", "poly"))
    hidden: list[int] = param(default_factory=lambda: [100], ge=1)


@dataclass
class Search:
    trials: int = param(10, ge=1)


@dataclass
class Schema:
    seed: int = param(0, ge=0)
    svm: Section = field(default_factory=Section)
    search: Search = field(default_factory=Search)


def cells_of(values):
    raw = RawConfig(values, {})
    return expand(Schema, resolve(Schema, raw.values, raw.locations))


def test_log_uniform_draws_within_bounds_rounded_and_spread_over_the_decades():
    cells = cells_of({"svm": {"C": {"log_uniform": [0.001, 1000]}}, "search": {"trials": 400}})
    values = np.array([cell.config.svm.C for cell in cells])
    # 400 draws rounded to 4 digits may repeat one (a birthday collision): one cell each
    assert 390 <= len(values) == len(set(values)) and values.min() >= 0.001 and values.max() <= 1000
    assert all(float(f"{v:.4g}") == v for v in values)  # the id's text is the value run
    decades = np.histogram(np.log10(values), bins=6, range=(-3, 3))[0]
    assert decades.min() > len(values) / 6 * 0.5  # log-uniform: every decade about equally often
    assert cells[0].id == f"C={values[0]:g}"


def test_same_seed_same_candidates_whatever_else_is_swept():
    alone = cells_of({"svm": {"C": {"log_uniform": [0.01, 100]}}})
    with_sweep = cells_of({"svm": {"C": {"log_uniform": [0.01, 100]}, "kernel": ["rbf", "poly"]}})
    assert [c.config.svm.C for c in alone] == [c.config.svm.C for c in with_sweep[:10]]
    assert [c.config.svm.C for c in with_sweep[10:]] == [c.config.svm.C for c in alone]
    assert len(with_sweep) == 20  # the sweep times the candidates
    other_seed = cells_of({"seed": 1, "svm": {"C": {"log_uniform": [0.01, 100]}}})
    assert [c.config.svm.C for c in other_seed] != [c.config.svm.C for c in alone]


def test_a_candidate_is_the_same_cell_as_its_values_set_alone():
    searched = cells_of({"svm": {"C": {"uniform": [1, 2]}, "gamma": {"log_uniform": [0.1, 1]}}})
    cell = searched[3]
    alone = cells_of({"svm": {"C": cell.config.svm.C, "gamma": cell.config.svm.gamma}})[0]
    assert alone.digest == cell.digest  # same Generator, same stored result


def test_zipped_draws_and_duplicates_merged():
    cells = cells_of(
        {
            "svm": {"degree": {"int_uniform": [2, 3]}, "kernel": {"choice": ["rbf", "poly"]}},
            "search": {"trials": 50},
        }
    )
    pairs = [(c.config.svm.degree, c.config.svm.kernel) for c in cells]
    assert sorted(pairs) == sorted({(d, k) for d in (2, 3) for k in ("rbf", "poly")})
    assert len({c.id for c in cells}) == len(cells) == 4


def test_choice_of_lists_for_a_list_setting():
    cells = cells_of({"svm": {"hidden": {"choice": [[100], [256, 128]]}}, "search": {"trials": 30}})
    assert {tuple(c.config.svm.hidden) for c in cells} == {(100,), (256, 128)}


def test_draws_follow_the_distribution_exactly():
    """The draws are the named Generator's: uniform on [low, high] and int_uniform with
    both bounds included, checked against NumPy directly."""
    from kernelnet.seeding import named_rng

    dim = Dimension("svm.gamma", "gamma", "uniform", (0.5, 2.0))
    drawn = dim.draw(7, 5)
    expected = named_rng(7, "search draws svm.gamma").uniform(0.5, 2.0, 5)
    assert drawn == [float(f"{v:.4g}") for v in expected]
    ints = Dimension("svm.degree", "degree", "int_uniform", (1, 2)).draw(0, 200)
    assert set(ints) == {1, 2}
    assert candidates([dim], 7, 5) == [(v,) for v in drawn]


@pytest.mark.parametrize(
    "value, message",
    [
        ({"log_uniform": [0, 10]}, "low > 0"),
        ({"log_uniform": [10, 1]}, "low < high"),
        ({"uniform": [1, 20]}, "must be <= 10"),  # gamma's own bound checks the high end
        ({"uniform": [1]}, "takes [low, high]"),
        ({"loguniform": [1, 10]}, "random-search distribution is one of"),
        ({"choice": [1]}, "at least two"),
        ({"uniform": ["a", "b"]}, "finite numbers"),
        ({"uniform": [1, math.inf]}, "finite numbers"),
    ],
)
def test_bad_distributions_are_one_line_config_errors(value, message):
    with pytest.raises(ConfigError, match=message.replace("[", r"\[")):
        cells_of({"svm": {"gamma": value}})


def test_an_integer_setting_takes_whole_numbers_only():
    with pytest.raises(ConfigError, match="int_uniform or choice"):
        cells_of({"svm": {"degree": {"uniform": [1, 3]}}})
    with pytest.raises(ConfigError, match="one of linear, rbf, poly"):
        cells_of({"svm": {"kernel": {"choice": ["rbf", "sigmoid"]}}})


def test_the_cap_counts_candidates_before_building_them():
    with pytest.raises(ConfigError, match="search candidates"):
        raw = RawConfig({"svm": {"C": {"uniform": [1, 2]}, "kernel": ["rbf", "poly"]}}, {})
        expand(Schema, resolve(Schema, raw.values, raw.locations), max_cells=15)
