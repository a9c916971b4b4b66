"""The reduced-order and regression baselines (fem_ms_torch.rom): one interface, exact limits
where there are some (POD of the training solutions reproduces them), fits of a tiny problem,
budgets honoured or refused, bad input named."""

import numpy as np
import pytest
import torch

from fem_ms.data import MultilevelConfig, generate
from fem_ms_torch.registry import build_model, model_from_record, model_record, plain_state_dict
from fem_ms_torch.rom import (
    BASELINES,
    FFNOPOD,
    DeepONetPOD,
    DeepPOD,
    IntrusiveFFNO,
    IntrusivePOD,
    KernelRegression,
    PCANet,
    read_split,
)

N = 8


def relative_l2(a, b):
    return float(np.mean(np.linalg.norm((a - b).reshape(len(a), -1), axis=1) / np.linalg.norm(b.reshape(len(b), -1),
                                                                                              axis=1)))


@pytest.fixture(scope="module")
def splits(tmp_path_factory):
    """Diffusion with a random forcing on 8², 12 samples: 8 train, 4 test."""
    path = generate(MultilevelConfig(name="rom", samples=12, levels=(N,), forcing="random", train_fraction=0.67,
                                     validation_fraction=0.0), tmp_path_factory.mktemp("rom"), progress=False)
    return {split: read_split(path, N, split) for split in ("train", "test")}


def test_intrusive_pod_reproduces_its_training_solutions(splits):
    """Every training u lies in the span of all modes: Galerkin returns it (to rounding)."""
    train = splits["train"]
    pod = IntrusivePOD("diffusion").fit(train)
    assert pod.space.n_modes == len(train["u"]) and pod.n_parameters == pod.space.n_modes * (N + 1) ** 2
    u = pod.predict(train["kappa"], train["f"])
    assert relative_l2(u, train["u"]) < 1e-9
    assert pod.train_seconds >= 0 and pod.online_seconds > 0 and 0 < pod.solve_seconds <= pod.online_seconds
    test = splits["test"]
    errors = [relative_l2(IntrusivePOD("diffusion", n_modes=m).fit(train).predict(test["kappa"], test["f"]),
                          test["u"]) for m in (1, len(train["u"]))]
    assert errors[1] < errors[0] < 1.0


def test_the_interface_refuses_what_it_cannot_honour(splits):
    train = splits["train"]
    with pytest.raises(ValueError, match="closed form .* takes no epochs"):
        IntrusivePOD().fit(train, epochs=3)
    with pytest.raises(RuntimeError, match="fit the baseline before predicting"):
        IntrusivePOD().predict(train["kappa"], train["f"])
    with pytest.raises(ValueError, match="problem must be 'diffusion' or 'richards'"):
        IntrusivePOD("heat")
    with pytest.raises(ValueError, match=r"lack \['u'\]"):
        IntrusivePOD().fit({"kappa": train["kappa"], "f": train["f"]})
    with pytest.raises(ValueError, match="f must be"):
        IntrusivePOD().fit({**train, "f": train["f"][:, :-1]})
    bad = train["kappa"].copy()
    bad[0, 0, 0] = -1.0
    with pytest.raises(ValueError, match="kappa must be positive"):
        IntrusivePOD().fit({**train, "kappa": bad})
    pod = IntrusivePOD().fit(train)
    with pytest.raises(ValueError, match="fitted on a 8² grid"):
        pod.predict(np.ones((1, 4, 4)), np.ones((1, 5, 5)))


def test_kernel_regression_interpolates_its_training_set_and_cross_validates(splits):
    """With a tiny nugget, kernel ridge regression interpolates its training inputs; with as many
    output components as the centred training u span, the PCA loses nothing."""
    train, test = splits["train"], splits["test"]
    samples = len(train["u"])
    for kernel in ("matern", "rbf"):
        model = KernelRegression(n_in=samples - 1, n_out=samples - 1, kernel=kernel, alpha=1e-10).fit(train)
        assert relative_l2(model.predict(train["kappa"], train["f"]), train["u"]) < 1e-5
        assert relative_l2(model.predict(test["kappa"], test["f"]), test["u"]) > 1e-3  # it cannot interpolate these
    searched = KernelRegression(n_in=4, n_out=4, cv_folds=2).fit(train)
    assert searched.chosen["alpha"] >= 1e-8 and searched.chosen["length_scale"] > 0
    assert searched.n_parameters > 0 and np.isfinite(searched.train_seconds)
    with pytest.raises(ValueError, match="n_in=9 and n_out=2 must not exceed the 8"):
        KernelRegression(n_in=9, n_out=2).fit(train)
    with pytest.raises(ValueError, match="kernel must be one of"):
        KernelRegression(kernel="laplace")


@pytest.mark.parametrize("make", [
    lambda s: PCANet(n_in=s - 1, n_out=s - 1, hidden=64, layers=3, lr=3e-3),
    lambda s: DeepONetPOD(n_modes=s - 1, hidden=64, layers=3, lr=3e-3),
    lambda s: FFNOPOD(n_modes=s - 1, width=12, depth=2, modes=4, lr=1e-2),
], ids=["pcanet", "deeponet_pod", "ffno_pod"])
def test_networks_fit_their_training_set(splits, make):
    """Eight samples, as many output modes as they span: each network drives its training error
    to a few per cent (the POD of the outputs alone is exact on them), on the training core."""
    train = splits["train"]
    model = make(len(train["u"])).fit(train, epochs=300, seed=0)
    assert len(model.history) == 300 and model.history[-1]["loss"] < 0.2 * model.history[0]["loss"]
    error = relative_l2(model.predict(train["kappa"], train["f"]), train["u"])
    assert error < 0.03, error
    assert 0 < model.n_weights < model.n_parameters and model.train_seconds > 0 and model.online_seconds > 0


def test_deeppod_learns_a_space_and_galerkin_is_energy_best_in_it(splits):
    """The projector loss falls; online, the Galerkin solution on the predicted space is at least
    as close to u in the energy norm as the l2 projection Q Qᵀ u (Galerkin is the energy-best
    approximation in the space: an inequality a wrong reduced system breaks)."""
    from fem_ms import cell_field, vertex_field
    from fem_ms.metrics import relative_energy_error
    from fem_ms_torch.rom.intrusive_pod import grid_space

    train = splits["train"]
    model = DeepPOD("diffusion", n_basis=4, width=12, depth=2, modes=4, lr=1e-2, batch_size=8)
    model.fit(train, epochs=80, seed=0)
    assert model.history[-1]["loss"] < 0.5 * model.history[0]["loss"]
    best = model.projection_error(train["kappa"], train["f"], train["u"])
    assert best.mean() < 0.15
    galerkin = model.predict(train["kappa"], train["f"])
    assert 0 < model.solve_seconds <= model.online_seconds
    with torch.no_grad():
        q = model.model.orthonormal_basis(torch.as_tensor(train["kappa"]).float(),
                                          torch.as_tensor(train["f"]).float()).double().numpy()
    V, _ = grid_space(N)
    for s, (kappa, u) in enumerate(zip(train["kappa"], train["u"])):
        projected = (q[s] @ (q[s].T @ u.ravel())).reshape(u.shape)
        k, reference = cell_field(V.mesh(), kappa), vertex_field(V, u)
        energy_best = relative_energy_error(vertex_field(V, projected), reference, k)
        assert relative_energy_error(vertex_field(V, galerkin[s]), reference, k) <= energy_best * (1 + 1e-6)


@pytest.mark.parametrize("name,arguments", [("pcanet", {"n": N, "n_in": 3, "n_out": 3, "hidden": 8}),
                                            ("deeponet_pod", {"n": N, "n_modes": 3, "hidden": 8}),
                                            ("ffno_pod", {"n": N, "n_modes": 3, "width": 4, "depth": 1, "modes": 2}),
                                            ("deeppod", {"n": N, "n_basis": 2, "width": 4, "depth": 1, "modes": 2}),
                                            ("ffno_basis", {"n": N, "width": 4, "depth": 1, "modes": 2})])
def test_registered_networks_round_trip_with_their_bases(splits, name, arguments):
    """The record and state dict (weights and buffers: scalings, PCA/POD bases) rebuild the
    fitted network exactly."""
    train = {k: torch.as_tensor(v, dtype=torch.float32) for k, v in splits["train"].items()}
    model = build_model(name, **arguments)
    if hasattr(model, "fit_bases"):
        model.fit_bases(train["kappa"], train["f"], train["u"])
    else:
        model.scaling.fit(train["kappa"], train["f"], train["u"])
    rebuilt = model_from_record(model_record(model), plain_state_dict(model))
    with torch.no_grad():
        assert torch.equal(rebuilt(train["kappa"], train["f"]), model(train["kappa"], train["f"]))


def test_budgets_are_honoured_or_refused(splits):
    train = splits["train"]
    quick = PCANet(n_in=3, n_out=3, hidden=8).fit(train, epochs=10_000, max_cpu_seconds=0.05)
    assert 1 <= len(quick.history) < 10_000
    validated = PCANet(n_in=3, n_out=3, hidden=8).fit(train, epochs=4, validation=splits["test"], validate_every=2)
    assert [("val_loss" in record) for record in validated.history] == [False, True, False, True]
    test = splits["test"]
    last = validated.history[-1]["val_loss"]
    assert last == pytest.approx(relative_l2(validated.predict(test["kappa"], test["f"]), test["u"]), rel=1e-4)
    with pytest.raises(ValueError, match="closed form: it takes no validation"):
        KernelRegression().fit(train, validation=test)
    with pytest.raises(ValueError, match="validate_every must be a positive integer"):
        PCANet().fit(train, epochs=1, validate_every=0)
    with pytest.raises(ValueError, match="trained by epochs: give epochs"):
        PCANet().fit(train)
    with pytest.raises(ValueError, match="epochs must be a positive integer"):
        DeepONetPOD().fit(train, epochs=0)
    with pytest.raises(ValueError, match="closed form .* takes no max_cpu_seconds"):
        KernelRegression().fit(train, max_cpu_seconds=1.0)
    with pytest.raises(ValueError, match="pcanet inputs: 20 components asked for"):
        PCANet(n_in=20, n_out=3).fit(train, epochs=1)
    with pytest.raises(ValueError, match="n_modes must be a positive integer"):
        FFNOPOD(n_modes=0)
    with pytest.raises(ValueError, match="problem must be 'diffusion' or 'richards'"):
        DeepPOD("heat")


def test_intrusive_ffno_galerkin_beats_its_own_network_in_the_energy_norm(splits):
    """Galerkin on the last hidden layer's span is the energy-best approximation there, which holds
    the network's prediction less its output bias (interior values): an inequality that a wrong
    basis extraction or reduced system breaks."""
    from fem_ms import cell_field, vertex_field
    from fem_ms.metrics import relative_energy_error
    from fem_ms_torch.rom.intrusive_pod import grid_space

    train = splits["train"]
    model = IntrusiveFFNO("diffusion", width=8, depth=2, modes=4, lr=1e-2, batch_size=8).fit(train, epochs=60)
    assert model.history[-1]["loss"] < model.history[0]["loss"]
    galerkin = model.predict(train["kappa"], train["f"])
    assert 0 < model.solve_seconds <= model.online_seconds
    network = model.model.network
    bias = float(network.project[2].bias) * float(model.model.scaling.u_scale)
    in_span = (model.regression(train["kappa"], train["f"]) - bias) * model.model.interior.double().numpy()
    V, _ = grid_space(N)
    for s, (kappa, u) in enumerate(zip(train["kappa"], train["u"])):
        k, reference = cell_field(V.mesh(), kappa), vertex_field(V, u)
        assert relative_energy_error(vertex_field(V, galerkin[s]), reference, k) <= \
            relative_energy_error(vertex_field(V, in_span[s]), reference, k) * (1 + 1e-6)
    with pytest.raises(ValueError, match="problem must be 'diffusion' or 'richards'"):
        IntrusiveFFNO("heat")


SMALL = {IntrusivePOD: {"n_modes": 3}, IntrusiveFFNO: {"width": 4, "depth": 1, "modes": 2},
         DeepONetPOD: {"n_modes": 3, "hidden": 8}, FFNOPOD: {"n_modes": 3, "width": 4, "depth": 1, "modes": 2},
         PCANet: {"n_in": 3, "n_out": 3, "hidden": 8}, KernelRegression: {"n_in": 3, "n_out": 3},
         DeepPOD: {"n_basis": 2, "width": 4, "depth": 1, "modes": 2}}


@pytest.mark.parametrize("cls", BASELINES, ids=lambda cls: cls.__name__)
def test_every_baseline_keeps_the_interface(splits, cls):
    """The contract a benchmark relies on, for every baseline alike: fit with or without epochs as
    the kind requires, fields of the training grid out, figures set, wrong grids and predicting
    before fitting refused."""
    train, test = splits["train"], splits["test"]
    baseline = cls(**SMALL[cls])
    with pytest.raises(RuntimeError, match="fit the baseline before predicting"):
        baseline.predict(test["kappa"], test["f"])
    budget = {"epochs": 2} if cls.iterative else {}
    assert baseline.fit(train, seed=1, **budget) is baseline
    u = baseline.predict(test["kappa"], test["f"])
    assert u.shape == test["u"].shape and u.dtype == np.float64 and np.all(np.isfinite(u))
    assert baseline.n_parameters > 0 and np.isfinite(baseline.train_seconds) and baseline.online_seconds > 0
    assert len(baseline.history) == (2 if cls.iterative else 0)
    assert isinstance(baseline.name, str) and baseline.name
    with pytest.raises(ValueError, match="fitted on a 8² grid"):
        baseline.predict(np.ones((1, 4, 4)), np.ones((1, 5, 5)))
    with pytest.raises(ValueError, match="takes no epochs" if not cls.iterative else "give epochs"):
        cls(**SMALL[cls]).fit(train, **({} if cls.iterative else {"epochs": 2}))
