"""The plugin's ``fem-ms`` commands: ``train-basis``, ``train-mlmc`` and ``train-gpo``.

Each ``add_*`` function is an entry point of the ``fem_ms.cli_commands`` group (see
``plugins/pyproject.toml``): ``fem-ms`` calls it with its ``add_subparsers`` action. Only the
parsers are built here; the trainers, and torch with them, are imported when a command runs, so
``fem-ms --help`` stays quick.
"""

from __future__ import annotations

import inspect
import os
import tomllib
from pathlib import Path

__all__ = ["add_train_basis", "add_train_mlmc", "add_train_gpo"]


def _config_path(path) -> Path:
    path = Path(path)
    if not path.is_file():
        raise SystemExit(f"config file not found: {path}")
    return path


def _keyword_config(path, function, required=("dataset", "out")) -> dict:
    """The TOML file at ``path`` as keyword arguments of ``function``: required keys present,
    unknown keys named (a misspelt option must not be silently ignored)."""
    path = _config_path(path)
    settings = tomllib.loads(path.read_text())
    for key in required:
        if key not in settings:
            raise SystemExit(f"config {path}: missing key {key!r}")
    known = set(inspect.signature(function).parameters)
    unknown = sorted(set(settings) - known)
    if unknown:
        raise SystemExit(f"config {path}: unknown keys {unknown}; known: {sorted(known)}")
    return settings


def _train_basis(args) -> int:
    from .basis.train import train_basis

    out = train_basis(**_keyword_config(args.config, train_basis))
    if os.environ.get("RANK", "0") == "0":  # under torchrun, one line rather than one per rank
        print(f"wrote {out}")
    return 0


def _train_mlmc(args) -> int:
    from .mlmc.run import train_from_config

    summary = train_from_config(_config_path(args.config))
    print(f"trained on levels {summary['levels']} (samples {summary['counts']}, batches {summary['batch_sizes']}) "
          f"in {summary['train_time_s']:.1f} s; test {summary['loss']} on the finest level: "
          f"{summary['test_loss_finest']:.4g}")
    return 0


def _train_gpo(args) -> int:
    from .gpo import train_gpo

    out = train_gpo(**_keyword_config(args.config, train_gpo))
    print(f"wrote {out}")
    return 0


def _add_command(subparsers, name: str, run, help: str, config_help: str) -> None:
    parser = subparsers.add_parser(name, help=help)
    parser.add_argument("config", help=config_help)
    parser.set_defaults(run=run)


def add_train_basis(subparsers) -> None:
    """Add ``fem-ms train-basis CONFIG``."""
    _add_command(subparsers, "train-basis", _train_basis,
                 "train GMsFEM-NO models (one per neighbourhood kind) on a gmsfem_basis dataset; resumable",
                 "TOML with dataset, out and the keyword arguments of fem_ms_torch.basis.train.train_basis "
                 "(epochs, loss, width, ...)")


def add_train_mlmc(subparsers) -> None:
    """Add ``fem-ms train-mlmc CONFIG``."""
    _add_command(subparsers, "train-mlmc", _train_mlmc,
                 "multilevel Monte Carlo training of a neural operator or graph network over a "
                 "multilevel/cylinder_flow dataset; resumable",
                 "TOML with [data], [model], [mlmc], [train] (see fem_ms_torch.mlmc.run)")


def add_train_gpo(subparsers) -> None:
    """Add ``fem-ms train-gpo CONFIG``."""
    _add_command(subparsers, "train-gpo", _train_gpo,
                 "train a Gaussian-process operator (LoGoS-GPO, GPO or SVGP) on a burgers, darcy_notch or "
                 "multilevel dataset; resumable",
                 "TOML with dataset, out, model and the keyword arguments of fem_ms_torch.gpo.train_gpo "
                 "(epochs, lr, [options], ...); see docs/gpo.md")
