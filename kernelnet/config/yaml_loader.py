"""Strict YAML: a SafeLoader subclass plus a node walker that keeps source positions.

PyYAML's defaults are not safe enough for configs people edit by hand: ``1e-3`` loads
as a string, ``yes``/``no``/``on``/``off`` silently become booleans, duplicate keys
overwrite each other, and ``!!python/...`` tags can run code with the unsafe loaders.
Here the implicit resolvers follow YAML 1.2's core schema (``1e-3`` is a float, only
true/false are booleans), the plain words yes/no/on/off are refused, duplicate keys are
refused with both lines, and only the five plain tags are accepted.

``load_yaml`` returns the Python value and a map from dotted path (``svm.C``,
``svm.epochs[2]``) to the :class:`Location` of that value, so that later validation can
point at ``file:line:col``.
"""

from __future__ import annotations

import math
import re
import unicodedata
from typing import Any, NamedTuple

import yaml

from kernelnet.errors import ConfigError


class Location(NamedTuple):
    """Where a config value came from: a file position or a command-line item."""

    source: str
    line: int | None = None
    column: int | None = None

    def __str__(self) -> str:
        if self.line is None:
            return self.source
        return f"{self.source}:{self.line}:{self.column}"


# What PyYAML's reader accepts in a stream (its NON_PRINTABLE, inverted): anything else
# makes it raise ReaderError before parsing, with no position a user can act on.
_NOT_YAML_TEXT = re.compile(
    "[^\x09\x0a\x0d\x20-\x7e\x85\xa0-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]"
)
# Also refused in one command-line value and in a string value: line breaks and tabs
# (a value is one line; a newline in one would split the error line that shows it).
_NOT_ONE_LINE = re.compile("[^\x20-\x7e\xa0-\u2027\u202a-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def describe_character(character: str) -> str:
    """``a control character (U+0007)``: what a refused character is, by its code point."""
    code = ord(character)
    if 0xDC80 <= code <= 0xDCFF:  # how Python carries a byte of argv that is not UTF-8
        return f"a byte that is not UTF-8 text (0x{code - 0xDC00:02X})"
    if unicodedata.category(character) == "Cc":
        return f"a control character (U+{code:04X})"
    return f"a character a config cannot hold (U+{code:04X})"


def first_unprintable(text: str, one_line: bool = False) -> int | None:
    """The index of the first character a config cannot hold (``one_line``: nor a value
    given as one line: no tab or line break either), or None."""
    found = (_NOT_ONE_LINE if one_line else _NOT_YAML_TEXT).search(text)
    return found.start() if found else None


def config_error(location: Location | None, path: str, message: str) -> ConfigError:
    """Build the one-line error ``source:line:col: dotted.key: message`` (the command line
    shows a line break in it, from a key such as ``"a\\nb"``, as its escape)."""
    parts = [str(location)] if location is not None else []
    if path:
        parts.append(path)
    parts.append(message)
    return ConfigError(": ".join(parts))


_TAG = "tag:yaml.org,2002:"
_BOOL, _INT, _FLOAT, _NULL, _STR = (_TAG + t for t in ("bool", "int", "float", "null", "str"))
_AMBIGUOUS_BOOLEANS = {"yes", "no", "on", "off"}


MAX_TEXT = 1_000_000  # characters in one config or --set item
MAX_DEPTH = 32  # sections nested deeper than this are refused
MAX_SCALAR = 10_000  # characters in one value
MAX_DIGITS = 40  # digits in one number (a 400-digit number is not a setting)


class StrictLoader(yaml.SafeLoader):
    """SafeLoader with YAML 1.2 core-schema resolvers (no yes/no/on/off booleans) that
    refuses aliases (``*name``: configs never need them, and they make 400-byte files that
    expand to gigabytes or refer to themselves) and nesting deeper than MAX_DEPTH, while
    composing, before anything is expanded."""

    yaml_implicit_resolvers: dict = {}

    def compose_node(self, parent, index):
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent):
            raise yaml.composer.ComposerError(
                None,
                None,
                f"aliases (*{event.anchor}) are not allowed in a config; write the value out",
                event.start_mark,
            )
        depth = getattr(self, "_depth", 0)
        if depth >= MAX_DEPTH:
            raise yaml.composer.ComposerError(
                None, None, f"nested deeper than {MAX_DEPTH} levels", event.start_mark
            )
        self._depth = depth + 1
        try:
            return super().compose_node(parent, index)
        finally:
            self._depth = depth


for _tag, _pattern, _first in [
    (_BOOL, r"^(?:true|True|TRUE|false|False|FALSE)$", "tTfF"),
    (_INT, r"^[-+]?[0-9]+$", "-+0123456789"),
    (_FLOAT, r"^[-+]?(?:[0-9]+\.[0-9]*|\.[0-9]+|[0-9]+)(?:[eE][-+]?[0-9]+)?$", "-+0123456789."),
    (_FLOAT, r"^(?:[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$", "-+."),
    (_NULL, r"^(?:~|null|Null|NULL|)$", ["~", "n", "N", ""]),
]:
    StrictLoader.add_implicit_resolver(_tag, re.compile(_pattern), list(_first))


def _show_tag(tag: str) -> str:
    return "!!" + tag.removeprefix(_TAG) if tag.startswith(_TAG) else tag


def _tag_not_allowed(where: Location, path: str, tag: str) -> ConfigError:
    return config_error(where, path, f"tag {_show_tag(tag)!r} is not allowed in a config")


def _location(node: yaml.Node, source: str) -> Location:
    mark = node.start_mark
    return Location(source, mark.line + 1, mark.column + 1)


def _scalar(node: yaml.ScalarNode, path: str, source: str) -> Any:
    value, tag = node.value, node.tag
    where = _location(node, source)
    if len(value) > MAX_SCALAR:
        raise config_error(where, path, f"value longer than {MAX_SCALAR} characters")
    if tag in (_INT, _FLOAT) and sum(c.isdigit() for c in value) > MAX_DIGITS:
        raise config_error(where, path, f"number with more than {MAX_DIGITS} digits")
    if tag == _STR:
        if node.style is None and value.lower() in _AMBIGUOUS_BOOLEANS:
            raise config_error(where, path, f"{value!r} is ambiguous: use true/false or quote it")
        return value
    try:
        if tag == _BOOL:
            return value.lower() == "true"
        if tag == _INT:
            return int(value)
        if tag == _FLOAT:
            lowered = value.lower()
            if lowered.endswith(".inf"):
                return -math.inf if lowered.startswith("-") else math.inf
            if lowered == ".nan":
                return math.nan
            return float(value)
        if tag == _NULL:
            return None
    except ValueError:
        raise config_error(
            where, path, f"{value!r} is not a valid {tag.removeprefix(_TAG)}"
        ) from None
    raise _tag_not_allowed(where, path, tag)


def _walk(node: yaml.Node, path: str, source: str, locations: dict[str, Location]) -> Any:
    locations[path] = _location(node, source)
    if isinstance(node, yaml.ScalarNode):
        return _scalar(node, path, source)
    is_sequence = isinstance(node, yaml.SequenceNode)
    if node.tag != _TAG + ("seq" if is_sequence else "map"):
        raise _tag_not_allowed(locations[path], path, node.tag)
    if is_sequence:
        return [_walk(item, f"{path}[{i}]", source, locations) for i, item in enumerate(node.value)]
    result: dict[str, Any] = {}
    first_line: dict[str, int] = {}
    for key_node, value_node in node.value:
        key_where = _location(key_node, source)
        if not isinstance(key_node, yaml.ScalarNode) or key_node.tag not in (_STR, _INT):
            raise config_error(key_where, path, "keys must be plain names")
        if key_node.value == "<<":
            raise config_error(key_where, path, "merge keys ('<<') are not supported")
        key = key_node.value
        child = f"{path}.{key}" if path else key
        if key in result:
            raise config_error(
                key_where, child, f"duplicate key (lines {first_line[key]} and {key_where.line})"
            )
        first_line[key] = key_where.line
        result[key] = _walk(value_node, child, source, locations)
        locations[child] = key_where  # errors about a key's value point at the key
    return result


def load_yaml(text: str, source: str) -> tuple[Any, dict[str, Location]]:
    """Parse one YAML document strictly.

    Returns ``(value, locations)`` where ``locations`` maps dotted paths to positions.
    Raises :class:`ConfigError` with ``source:line:col`` for any problem.
    """
    if len(text) > MAX_TEXT:
        raise config_error(Location(source), "", f"longer than {MAX_TEXT:,} characters")
    bad = first_unprintable(text)
    if bad is not None:
        line = text.count("\n", 0, bad) + 1
        column = bad - (text.rfind("\n", 0, bad) + 1) + 1
        raise config_error(
            Location(source, line, column),
            "",
            f"holds {describe_character(text[bad])}; a config is plain text: remove it",
        )
    loader = None
    try:
        loader = StrictLoader(text)
        node = loader.get_single_node()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = Location(source, mark.line + 1, mark.column + 1) if mark else Location(source)
        raise config_error(where, "", f"invalid YAML: {exc.problem or exc.context}") from None
    except yaml.YAMLError as exc:
        raise config_error(Location(source), "", f"invalid YAML: {exc}") from None
    finally:
        if loader is not None:
            loader.dispose()
    locations: dict[str, Location] = {}
    if node is None:
        return None, locations
    return _walk(node, "", source, locations), locations
