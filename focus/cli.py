"""Command-line helpers shared by the project's tools (``focus-gen``, ``focus-sim``, the benchmarks).

Every tool that takes a configuration offers the same two options, ``--config FILE.json`` and
``--set FIELD=VALUE``, and reports a bad file or value through ``parser.error`` (usage, the message
naming field, value and what is allowed, exit status 2). This module sits at the bottom layer with
focus.config: it imports nothing else of the project.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Iterable

from .config import ConfigError, FocusConfig

__all__ = ["add_config_arguments", "load_config", "config_from_args"]


def add_config_arguments(parser: argparse.ArgumentParser, *,
                         default: str = "the embedded default (focus.FocusConfig())",
                         set_help: str = "override one configuration field, e.g. --set rows=16 "
                                         "--set threshold=19/20 (repeatable, applied in order after --config)") -> None:
    """Add ``--config`` and ``--set`` to ``parser`` (read them back with :func:`config_from_args`).
    ``default`` says what the configuration is without ``--config``; ``set_help`` replaces the
    help of ``--set`` for a tool that uses it differently."""
    parser.add_argument("--config", metavar="FILE.json",
                        help=f"configuration JSON (as written by focus-gen --print-config); default: {default}")
    parser.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE", help=set_help)


def load_config(path: str | Path | None, overrides: Iterable[str] = (), *,
                base: FocusConfig | None = None) -> FocusConfig:
    """The configuration in the JSON file ``path`` (without one: ``base``, else the default), with
    the ``FIELD=VALUE`` ``overrides`` applied in order. Raises :class:`ConfigError` on a bad,
    missing or unreadable file or a bad value."""
    if path is not None:
        try:
            text = Path(path).read_text()
        except UnicodeDecodeError as err:
            raise ConfigError("--config", str(path), f"a UTF-8 JSON file ({err})") from None
        except OSError as err:
            raise ConfigError("--config", str(path), f"a readable JSON file ({err.strerror or err})") from None
        cfg = FocusConfig.from_json(text)
    else:
        cfg = base if base is not None else FocusConfig()
    overrides = list(overrides)
    return cfg.with_overrides(overrides) if overrides else cfg


def config_from_args(parser: argparse.ArgumentParser, args: argparse.Namespace, *,
                     base: FocusConfig | None = None, overrides: Iterable[str] = ()) -> FocusConfig:
    """The configuration ``args.config`` and ``args.set`` describe: the file (else ``base``, else
    the default), then ``overrides`` (a tool's own shortcuts), then each ``--set``. A bad file or
    value ends the program through ``parser.error``."""
    try:
        return load_config(args.config, [*overrides, *args.set], base=base)
    except (ConfigError, OSError) as err:
        parser.error(str(err))
