"""Where the shipped configs and datasets are: inside the installed package
(``kernelnet/configs``, ``kernelnet/data/shipped``, put there by the wheel build from the
repository's top-level ``configs/`` and ``data/``), or, in a checkout or an editable
install, those top-level folders themselves."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import kernelnet

_PACKAGES = {"configs": "kernelnet.configs", "data": "kernelnet.data.shipped"}


def shipped(name: str) -> Path:
    """The folder of the shipped ``configs`` or ``data``."""
    try:
        spec = importlib.util.find_spec(_PACKAGES[name])
    except ModuleNotFoundError:
        spec = None
    if spec is not None and spec.submodule_search_locations:
        for location in spec.submodule_search_locations:
            if Path(location).is_dir():
                return Path(location)
    return Path(kernelnet.__file__).resolve().parent.parent / name
