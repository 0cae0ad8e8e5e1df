"""Config loading: strict YAML files, ``--set`` overrides, typed schemas, grid expansion.

Precedence, lowest first: schema defaults, config file, ``--set`` items, explicit flags.
Split over four modules so each does one thing: ``yaml_loader`` (parsing with positions),
``schema`` (types and bounds), ``overrides`` (``--set``), ``sweep`` (cells).
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from kernelnet.config.overrides import apply_override, parse_override
from kernelnet.config.schema import param, resolve
from kernelnet.config.sweep import Cell, expand, format_value
from kernelnet.config.yaml_loader import MAX_TEXT, Location, config_error, load_yaml
from kernelnet.safe_read import read_bytes

__all__ = [
    "Cell",
    "Location",
    "RawConfig",
    "config_error",
    "config_sha256",
    "dump_config",
    "expand",
    "format_value",
    "param",
    "read_config_file",
    "resolve",
]


@dataclass
class RawConfig:
    """An unvalidated config mapping and where each of its values came from."""

    values: dict[str, Any] = field(default_factory=dict)
    locations: dict[str, Location] = field(default_factory=dict)

    def override(self, item: str, source: str = "--set") -> None:
        """Apply one ``dotted.key=value`` item."""
        key, value, where = parse_override(item, source)
        apply_override(self.values, self.locations, key, value, where)

    def set(self, key: str, value: Any, source: str) -> None:
        """Apply an already-parsed value (from an explicit flag such as ``--seed``)."""
        apply_override(self.values, self.locations, key, value, Location(source))


def read_config_file(path: Path) -> RawConfig:
    """Read and strictly parse a config file; it must hold a mapping."""
    try:
        info = os.stat(path)
    except FileNotFoundError:
        raise config_error(None, "", f"config file not found: {path}") from None
    except OSError as exc:
        raise config_error(None, "", f"cannot read config file {path}: {exc.strerror}") from None
    if not stat.S_ISREG(info.st_mode):  # a FIFO would block, a directory cannot be read
        kind = "a directory" if stat.S_ISDIR(info.st_mode) else "not a regular file"
        raise config_error(None, "", f"config file {path} is {kind}")
    if info.st_size > MAX_TEXT:
        raise config_error(None, "", f"config file {path} is larger than {MAX_TEXT:,} bytes")
    try:
        text = read_bytes(path, MAX_TEXT).decode("utf-8")  # bounded even if it grew since stat
    except UnicodeDecodeError:
        raise config_error(None, "", f"config file {path} is not UTF-8 text") from None
    except OSError as exc:
        why = exc.strerror or exc
        raise config_error(None, "", f"cannot read config file {path}: {why}") from None
    if "\x00" in text:
        raise config_error(None, "", f"config file {path} is binary, not YAML text")
    values, locations = load_yaml(text, str(path))
    if not isinstance(values, dict):
        got = "an empty file" if values is None else f"a {type(values).__name__}"
        raise config_error(Location(str(path), 1, 1), "", f"config must be a mapping (got {got})")
    return RawConfig(values, locations)


def dump_config(resolved: dict[str, Any]) -> str:
    """YAML text of a resolved config, in schema order, loadable by the strict loader."""
    return yaml.safe_dump(resolved, sort_keys=False, default_flow_style=None)


def config_sha256(resolved: dict[str, Any]) -> str:
    """A hash of the resolved config, independent of key order and formatting."""
    canonical = json.dumps(resolved, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()
