import math
from dataclasses import dataclass, field

import pytest

from kernelnet.config import RawConfig, expand, read_config_file, resolve
from kernelnet.config.schema import param
from kernelnet.errors import ConfigError


@dataclass
class Section:
    C: float = param(1.0, gt=0)
    degree: int = param(3, ge=0)
    kernel: str = param("rbf", choices=("linear", "rbf"), label="kernel")
    shuffle: bool = param(False)
    hidden: list[int] = param(default_factory=lambda: [100], ge=1)


@dataclass
class Schema:
    seed: int = param(0, ge=0)
    svm: Section = field(default_factory=Section)


def write(tmp_path, text):
    path = tmp_path / "c.yaml"
    path.write_text(text)
    return path


def resolve_text(tmp_path, text):
    raw = read_config_file(write(tmp_path, text))
    return resolve(Schema, raw.values, raw.locations)


def test_defaults_fill_missing_keys(tmp_path):
    assert resolve_text(tmp_path, "seed: 3\n") == {
        "seed": 3,
        "svm": {"C": 1.0, "degree": 3, "kernel": "rbf", "shuffle": False, "hidden": [100]},
    }


def test_out_of_range_value_names_file_line_key_and_bound(tmp_path):
    path = write(tmp_path, "seed: 0\nsvm:\n  C: -1\n")
    raw = read_config_file(path)
    with pytest.raises(ConfigError) as info:
        resolve(Schema, raw.values, raw.locations)
    assert str(info.value) == f"{path}:3:3: svm.C: must be > 0 (got -1)"


def test_unknown_key_gives_dotted_path_line_and_suggestion(tmp_path):
    with pytest.raises(ConfigError) as info:
        resolve_text(tmp_path, "svm:\n  degre: 2\n")
    assert str(info.value).endswith(":2:3: svm.degre: unknown key; did you mean 'degree'?")


def test_unknown_top_level_key_lists_valid_keys_when_nothing_is_close(tmp_path):
    with pytest.raises(ConfigError, match=r"zzz: unknown key; valid keys: seed, svm"):
        resolve_text(tmp_path, "zzz: 1\n")


@pytest.mark.parametrize(
    "text, message",
    [
        ("true", "must be a number (got true)"),
        (".nan", "must be finite (got nan)"),
        (".inf", "must be finite (got inf)"),
        ("-.inf", "must be finite (got -inf)"),
        ("abc", "must be a number (got 'abc')"),
    ],
)
def test_bool_nan_inf_and_text_fail_in_numeric_field(tmp_path, text, message):
    with pytest.raises(ConfigError) as info:
        resolve_text(tmp_path, f"svm:\n  C: {text}\n")
    assert str(info.value).endswith(f":2:3: svm.C: {message}")


def test_non_integer_in_integer_field_fails_but_integral_float_is_accepted(tmp_path):
    with pytest.raises(ConfigError, match=r"svm.degree: must be an integer \(got 2.5\)"):
        resolve_text(tmp_path, "svm:\n  degree: 2.5\n")
    assert resolve_text(tmp_path, "svm:\n  degree: 2.0\n")["svm"]["degree"] == 2


def test_bad_choice_suggests_the_closest(tmp_path):
    with pytest.raises(
        ConfigError, match=r"must be one of linear, rbf \(got 'rbg'\); did you mean 'rbf'"
    ):
        resolve_text(tmp_path, "svm:\n  kernel: rbg\n")


@pytest.mark.parametrize(
    "text, got", [("", "an empty file"), ("- 1\n- 2\n", "a list"), ("just a string\n", "a str")]
)
def test_config_must_be_a_mapping(tmp_path, text, got):
    with pytest.raises(ConfigError, match=f"config must be a mapping \\(got {got}\\)"):
        read_config_file(write(tmp_path, text))


def test_section_must_be_a_mapping(tmp_path):
    with pytest.raises(ConfigError, match=r":1:1: svm: svm must be a mapping \(got 3\)"):
        resolve_text(tmp_path, "svm: 3\n")


def test_missing_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="config file not found"):
        read_config_file(tmp_path / "nope.yaml")


def test_list_value_sweeps_and_each_element_is_checked(tmp_path):
    with pytest.raises(ConfigError, match=r":2:10: svm.C\[1\]: must be > 0 \(got 0\)"):
        resolve_text(tmp_path, "svm:\n  C: [1, 0]\n")
    with pytest.raises(ConfigError, match="sweep list must not be empty"):
        resolve_text(tmp_path, "svm:\n  C: []\n")


def test_list_field_takes_a_list_and_a_list_of_lists_sweeps(tmp_path):
    resolved = resolve_text(tmp_path, "svm:\n  hidden: [[10], [20, 5]]\n")
    cells = expand(Schema, resolved)
    assert [c.config.svm.hidden for c in cells] == [[10], [20, 5]]
    assert [c.id for c in cells] == ["hidden=10", "hidden=20_5"]


def test_expansion_is_the_cartesian_product_in_schema_order(tmp_path):
    resolved = resolve_text(
        tmp_path, "seed: [1, 2]\nsvm:\n  kernel: [linear, rbf]\n  C: [0.1, 1]\n"
    )
    cells = expand(Schema, resolved)
    assert len(cells) == 8
    assert cells[0].id == "seed=1,C=0.1,kernel=linear"
    assert cells[-1].id == "seed=2,C=1,kernel=rbf"
    assert {(c.config.seed, c.config.svm.C, c.config.svm.kernel) for c in cells} == {
        (s, C, k) for s in (1, 2) for C in (0.1, 1.0) for k in ("linear", "rbf")
    }
    assert len({c.id for c in cells}) == 8


def test_no_sweep_gives_one_cell():
    cells = expand(Schema, resolve(Schema, {}, {}))
    assert len(cells) == 1 and cells[0].id == "single"


def test_set_overrides_parse_strictly_and_take_precedence(tmp_path):
    raw = read_config_file(write(tmp_path, "svm:\n  C: 5\n"))
    raw.override("svm.C=1e-3")
    raw.override("svm.shuffle=true")
    resolved = resolve(Schema, raw.values, raw.locations)
    assert resolved["svm"]["C"] == 0.001 and resolved["svm"]["shuffle"] is True


def test_set_comma_list_is_a_sweep():
    raw = RawConfig()
    raw.override("svm.C=0.1,1,10")
    cells = expand(Schema, resolve(Schema, raw.values, raw.locations))
    assert [c.config.svm.C for c in cells] == [0.1, 1.0, 10.0]


def test_set_error_points_at_the_override():
    raw = RawConfig()
    raw.override("svm.C=-2")
    with pytest.raises(ConfigError) as info:
        resolve(Schema, raw.values, raw.locations)
    assert str(info.value) == "--set svm.C=-2: svm.C: must be > 0 (got -2)"


@pytest.mark.parametrize("item", ["svm.C", "=3", "svm..C=1"])
def test_malformed_set_item(item):
    with pytest.raises(ConfigError, match="expected dotted.key=value"):
        RawConfig().override(item)


def test_set_refuses_yes_too():
    with pytest.raises(ConfigError, match="use true/false"):
        RawConfig().override("svm.shuffle=yes")


def test_set_unknown_key_suggests(tmp_path):
    raw = RawConfig()
    raw.override("svm.kernal=rbf")
    with pytest.raises(
        ConfigError, match=r"--set svm.kernal=rbf: svm.kernal: unknown key; did you mean 'kernel'"
    ):
        resolve(Schema, raw.values, raw.locations)


def test_nan_literal_is_rejected_from_set():
    raw = RawConfig()
    raw.override("svm.C=.nan")
    assert math.isnan(raw.values["svm"]["C"])
    with pytest.raises(ConfigError, match="must be finite"):
        resolve(Schema, raw.values, raw.locations)
