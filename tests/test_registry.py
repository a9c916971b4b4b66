"""The model registry: every model by name, its record (name + constructor arguments) rebuilding
it exactly, neuraloperator's models as ``neuralop:<Name>``, and clear errors for unknown names."""

import numpy as np
import pytest
import torch

from fem_ms_torch.registry import (
    RECORD_VERSION,
    available_models,
    build_model,
    build_operator,
    model_from_record,
    model_record,
    plain_state_dict,
)

GRID_MODELS = ["ffno", "fno", "localno", "localffno", "neuralop:FNO", "neuralop:TFNO", "neuralop:SFNO",
               "neuralop:LocalNO"]


@pytest.mark.parametrize("name", GRID_MODELS)
def test_grid_operators_round_trip_through_their_record(name):
    torch.manual_seed(0)
    extra = {"default_in_shape": (12, 12)} if name == "neuralop:LocalNO" else {}
    model = build_operator(name, 3, 2, 2, width=8, depth=2, modes=4, **extra).eval()
    x = torch.randn(2, 3, 12, 12)
    assert model(x).shape == (2, 2, 12, 12)
    record = model_record(model)
    assert record["name"] == name and record["version"] == RECORD_VERSION
    # the record is plain data: it survives a weights-only round trip
    torch.save({"record": record, "state_dict": plain_state_dict(model)}, "/dev/null")
    rebuilt = model_from_record(record, plain_state_dict(model)).eval()
    assert type(rebuilt) is type(model) and torch.equal(rebuilt(x), model(x))
    if name.startswith("neuralop:"):  # the plugin's sizes in neuraloperator's own names
        arguments = record["arguments"]
        assert (arguments["hidden_channels"], arguments["n_layers"], tuple(arguments["n_modes"])) == (8, 2, (4, 4))


def test_directly_constructed_models_keep_their_arguments():
    from fem_ms_torch.graph import MPPDE
    from fem_ms_torch.operators import FFNO, LocalNO

    record = model_record(FFNO(3, 1, width=6, modes=(3, 5)))
    assert record["name"] == "ffno" and record["arguments"]["modes"] == (3, 5) and record["arguments"]["depth"] == 4
    assert model_record(LocalNO(3, 1, width=6))["name"] == "localno"  # the subclass, not its base FNO
    graph = MPPDE(channels=2, hidden=8, steps=2)
    rebuilt = model_from_record(model_record(graph), graph.state_dict())
    assert type(rebuilt) is MPPDE and rebuilt.layers.__len__() == 2
    assert model_record(torch.nn.Linear(2, 2)) is None  # not registered: checkpoints keep its weights only


def test_unknown_names_and_bad_arguments_are_named():
    names = available_models()
    assert {"ffno", "fno", "localno", "localffno", "mppde", "logos", "gpo", "svgp", "neuralop:FNO"} <= set(names)
    assert "mppde" not in available_models(operator=True) and "neuralop:TFNO" in available_models(operator=True)
    with pytest.raises(ValueError, match="unknown model 'ffnoo'; available: .*'ffno'"):
        build_model("ffnoo")
    with pytest.raises(ValueError, match="unknown model 'neuralop:FNX'; neuraloperator's models: .*'neuralop:FNO'"):
        build_model("neuralop:FNX")
    with pytest.raises(ValueError, match="model 'mppde' is not a grid operator"):
        build_operator("mppde", 3, 1, 2)
    with pytest.raises(ValueError, match="is not plain data"):
        build_model("ffno", in_channels=3, out_channels=1, modes=torch.tensor([4, 4]))
    with pytest.raises(ValueError, match="given twice"):
        build_operator("neuralop:FNO", 3, 1, 2, width=4, hidden_channels=8)
    with pytest.raises(ValueError, match="record version 99 of 'ffno'.*retrain"):
        model_from_record({"name": "ffno", "arguments": {"in_channels": 1, "out_channels": 1}, "version": 99})


def test_a_neuralop_fno_trains_as_a_basis_model_and_the_learned_provider_loads_it(tmp_path):
    """``train_basis(architecture="neuralop:FNO")``: neuraloperator's FNO as the GMsFEM-NO
    backbone, checkpointed with its record, rebuilt by ``load_model`` and by the provider, and its
    bases used in a GMsFEM solve."""
    from neuralop.models import FNO

    import firedrake as fd

    from fem_ms import Diffusion, cell_field, solve, structured_hierarchy
    from fem_ms.coefficients import paper_kle
    from fem_ms.data import GMsFEMBasisConfig, generate
    from fem_ms.gmsfem import GMsFEM
    from fem_ms.metrics import relative_l2_error
    from fem_ms_torch.basis.features import patch_features
    from fem_ms_torch.basis.train import train_basis
    from fem_ms_torch.checkpoints import load_checkpoint, load_model, stored_normaliser

    data = generate(GMsFEMBasisConfig(name="b", samples=2, fine=12, coarse=3, n_basis=3), tmp_path, progress=False)
    ckpt = train_basis(data, tmp_path / "fno.pt", architecture="neuralop:FNO", epochs=2, width=8, depth=2, modes=3,
                       batch_size=4, progress=False)
    stored = load_checkpoint(ckpt)
    assert stored["models"]["full"]["record"]["name"] == "neuralop:FNO"
    model = load_model(ckpt, key="full")
    assert isinstance(model, FNO)
    pair = structured_hierarchy(3, 12)
    V = fd.FunctionSpace(pair.fine, "CG", 1)
    problem = Diffusion(V, cell_field(pair.fine, paper_kle((12, 12)).sample_kappa(7)), 1.0)
    # the network's own bases (no a-posteriori check, which would replace the untrained ones)
    learned = GMsFEM(problem, pair, n_basis=3, basis="learned", provider_options={"checkpoint": str(ckpt),
                                                                                  "verify": "off"})
    error = relative_l2_error(learned.solve().u, solve(problem).u)
    assert np.isfinite(error) and error < 1
    assert isinstance(learned.provider.models["full"], FNO)
    # the provider's basis of a full patch is the network's prediction, with the constant put in first
    i = next(i for i in learned.space.patches.owned if learned.space.patches.neighbourhoods[i].kind == "full")
    kappa = torch.as_tensor(learned.space.patches.kappa_patch(i))[None].float()
    with torch.no_grad():
        pred = model(patch_features(kappa, *stored_normaliser(stored, ckpt, "full").log_input_stats))[0].double()
    grid = pred[(slice(None),) + learned.space.patches.grid_positions(i)].T.numpy()
    np.testing.assert_allclose(learned.space.bases.vectors[i][:, 1:], grid, rtol=1e-5, atol=1e-6)
