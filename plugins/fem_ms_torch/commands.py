"""The plugin's ``fem-ms`` commands: ``train-basis``, ``train-mlmc`` and ``train-gpo``.

Each ``add_*`` function is an entry point of the ``fem_ms.cli_commands`` group (see
``plugins/pyproject.toml``): ``fem-ms`` calls it with its ``add_subparsers`` action. Only the
parsers are built here; the trainers, and torch with them, are imported when a command runs, so
``fem-ms --help`` stays quick.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["add_train_basis", "add_train_mlmc", "add_train_gpo"]


def _config_path(path) -> Path:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"config file not found: {path}")
    return path


def _source(args, device_key: str = "device"):
    """The config file, or with ``--device`` its mapping with the device replaced (the file's
    other keys and their checks unchanged)."""
    path = _config_path(args.config)
    if args.device is None:
        return path
    from fem_ms.typed_config import read_config_file, with_overrides

    return with_overrides(read_config_file(path), {device_key: args.device})


def _train_basis(args) -> int:
    from .basis.train import train_basis_from_config

    out = train_basis_from_config(_source(args))
    if os.environ.get("RANK", "0") == "0":  # under torchrun, one line rather than one per rank
        print(f"wrote {out}")
    return 0


def _train_mlmc(args) -> int:
    from .mlmc.run import train_mlmc_from_config

    summary = train_mlmc_from_config(_source(args, "train.device"))
    print(f"trained on levels {summary['levels']} (samples {summary['counts']}, batches {summary['batch_sizes']}) "
          f"in {summary['train_time_s']:.1f} s; test {summary['loss']} on the finest level: "
          f"{summary['test_loss_finest']:.4g}")
    return 0


def _train_gpo(args) -> int:
    from .gpo.train import train_gpo_from_config

    print(f"wrote {train_gpo_from_config(_source(args))}")
    return 0


def _add_command(subparsers, name: str, run, help: str, config_help: str) -> None:
    parser = subparsers.add_parser(name, help=help)
    parser.add_argument("config", help=config_help)
    parser.add_argument("--device", default=None, metavar="DEVICE",
                        help="'cpu', 'cuda' or 'cuda:N', replacing the config's device (a device that is not "
                             "present is an error before any work)")
    parser.set_defaults(run=run)


def add_train_basis(subparsers) -> None:
    """Add ``fem-ms train-basis CONFIG``."""
    _add_command(subparsers, "train-basis", _train_basis,
                 "train GMsFEM-NO models (one per neighbourhood kind) on a gmsfem_basis dataset; resumable",
                 "TOML with the keys of fem_ms_torch.basis.config.TrainBasisConfig (dataset, out, epochs, loss, "
                 "width, ...; docs/training.md)")


def add_train_mlmc(subparsers) -> None:
    """Add ``fem-ms train-mlmc CONFIG``."""
    _add_command(subparsers, "train-mlmc", _train_mlmc,
                 "multilevel Monte Carlo training of a neural operator or graph network over a "
                 "multilevel/cylinder_flow dataset; resumable",
                 "TOML with [data], [model], [mlmc], [train] (fem_ms_torch.mlmc.config.TrainMLMCConfig; "
                 "docs/training.md)")


def add_train_gpo(subparsers) -> None:
    """Add ``fem-ms train-gpo CONFIG``."""
    _add_command(subparsers, "train-gpo", _train_gpo,
                 "train a Gaussian-process operator (LoGoS-GPO, GPO or SVGP) on a burgers, darcy_notch or "
                 "multilevel dataset; resumable",
                 "TOML with the keys of fem_ms_torch.gpo.config.TrainGPOConfig (dataset, out, model, epochs, lr, "
                 "[options], ...; docs/gpo.md)")
