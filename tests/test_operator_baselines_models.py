"""The operator-learning baselines of issue 29 — GNOT, Transolver++, DeepONet and neuraloperator's
FNO — built through the registry, round-tripped through their records, trained on the shared
training core to fit a small linear operator, and (the point-cloud models) equivariant under
permutations of the points and evaluated at another resolution."""

import math
import re

import pytest
import torch

from fem_ms_torch.operators import PointCloudOperator
from fem_ms_torch.registry import RECORD_VERSION, build_operator, model_from_record, model_record, plain_state_dict
from fem_ms_torch.training import Trainer

BASELINES = ["gnot", "transolver++", "deeponet", "neuralop:FNO"]
POINT_CLOUD = ["gnot", "transolver++"]


def smoothing_problem(samples: int, n: int, seed: int, modes: int = 2, alpha: float = 0.05):
    """a = Σ c_kl sin(kπx) sin(lπy) (k, l ≤ ``modes``, c ~ N(0, 1)) on an n² grid of [0, 1]², and
    u = (I − αΔ)⁻¹ a, the same sum with c_kl / (1 + απ²(k² + l²)): a linear, nonlocal operator.
    The best pointwise map u ≈ λa misses u by 31 % (relative L2), an untrained model by ~100 %."""
    generator = torch.Generator().manual_seed(seed)
    x = torch.linspace(0, 1, n)
    k = torch.arange(1, modes + 1, dtype=torch.float32)
    sines = torch.sin(math.pi * k[:, None] * x[None])
    c = torch.randn(samples, modes, modes, generator=generator)
    damping = 1 / (1 + alpha * math.pi ** 2 * (k[:, None] ** 2 + k[None] ** 2))
    a = torch.einsum("skl,ki,lj->sij", c, sines, sines)[:, None]
    u = torch.einsum("skl,ki,lj->sij", c * damping, sines, sines)[:, None]
    return a, u


def relative_l2(prediction, u):
    return ((prediction - u).flatten(1).norm(dim=1) / u.flatten(1).norm(dim=1)).mean()


class GridFitTrainer(Trainer):
    """The training core on whole grids a → u: shuffled mini-batches, relative L2 loss."""

    def __init__(self, model, a, u, batch_size: int, **kwargs):
        super().__init__(model, progress=False, device="cpu", **kwargs)
        self.a, self.u, self.batch_size = a, u, batch_size

    def batches(self, epoch: int):
        return torch.randperm(len(self.a), generator=torch.Generator().manual_seed(epoch)).split(self.batch_size)

    def compute_loss(self, indices):
        return relative_l2(self.model(self.a[indices]), self.u[indices]), len(indices)


@pytest.mark.parametrize("name", BASELINES)
def test_baselines_build_through_the_registry_and_round_trip_their_record(name):
    torch.manual_seed(0)
    sizes = {"modes": 4} if name.startswith("neuralop:") else {}
    model = build_operator(name, 3, 2, 2, width=8, depth=2, **sizes).eval()
    x = torch.randn(2, 3, 12, 10)
    assert model(x).shape == (2, 2, 12, 10)
    record = model_record(model)
    assert record["name"] == name and record["version"] == RECORD_VERSION
    torch.save({"record": record, "state_dict": plain_state_dict(model)}, "/dev/null")  # plain data only
    rebuilt = model_from_record(record, plain_state_dict(model)).eval()
    assert type(rebuilt) is type(model) and torch.equal(rebuilt(x), model(x))


@pytest.mark.parametrize("name", ["gnot", "transolver++", "deeponet"])
def test_baselines_act_on_3d_grids_with_gradients(name):
    torch.manual_seed(0)
    model = build_operator(name, 2, 1, 3, width=8, depth=1)
    x = torch.randn(2, 2, 6, 5, 4)
    out = model(x)
    out.square().mean().backward()
    assert out.shape == (2, 1, 6, 5, 4)
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters() if p.requires_grad)


# per model: architecture options, samples, batch size, epochs, learning rate (about 5 CPU-seconds each)
FITS = {
    "gnot": ({"width": 16, "depth": 1, "heads": 2, "mlp_layers": 1}, 32, 8, 60, 1e-2),
    "transolver++": ({"width": 16, "depth": 1, "heads": 2, "slices": 8}, 32, 8, 100, 3e-3),
    "deeponet": ({"width": 64, "depth": 2, "basis": 16}, 64, 16, 150, 3e-3),
    "neuralop:FNO": ({"width": 16, "depth": 2, "modes": 4}, 32, 8, 60, 1e-2),
}


@pytest.mark.parametrize("name", BASELINES)
def test_baselines_fit_a_smoothing_operator_on_the_training_core(name):
    """Trained a few hundred steps, each model predicts held-out fields well below both the
    untrained error and the 31 % of the best pointwise map (FNO, whose layers are this
    operator's form, far below); the point-cloud models keep that error on a finer grid."""
    torch.set_num_threads(1)
    options, samples, batch_size, epochs, lr = FITS[name]
    a, u = smoothing_problem(samples, 16, seed=0)
    a_test, u_test = smoothing_problem(16, 16, seed=1)
    torch.manual_seed(0)
    model = build_operator(name, 1, 1, 2, **options)
    with torch.no_grad():
        untrained = float(relative_l2(model.eval()(a_test), u_test))
    history = GridFitTrainer(model, a, u, batch_size, epochs=epochs, lr=lr).train()
    assert len(history) == epochs and history[-1]["loss"] < history[0]["loss"]
    model.eval()
    with torch.no_grad():
        error = float(relative_l2(model(a_test), u_test))
        threshold = 0.1 if name.startswith("neuralop:") else 0.27
        assert untrained > 0.9 and error < threshold, (untrained, error)
        if name in POINT_CLOUD:
            a_fine, u_fine = smoothing_problem(16, 24, seed=1)
            assert float(relative_l2(model(a_fine), u_fine)) < threshold
        elif name == "deeponet":  # the branch's convolutions count grid cells: it runs, less accurately
            a_fine, _ = smoothing_problem(2, 24, seed=1)
            assert torch.isfinite(model(a_fine)).all()


@pytest.mark.slow
@pytest.mark.parametrize("name", POINT_CLOUD)
def test_point_cloud_models_fit_a_few_fields_to_low_error(name):
    """Given steps enough (1,500 full-batch steps on four 12² fields, 12–21 CPU-seconds), the
    attention operators drive their training error on the smoothing operator below 10 % (GNOT
    about 2 %, Transolver++ about 7 %): the few-hundred-step test above stops on their plateau
    near 15–23 %, where they have learnt the pointwise part and little of the nonlocal one."""
    torch.set_num_threads(1)
    options = dict(FITS[name][0])
    a, u = smoothing_problem(4, 12, seed=0)
    torch.manual_seed(0)
    model = build_operator(name, 1, 1, 2, **options)
    GridFitTrainer(model, a, u, 4, epochs=1500, lr=3e-3).train()
    with torch.no_grad():
        assert float(relative_l2(model.eval()(a), u)) < 0.1


@pytest.mark.parametrize("name", POINT_CLOUD)
def test_point_cloud_models_are_permutation_equivariant(name):
    torch.manual_seed(0)
    model = build_operator(name, 2, 3, 2, width=16, depth=2).eval()
    assert isinstance(model, PointCloudOperator)
    values, coordinates = torch.randn(2, 50, 2), torch.rand(2, 50, 2)
    permutation = torch.randperm(50)
    with torch.no_grad():
        out = model.forward_points(values, coordinates)
        permuted = model.forward_points(values[:, permutation], coordinates[:, permutation])
    assert out.shape == (2, 50, 3)
    torch.testing.assert_close(permuted, out[:, permutation], rtol=1e-5, atol=1e-5)
    # the grid front is the same map on the grid's points
    x = torch.randn(1, 2, 5, 7)
    with torch.no_grad():
        grid = model(x)
        points = model.forward_points(x.flatten(2).transpose(1, 2), _grid_points(5, 7))
    torch.testing.assert_close(grid.flatten(2).transpose(1, 2), points)


def _grid_points(n0, n1):
    x0, x1 = torch.meshgrid(torch.linspace(0, 1, n0), torch.linspace(0, 1, n1), indexing="ij")
    return torch.stack([x0, x1], dim=-1).reshape(1, -1, 2)


def test_transolver_draws_gumbel_noise_in_training_only():
    """Rep-Slice: the slice weights are a Gumbel-softmax sample while training and deterministic
    in evaluation; every point's weights over the slices sum to one."""
    torch.manual_seed(0)
    model = build_operator("transolver++", 1, 1, 2, width=8, depth=1, heads=2, slices=4)
    attention = model.blocks[0].attention
    states = torch.randn(2, 2, 30, 4)
    model.train()
    first, second = attention.slice_weights(states), attention.slice_weights(states)
    assert not torch.equal(first, second)
    torch.testing.assert_close(first.sum(-1), torch.ones(2, 2, 30))
    model.eval()
    assert torch.equal(attention.slice_weights(states), attention.slice_weights(states))


@pytest.mark.parametrize("name, arguments, message", [
    ("gnot", {"width": 10, "heads": 4}, "gnot: width 10 is not a multiple of heads 4"),
    ("gnot", {"experts": 0}, "gnot: experts must be a positive integer, got 0"),
    ("gnot", {"dim": 4}, "gnot: dim must be 2 or 3, got 4"),
    ("transolver++", {"slices": 1.5}, r"transolver\+\+: slices must be a positive integer, got 1.5"),
    ("transolver++", {"width": 6, "heads": 4}, r"transolver\+\+: width 6 is not a multiple of heads 4"),
    ("deeponet", {"kernel_size": 4}, "deeponet: kernel_size must be odd"),
    ("deeponet", {"basis": 0}, "deeponet: basis must be a positive integer, got 0"),
    ("deeponet", {"depth": True}, "deeponet: depth must be a positive integer, got True"),
])
def test_bad_arguments_are_named(name, arguments, message):
    with pytest.raises(ValueError, match=message):
        build_operator(name, 1, 1, **{"dim": 2, **arguments})


@pytest.mark.parametrize("name", ["gnot", "transolver++", "deeponet"])
def test_a_size_the_model_lacks_and_a_wrong_input_are_refused(name):
    with pytest.raises(ValueError, match=re.escape(f"model '{name}' takes no modes or n_modes argument")):
        build_operator(name, 1, 1, 2, modes=4)
    model = build_operator(name, 2, 1, 2, width=8, depth=1)
    with pytest.raises(ValueError, match=r"expected \(batch, 2, 2 spatial axes\), got \(1, 3, 8, 8\)"):
        model(torch.randn(1, 3, 8, 8))


def test_train_standalone_trains_any_registered_grid_operator(tmp_path):
    """The standalone κ (+ f) → u baseline with GNOT: checkpointed with its record, read back by
    the solver; sizes and names the architecture does not have are refused before any training."""
    from fem_ms.data import MultilevelConfig, generate
    from fem_ms_torch.checkpoints import load_checkpoint
    from fem_ms_torch.operators import GNOT
    from fem_ms_torch.standalone import StandaloneSolver, train_standalone

    data = generate(MultilevelConfig(name="m", samples=3, levels=(8,), train_fraction=0.67), tmp_path, progress=False)
    kwargs = dict(epochs=2, batch_size=2, width=8, depth=1, progress=False, validation_split="test")
    path = train_standalone(data, 8, tmp_path / "gnot.pt", architecture="gnot", model_options={"heads": 2}, **kwargs)
    stored = load_checkpoint(path)
    record = stored["models"]["model"]["record"]
    assert record["name"] == "gnot" and record["arguments"]["heads"] == 2 and record["arguments"]["width"] == 8
    assert stored["config"]["architecture"] == "gnot" and stored["config"]["modes"] is None
    history = stored["runs"]["model"]["history"]
    assert len(history) == 2 and all(math.isfinite(r["val_relative_l2"]) for r in history)
    solver = StandaloneSolver(path)
    assert isinstance(solver.model, GNOT)
    u = solver(torch.ones(8, 8), torch.ones(9, 9))
    assert u.shape == (9, 9) and torch.isfinite(u).all()
    with pytest.raises(ValueError, match=re.escape("model 'transolver++' takes no modes or n_modes argument")):
        train_standalone(data, 8, tmp_path / "t.pt", architecture="transolver++", modes=4, **kwargs)
    with pytest.raises(ValueError, match="unknown model 'gnott'"):
        train_standalone(data, 8, tmp_path / "t.pt", architecture="gnott", **kwargs)
    with pytest.raises(ValueError, match="model 'mppde' is not a grid operator"):
        train_standalone(data, 8, tmp_path / "t.pt", architecture="mppde", **kwargs)
    assert not (tmp_path / "t.pt").exists()
