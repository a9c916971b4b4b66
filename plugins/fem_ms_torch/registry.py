"""One registry of models by name: the plugin's own, neuraloperator's, and the GP operators.

A model is built by name with keyword arguments (:func:`build_model`), and the (name,
arguments) pair — its *record* — is what a checkpoint stores beside the weights, so that
:func:`model_from_record` (and :func:`fem_ms_torch.checkpoints.load_model`) rebuilds it with no
other knowledge. This is neuraloperator's ``BaseModel`` registry with one addition: the record
is plain data (numbers, strings, lists, dicts), so checkpoints load with
``torch.load(weights_only=True)``.

* The plugin's own networks derive from :class:`RegisteredModel` and register by class
  keyword (``class FFNO(RegisteredModel, name="ffno")``); an instance built directly
  (``FFNO(3, 1, width=8)``) keeps its constructor arguments too.
* ``"neuralop:<Name>"`` is any model of ``neuralop.models`` (FNO, TFNO, SFNO, LocalNO, UNO, ...),
  built with its own arguments; :func:`build_operator` maps the plugin's grid-operator sizes
  (width, depth, modes) onto theirs (hidden_channels, n_layers, n_modes).
* Builders that are functions register with :func:`register_model` (the GP operators, which
  are built from their training problem).

An unknown name raises ``ValueError`` listing the available ones.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable, Mapping

import torch
from torch import nn

__all__ = ["RegisteredModel", "register_model", "build_model", "build_operator", "operator_sizes", "with_record",
           "model_record", "model_from_record", "plain_state_dict", "available_models", "check_model_name",
           "RECORD_VERSION"]

RECORD_VERSION = 1  # of the (name, arguments) record; bumped when a record's meaning changes
NEURALOP_PREFIX = "neuralop:"

_BUILDERS: dict[str, Callable[..., nn.Module]] = {}
# modules whose import registers the plugin's models, imported only when a name is looked up
# (the GP operators pull in gpytorch, the graph network torch_geometric)
_MODEL_MODULES = ("fem_ms_torch.operators", "fem_ms_torch.graph", "fem_ms_torch.gpo", "fem_ms_torch.rom")


def register_model(name: str, builder: Callable[..., nn.Module]) -> None:
    """Register ``builder`` (a class or a function returning a module) under ``name``."""
    if not isinstance(name, str) or not name or name.startswith(NEURALOP_PREFIX):
        raise ValueError(f"register_model: invalid model name {name!r}")
    if name in _BUILDERS and _BUILDERS[name] is not builder:
        raise ValueError(f"register_model: {name!r} is already registered to {_BUILDERS[name]!r}")
    _BUILDERS[name] = builder


class RegisteredModel(nn.Module):
    """Base of the plugin's own networks: registered by the ``name`` class keyword, and every
    instance keeps the arguments it was constructed with (defaults filled in) as its record."""

    def __init_subclass__(cls, name: str | None = None, **kwargs):
        super().__init_subclass__(**kwargs)
        if name is not None:
            register_model(name, cls)
            cls._registered_name = name

    def __new__(cls, *args, **kwargs):
        instance = super().__new__(cls)
        try:
            bound = inspect.signature(cls).bind(*args, **kwargs)
        except TypeError:  # wrong arguments: __init__ raises the error
            return instance
        bound.apply_defaults()
        arguments = dict(bound.arguments)
        for parameter in inspect.signature(cls).parameters.values():
            if parameter.kind is inspect.Parameter.VAR_KEYWORD:
                arguments.update(arguments.pop(parameter.name))
        name = cls.__dict__.get("_registered_name")
        if name is not None:
            object.__setattr__(instance, "_model_record", {"name": name, "arguments": arguments})
        return instance


def _neuralop_models() -> dict[str, type]:
    """neuraloperator's models by class name (lowercase keys); empty without neuraloperator."""
    try:
        from neuralop.models.base_model import BaseModel

        importlib.import_module("neuralop.models")
    except ImportError:
        return {}
    return {cls.__name__.lower(): cls for cls in BaseModel._models.values()}


def available_models(operator: bool = False) -> list[str]:
    """Every registered name, and ``neuralop:<Name>`` for neuraloperator's models; with
    ``operator``, only the grid operators :func:`build_operator` can size."""
    for module in _MODEL_MODULES:
        importlib.import_module(module)
    names = sorted(_BUILDERS) + sorted(NEURALOP_PREFIX + cls.__name__ for cls in _neuralop_models().values())
    return [name for name in names if _is_operator(name)] if operator else names


def _builder(name: str) -> Callable[..., nn.Module]:
    if not isinstance(name, str):
        raise TypeError(f"a model name must be a string, got {name!r}")
    if name.startswith(NEURALOP_PREFIX):
        models = _neuralop_models()
        cls = models.get(name[len(NEURALOP_PREFIX):].lower())
        if cls is None:
            known = sorted(NEURALOP_PREFIX + c.__name__ for c in models.values())
            if not known:
                raise ValueError(f"unknown model {name!r}: neuraloperator (neuralop) is not installed")
            raise ValueError(f"unknown model {name!r}; neuraloperator's models: {known}")
        return cls
    for module in _MODEL_MODULES:
        if name in _BUILDERS:
            break
        importlib.import_module(module)
    if name not in _BUILDERS:
        raise ValueError(f"unknown model {name!r}; available: {available_models()}")
    return _BUILDERS[name]


def _check_plain(value, where: str) -> None:
    """Refuse what ``torch.load(weights_only=True)`` would not read back as plain data."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return
    if isinstance(value, (list, tuple)):
        for item in value:
            _check_plain(item, where)
        return
    if isinstance(value, Mapping):
        for key, item in value.items():
            if not isinstance(key, str):
                raise ValueError(f"{where}: argument keys must be strings, got {key!r}")
            _check_plain(item, f"{where}[{key!r}]")
        return
    raise ValueError(f"{where}: {value!r} ({type(value).__name__}) is not plain data (numbers, strings, lists, "
                     f"dicts), so a checkpoint could not store it")


def build_model(name: str, **arguments) -> nn.Module:
    """The model ``name`` built with ``arguments``, carrying its record.

    Parameters
    ----------
    name : str
        A name of :func:`available_models`.
    **arguments
        Constructor (or builder) arguments: plain data only, since they go into checkpoints.
    """
    builder = _builder(name)
    _check_plain(arguments, f"model {name!r}")
    model = builder(**arguments)
    if not isinstance(model, nn.Module):
        raise TypeError(f"the builder of model {name!r} returned {type(model).__name__}, not a torch module")
    recorded = getattr(model, "_model_record", None)
    if recorded is None or recorded["name"] != name:
        object.__setattr__(model, "_model_record", {"name": name, "arguments": dict(arguments)})
    return model


def with_record(model: nn.Module, name: str, **arguments) -> nn.Module:
    """``model``, recorded as ``build_model(name, **arguments)``: for a model that its trainer
    built from objects already at hand (a GP operator from its loaded training problem), whose
    registered builder makes the same model from the plain ``arguments``."""
    _builder(name)
    _check_plain(arguments, f"model {name!r}")
    object.__setattr__(model, "_model_record", {"name": name, "arguments": dict(arguments)})
    return model


def _arguments_of(name: str) -> set[str] | None:
    """The keyword arguments the builder of ``name`` takes (None: any, through ``**kwargs`` —
    neuraloperator's TFNO is FNO's signature behind ``*args, **kwargs``)."""
    parameters = inspect.signature(_builder(name)).parameters.values()
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters):
        return None
    return {p.name for p in parameters}


def _is_operator(name: str) -> bool:
    """Whether ``name`` is a grid operator: channels in and out and Fourier modes per axis
    (neuraloperator's point-cloud models, FNOGNO and GINO, name theirs otherwise), or any
    keywords and nothing else required (TFNO; not UQNO, which wraps a model); of the plugin's own
    models also those that need nothing but channels in and out and take the grid's ``dim``
    (GNOT, Transolver++, DeepONet: no Fourier modes)."""
    parameters = inspect.signature(_builder(name)).parameters.values()
    accepted = _arguments_of(name)
    required = {p.name for p in parameters
                if p.default is inspect.Parameter.empty and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
    if accepted is None:
        return not required
    if not {"in_channels", "out_channels"} <= accepted:
        return False
    if {"modes", "n_modes"} & accepted:
        return True
    return not name.startswith(NEURALOP_PREFIX) and "dim" in accepted and required <= {"in_channels", "out_channels"}


def check_model_name(name: str, operator: bool = False) -> None:
    """``ValueError`` listing the available names unless ``name`` is registered (and, with
    ``operator``, a grid operator that :func:`build_operator` can size)."""
    _builder(name)
    if operator and not _is_operator(name):
        raise ValueError(f"model {name!r} is not a grid operator (no in_channels/out_channels arguments); grid "
                         f"operators: {available_models(operator=True)}")


def operator_sizes(name: str) -> set[str]:
    """Which of the plugin's sizes ``width``, ``depth``, ``modes`` the grid operator ``name``
    takes (:func:`build_operator` refuses the others): GNOT, Transolver++ and DeepONet have no
    Fourier modes."""
    check_model_name(name, operator=True)
    accepted = _arguments_of(name)
    if accepted is None:
        return {"width", "depth", "modes"}
    aliases = {"width": ("width", "hidden_channels"), "depth": ("depth", "n_layers"), "modes": ("modes", "n_modes")}
    return {size for size, names in aliases.items() if set(names) & accepted}


def build_operator(name: str, in_channels: int, out_channels: int, dim: int, *, width: int | None = None,
                   depth: int | None = None, modes: int | None = None, **options) -> nn.Module:
    """A grid operator ``(batch, in_channels, *grid)`` → ``(batch, out_channels, *grid)`` of ``dim``
    axes, sized by the plugin's ``width``/``depth``/``modes`` (None: the model's default).

    The sizes go to the model's own arguments: ``width`` → ``width`` or ``hidden_channels``,
    ``depth`` → ``depth`` or ``n_layers``, ``modes`` → ``modes`` or ``n_modes`` (one per axis);
    ``options`` are passed as they are (e.g. ``disco_radius``, or neuraloperator's
    ``default_in_shape`` for its LocalNO).
    """
    check_model_name(name, operator=True)
    accepted = _arguments_of(name)
    neuralop = name.startswith(NEURALOP_PREFIX)
    sizes = {"in_channels": in_channels, "out_channels": out_channels}
    if not neuralop and (accepted is None or "dim" in accepted):
        sizes["dim"] = dim
    aliases = {"width": (width, ("width", "hidden_channels")), "depth": (depth, ("depth", "n_layers")),
               "modes": (modes, ("modes", "n_modes"))}
    for value, names in aliases.values():
        if value is None:
            continue
        if accepted is None:  # any keyword: the naming of the model's family
            target = names[1] if neuralop else names[0]
        else:
            target = next((n for n in names if n in accepted), None)
        if target is None:
            raise ValueError(f"model {name!r} takes no {' or '.join(names)} argument; give its own sizes "
                             f"among {sorted(accepted)}")
        sizes[target] = (value,) * dim if target == "n_modes" and isinstance(value, int) else value
    clash = sorted(set(sizes) & set(options))
    if clash:
        raise ValueError(f"model {name!r}: {clash} given twice (as sizes and as options)")
    return build_model(name, **sizes, **options)


def model_record(model: nn.Module) -> dict | None:
    """``{"name", "arguments", "version"}`` of a registered model (None for any other module)."""
    if isinstance(model, nn.parallel.DistributedDataParallel):
        model = model.module
    record = getattr(model, "_model_record", None)
    if record is None:
        return None
    return {"name": record["name"], "arguments": dict(record["arguments"]), "version": RECORD_VERSION}


def plain_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """The weights of ``model`` on the CPU, as ``nn.Module.state_dict`` gives them (neuraloperator's
    models add their constructor arguments, which a weights-only checkpoint cannot hold; a
    neuraloperator model inside another model adds them through its own ``state_dict``, so only
    tensors are kept)."""
    if isinstance(model, nn.parallel.DistributedDataParallel):
        model = model.module
    return {key: value.detach().cpu() for key, value in nn.Module.state_dict(model).items()
            if isinstance(value, torch.Tensor)}


def model_from_record(record: Mapping, state_dict: Mapping[str, torch.Tensor] | None = None) -> nn.Module:
    """The model a :func:`model_record` describes, with ``state_dict`` loaded (strictly) when given."""
    if not isinstance(record, Mapping) or not {"name", "arguments"} <= set(record):
        raise ValueError(f"a model record needs 'name' and 'arguments', got {record!r}")
    version = record.get("version", RECORD_VERSION)
    if version != RECORD_VERSION:
        raise ValueError(f"model record version {version!r} of {record['name']!r}; this version of fem_ms_torch "
                         f"reads version {RECORD_VERSION}: retrain the model")
    model = build_model(record["name"], **record["arguments"])
    if state_dict is not None:
        # nn.Module's own: neuraloperator's state_dict/load_state_dict add their init arguments
        nn.Module.load_state_dict(model, dict(state_dict))
    return model
