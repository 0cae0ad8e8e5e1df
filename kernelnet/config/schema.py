"""Typed config schemas: dataclasses whose fields carry range checks.

A schema is a (nested) dataclass; each leaf field is declared with :func:`param`,
which records its bounds, allowed choices and the short label used in grid cell ids.
:func:`resolve` checks a raw mapping against a schema and returns the validated nested
dict. A list given where the schema expects one value is a *sweep* over those values
(``epochs: [1, 3, 10]``); each element is checked like a single value. A one-key mapping
there is a random-search distribution (:mod:`kernelnet.config.distributions`), its bounds or
choices checked the same way.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import math
import types
import typing
from dataclasses import dataclass
from typing import Any

from kernelnet.config.distributions import bounds_of, distribution_problem, looks_like_distribution
from kernelnet.config.yaml_loader import (
    Location,
    config_error,
    describe_character,
    first_unprintable,
)

_NO_DEFAULT = dataclasses.MISSING
MAX_INT = 10**9  # the bound of an integer setting that declares none (epochs=1e300 is a typo)


@dataclass(frozen=True)
class Spec:
    """Constraints on one config value."""

    gt: float | None = None
    ge: float | None = None
    lt: float | None = None
    le: float | None = None
    choices: tuple[str, ...] | None = None
    label: str | None = None
    # How a value of this key is named in a cell id (a submission's path by its name):
    # None, the value's own text. Cells whose names collide are refused.
    id_text: Any = None
    help: str = ""
    sweepable: bool = True
    outcome: bool = True  # False: changes what is shown, never a number (left out of digests)


def param(default: Any = _NO_DEFAULT, *, default_factory: Any = _NO_DEFAULT, **spec: Any) -> Any:
    """Declare a config field with its constraints (see :class:`Spec`)."""
    if "choices" in spec:
        spec["choices"] = tuple(spec["choices"])
    return dataclasses.field(
        default=default, default_factory=default_factory, metadata={"spec": Spec(**spec)}
    )


def spec_of(field: dataclasses.Field) -> Spec:
    return field.metadata.get("spec", Spec())


def outcome_values(schema: type, values: dict[str, Any]) -> dict[str, Any]:
    """``values`` without the top-level settings that cannot change a number (``plots``):
    what digests and resume checks hash, so turning figures off keeps seeds and results."""
    shown_only = {f.name for f in dataclasses.fields(schema) if not spec_of(f).outcome}
    return {key: value for key, value in values.items() if key not in shown_only}


def _split_optional(annotation: Any) -> tuple[Any, bool]:
    """``float | None`` -> ``(float, True)``."""
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        return args[0], len(args) < len(typing.get_args(annotation))
    return annotation, False


def field_types(schema: type) -> dict[str, tuple[Any, bool]]:
    """Map field name -> (type, optional) with string annotations resolved."""
    hints = typing.get_type_hints(schema)
    return {f.name: _split_optional(hints[f.name]) for f in dataclasses.fields(schema)}


def is_list_type(annotation: Any) -> bool:
    return typing.get_origin(annotation) is list


def _show(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return repr(value)
    return str(value)


def _check_number(value: Any, kind: type, spec: Spec) -> tuple[Any, str | None]:
    """Return (converted value, error message or None)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        noun = "an integer" if kind is int else "a number"
        return value, f"must be {noun} (got {_show(value)})"
    if kind is int:
        if isinstance(value, float) and not value.is_integer():
            return value, f"must be an integer (got {_show(value)})"
        converted: Any = int(value)
        if spec.le is None and spec.lt is None and converted > MAX_INT:
            return value, f"must be <= {MAX_INT:,} (got {_show(value)})"
    else:
        try:
            converted = float(value)
        except OverflowError:
            return value, f"is too large to represent (got a {len(str(value))}-digit number)"
        if not math.isfinite(converted):
            return value, f"must be finite (got {_show(value)})"
    for bound, ok, symbol in [
        (spec.gt, lambda b: converted > b, ">"),
        (spec.ge, lambda b: converted >= b, ">="),
        (spec.lt, lambda b: converted < b, "<"),
        (spec.le, lambda b: converted <= b, "<="),
    ]:
        if bound is not None and not ok(bound):
            return value, f"must be {symbol} {_show(bound)} (got {_show(value)})"
    return converted, None


def _check_scalar(value: Any, kind: Any, optional: bool, spec: Spec) -> tuple[Any, str | None]:
    if value is None:
        return None, None if optional else "must be set (got null)"
    if kind in (int, float):
        return _check_number(value, kind, spec)
    if kind is bool:
        if not isinstance(value, bool):
            return value, f"must be true or false (got {_show(value)})"
        return value, None
    if kind is str:
        if not isinstance(value, str):
            return value, f"must be a string (got {_show(value)})"
        bad = first_unprintable(value, one_line=True)
        if bad is not None:  # from a YAML escape ("\a") or a Python mapping: never meant
            return value, f"value holds {describe_character(value[bad])}; remove it"
        if spec.choices is not None and value not in spec.choices:
            hint = difflib.get_close_matches(value, spec.choices, n=1)
            suggestion = f"; did you mean {hint[0]!r}?" if hint else ""
            return value, f"must be one of {', '.join(spec.choices)} (got {value!r}){suggestion}"
        return value, None
    raise TypeError(f"unsupported schema type {kind!r}")


def _check_value(
    value: Any, kind: Any, optional: bool, spec: Spec, path: str, locations: dict[str, Location]
) -> Any:
    """Validate one (non-sweep) value of a scalar or ``list[T]`` field."""
    where = locations.get(path)
    if is_list_type(kind):
        (item_kind,) = typing.get_args(kind)
        if value is None and optional:
            return None
        if not isinstance(value, list):
            raise config_error(where, path, f"must be a list (got {_show(value)})")
        return [
            _check_value(item, item_kind, False, spec, f"{path}[{i}]", locations)
            for i, item in enumerate(value)
        ]
    if isinstance(value, (list, dict)):
        raise config_error(where, path, f"must be a single value (got {type(value).__name__})")
    converted, problem = _check_scalar(value, kind, optional, spec)
    if problem:
        raise config_error(where, path, problem)
    return converted


def _refuse_repeats(values: list[Any], path: str, locations: dict[str, Location]) -> None:
    """Two equal values (after conversion: 1 and 1.0 in a float field) would be two cells
    with the same settings, the same id and the same files."""
    seen: dict[str, int] = {}
    for index, value in enumerate(values):
        key = json.dumps(value, sort_keys=True)
        if key in seen:
            raise config_error(
                locations.get(f"{path}[{index}]") or locations.get(path),
                path,
                f"the sweep lists the same value twice ({_show(value)} at positions "
                f"{seen[key] + 1} and {index + 1}); every cell of a grid must differ",
            )
        seen[key] = index


def _check_distribution(
    value: Any, kind: Any, optional: bool, spec: Spec, path: str, locations: dict[str, Location]
) -> dict[str, list[Any]]:
    """A random-search distribution (kernelnet.config.distributions): its form, then each
    bound or choice checked as a value of the field (so ``{log_uniform: [0, 10]}`` for a
    C that must be > 0 is refused like ``C: 0``)."""
    where = locations.get(path)
    if not spec.sweepable:
        raise config_error(where, path, "cannot be searched (give one value)")
    problem = distribution_problem(value, kind)
    if problem:
        raise config_error(where, path, problem)
    ((name, args),) = value.items()
    checked = [
        _check_value(v, kind, optional, spec, f"{path}.{name}[{i}]", locations)
        for i, v in enumerate(bounds_of(value))
    ]
    if name == "choice":
        _refuse_repeats(checked, f"{path}.{name}", locations)
    return {name: checked}


def is_sweep(value: Any, kind: Any) -> bool:
    """A list where one value is expected (or a list of lists for a list field)."""
    if not isinstance(value, list):
        return False
    if is_list_type(kind):
        return bool(value) and all(isinstance(v, list) for v in value)
    return True


def resolve(
    schema: type, raw: Any, locations: dict[str, Location], path: str = ""
) -> dict[str, Any]:
    """Check ``raw`` against ``schema``; fill defaults; return the validated nested dict."""
    where = locations.get(path)
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        what = "config" if not path else path
        raise config_error(where, path, f"{what} must be a mapping (got {_show(raw)})")
    fields = {f.name: f for f in dataclasses.fields(schema)}
    for key in raw:
        if key not in fields:
            child = f"{path}.{key}" if path else key
            hint = difflib.get_close_matches(str(key), list(fields), n=1)
            suggestion = (
                f"; did you mean {hint[0]!r}?" if hint else f"; valid keys: {', '.join(fields)}"
            )
            raise config_error(locations.get(child), child, f"unknown key{suggestion}")
    resolved: dict[str, Any] = {}
    for name, (kind, optional) in field_types(schema).items():
        field, child = fields[name], f"{path}.{name}" if path else name
        if dataclasses.is_dataclass(kind):
            resolved[name] = resolve(kind, raw.get(name), locations, child)
            continue
        if name in raw:
            value = raw[name]
        elif field.default is not _NO_DEFAULT:
            value = field.default
        elif field.default_factory is not _NO_DEFAULT:
            value = field.default_factory()
        else:
            raise config_error(where, child, "is required")
        spec = spec_of(field)
        if looks_like_distribution(value) and not dataclasses.is_dataclass(kind):
            resolved[name] = _check_distribution(value, kind, optional, spec, child, locations)
        elif is_sweep(value, kind):
            if not spec.sweepable:
                raise config_error(locations.get(child), child, "cannot be swept (give one value)")
            if not value:
                raise config_error(locations.get(child), child, "sweep list must not be empty")
            resolved[name] = [
                _check_value(v, kind, optional, spec, f"{child}[{i}]", locations)
                for i, v in enumerate(value)
            ]
            _refuse_repeats(resolved[name], child, locations)
        else:
            resolved[name] = _check_value(value, kind, optional, spec, child, locations)
    return resolved
