import pytest

from kernelnet.config.yaml_loader import load_yaml
from kernelnet.errors import ConfigError


def test_python_tags_fail_and_run_nothing(tmp_path):
    marker = tmp_path / "pwned"
    text = f'!!python/object/apply:os.system ["touch {marker}"]\n'
    with pytest.raises(ConfigError, match="python/object/apply:os.system.*not allowed"):
        load_yaml(text, "evil.yaml")
    assert not marker.exists()


def test_nested_python_tag_fails():
    with pytest.raises(ConfigError, match=r"evil.yaml:2:6: a.b: tag .* is not allowed"):
        load_yaml("a:\n  b: !!python/name:os.system\n", "evil.yaml")


@pytest.mark.parametrize(
    "text, expected",
    [
        ("1e-3", 0.001),
        ("1E3", 1000.0),
        ("-2.5e+2", -250.0),
        (".5", 0.5),
        ("3.", 3.0),
        ("1_0", "1_0"),
        ("0x10", "0x10"),
        ("7", 7),
        ("-7", -7),
        (".inf", float("inf")),
    ],
)
def test_numbers_follow_yaml_1_2(text, expected):
    value, _ = load_yaml(f"x: {text}\n", "f.yaml")
    assert value["x"] == expected
    assert type(value["x"]) is type(expected)


def test_scientific_notation_is_float_not_string():
    value, _ = load_yaml("lr: 1e-3\nbig: 1E3\n", "f.yaml")
    assert value == {"lr": 0.001, "big": 1000.0}
    assert isinstance(value["lr"], float) and isinstance(value["big"], float)


def test_duplicate_top_level_key_names_key_and_both_lines():
    with pytest.raises(ConfigError) as info:
        load_yaml("seed: 1\nother: 2\nseed: 3\n", "d.yaml")
    assert str(info.value) == "d.yaml:3:1: seed: duplicate key (lines 1 and 3)"


def test_duplicate_nested_key_names_dotted_key_and_both_lines():
    with pytest.raises(ConfigError) as info:
        load_yaml("svm:\n  C: 1\n  lr: 2\n  C: 5\n", "d.yaml")
    assert str(info.value) == "d.yaml:4:3: svm.C: duplicate key (lines 2 and 4)"


@pytest.mark.parametrize("word", ["yes", "no", "on", "off", "Yes", "NO", "On", "OFF"])
def test_yaml_1_1_booleans_are_refused(word):
    with pytest.raises(ConfigError, match="use true/false or quote it"):
        load_yaml(f"flag: {word}\n", "b.yaml")


def test_quoted_yes_is_a_string_and_true_false_are_booleans():
    value, _ = load_yaml('a: "yes"\nb: true\nc: false\nd: True\n', "b.yaml")
    assert value == {"a": "yes", "b": True, "c": False, "d": True}


def test_locations_point_at_values():
    _, where = load_yaml("svm:\n  C: -1\n  epochs: [1, 3]\n", "x.yaml")
    assert str(where["svm.C"]) == "x.yaml:2:3"
    assert str(where["svm.epochs[1]"]) == "x.yaml:3:15"


def test_syntax_error_has_position():
    with pytest.raises(ConfigError, match=r"^s.yaml:2:1: invalid YAML"):
        load_yaml("a: [1, 2\n", "s.yaml")


def test_empty_document_is_none():
    assert load_yaml("", "e.yaml")[0] is None
    assert load_yaml("# only a comment\n", "e.yaml")[0] is None
