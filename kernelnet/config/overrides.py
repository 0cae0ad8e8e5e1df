"""``--set dotted.key=value`` overrides, applied on top of a config file's raw mapping.

Values are parsed by the same strict YAML rules as files (``1e-3`` is a float, ``yes`` is
refused). A bare comma list (``--set svm.C=0.1,1,10``) is a sweep, as is a YAML flow list.
An item is one line of text: a control character, tab or line break in it is refused
before parsing, naming the key (never echoed: it would break the error line).
"""

from __future__ import annotations

from typing import Any

from kernelnet.config.yaml_loader import (
    Location,
    config_error,
    describe_character,
    first_unprintable,
    load_yaml,
)
from kernelnet.errors import ConfigError


def _refuse_unprintable(item: str, source: str) -> None:
    """``--set svm.C=...: value holds a control character (U+0007)``, or the same for the
    key; nothing when the key and the value (spaces around them aside, as everywhere in an
    item) are plain one-line text."""
    key, _, text = item.partition("=")
    for holder, part in (("key", key.strip()), ("value", text.strip())):
        bad = first_unprintable(part, one_line=True)
        if bad is None:
            continue
        shown = key.strip() if holder == "value" else "..."
        if len(shown) > 60:
            shown = f"{shown[:40]}… ({len(shown):,} characters)"
        raise config_error(
            Location(f"{source} {shown}=..."),
            "",
            f"{holder} holds {describe_character(part[bad])}; type it without that character",
        )


def parse_override(item: str, source: str = "--set") -> tuple[str, Any, Location]:
    """``"svm.C=0.1,1"`` -> ``("svm.C", [0.1, 1], Location("--set svm.C=0.1,1"))``."""
    _refuse_unprintable(item, source)
    shown = item if len(item) <= 80 else f"{item[:60]}… ({len(item):,} characters)"
    where = Location(f"{source} {shown}")
    key, sep, text = item.partition("=")
    key = key.strip()
    if not sep or not key or any(not part for part in key.split(".")):
        raise config_error(where, "", "expected dotted.key=value")
    text = text.strip()
    if "," in text and text[:1] not in "[{\"'":
        text = f"[{text}]"
    value, _ = _parse_value(text, key, where) if text else (None, {})
    return key, value, where


def _parse_value(text: str, key: str, where: Location) -> tuple[Any, dict[str, Location]]:
    """The YAML value of an item. Text the parser cannot read at all (an unclosed ``[`` or
    ``{``, a stray ``:``) is one line naming the item and the forms that work, instead of
    the parser's own report (``expected <block end>, but found ':'``), which names its
    grammar, not the fix; any other refusal (a boolean spelled ``yes``, a bound) keeps its
    own message, which already says what to do."""
    try:
        return load_yaml(text, str(where))
    except ConfigError as exc:
        if _SYNTAX not in str(exc):
            raise
    raise config_error(
        where,
        "",
        "the value is not valid YAML; write key=value or key=v1,v2 (a sweep), or quote it "
        f"to pass it as text: --set '{key}=\"...\"'",
    ) from None


# load_yaml's prefix for what PyYAML's scanner and parser reject (kernelnet.config.yaml_loader)
_SYNTAX = ": invalid YAML: "


def _descendants(path: str, value: Any) -> list[str]:
    if isinstance(value, list):
        return [path] + [p for i, v in enumerate(value) for p in _descendants(f"{path}[{i}]", v)]
    if isinstance(value, dict):
        return [path] + [p for k, v in value.items() for p in _descendants(f"{path}.{k}", v)]
    return [path]


def apply_override(
    raw: dict[str, Any], locations: dict[str, Location], key: str, value: Any, where: Location
) -> None:
    """Set ``raw[key]`` (dotted) to ``value`` and point every affected path at ``where``."""
    *parents, leaf = key.split(".")
    node, path = raw, ""
    for part in parents:
        path = f"{path}.{part}" if path else part
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise config_error(where, path, "is a single value, not a section")
        node = child
    node[leaf] = value
    for stale in [p for p in locations if p == key or p.startswith((key + ".", key + "["))]:
        del locations[stale]
    for path in _descendants(key, value):
        locations[path] = where
