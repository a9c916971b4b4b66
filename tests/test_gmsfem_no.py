"""GMsFEM-NO building blocks: subspace losses, the F-FNO, training checkpoints, the provider."""

import os
import shutil

import h5py
import numpy as np
import pytest
import torch

from fem_ms_torch.basis.losses import rbfl2_loss, sal_loss, sal_pr_loss
from fem_ms_torch.operators import FFNO, FNO, FactorizedSpectralConv, SpectralConv


@pytest.fixture
def bases():
    g = torch.Generator().manual_seed(0)
    true = torch.randn(4, 3, 50, generator=g, dtype=torch.float64)
    mix = torch.randn(4, 3, 3, generator=g, dtype=torch.float64) + 3 * torch.eye(3, dtype=torch.float64)
    other = torch.randn(4, 3, 50, generator=g, dtype=torch.float64)
    return true, mix @ true, other


def test_subspace_losses_vanish_on_the_true_subspace_and_only_there(bases):
    true, mixed, other = bases
    assert sal_loss(true, true) < 1e-12
    assert sal_loss(mixed, true) < 1e-12  # invariant to any invertible mixing
    assert sal_pr_loss(mixed, true, generator=torch.Generator().manual_seed(1)) < 1e-12
    signs = torch.tensor([1.0, -1.0, -1.0], dtype=torch.float64)[None, :, None]
    assert rbfl2_loss(signs * true, true) < 1e-14  # invariant to sign flips
    for loss in (sal_loss, sal_pr_loss, rbfl2_loss):
        assert loss(other, true) > 0.1
    assert rbfl2_loss(mixed, true) > 0.1  # RBFL2 compares functions, not spans
    with pytest.raises(ValueError, match="batch, n_basis, points"):
        sal_loss(true[:, :2], true)  # fewer functions than the true span


def test_subspace_losses_of_an_oversampled_prediction_measure_containment(bases):
    """A prediction of K > n_basis functions: SAL and SAL-PR vanish exactly when the true span
    lies inside the predicted one; RBFL2, which pairs functions, refuses it."""
    true, mixed, other = bases
    g = torch.Generator().manual_seed(4)
    mix = torch.randn(4, 5, 5, generator=g, dtype=torch.float64) + 3 * torch.eye(5, dtype=torch.float64)
    containing = mix @ torch.cat([true, other[:, :2]], dim=1)  # span(true) ⊂ span(5 functions)
    assert sal_loss(containing, true) < 1e-12
    assert sal_pr_loss(containing, true, generator=torch.Generator().manual_seed(1)) < 1e-12
    missing = mix @ torch.cat([true[:, :2], other[:, :3]], dim=1)  # one true direction is missing
    assert sal_loss(missing, true) > 0.1 and sal_pr_loss(missing, true) > 0.1
    # the loss is the projection error of the true span: 1 − ‖P t₃‖² for the missing direction
    q = torch.linalg.qr(missing.transpose(1, 2)).Q
    qt = torch.linalg.qr(true.transpose(1, 2)).Q
    assert torch.allclose(sal_loss(missing, true), (3 - (q @ q.transpose(1, 2) @ qt).pow(2).sum((1, 2))).mean())
    with pytest.raises(ValueError, match="batch, n_basis, points"):
        rbfl2_loss(containing, true)


@pytest.mark.parametrize("precision, tol", [("float64", 1e-8), ("float32", 2e-5)])
@pytest.mark.parametrize("dim", [2, 3])
def test_rayleigh_ritz_recovers_eigenpairs_from_a_containing_space(dim, precision, tol):
    """Against dense SciPy: the generalized eigenpairs of the Q1 stiffness and consistent mass,
    assembled independently (Kronecker products of the 1D element matrices, cell by cell), are
    recovered from any mixture of them with other functions; Ritz values bound them from above
    on a space that does not contain them. In float32 Gram matrices, to float32's accuracy."""
    import functools
    import itertools

    import scipy.linalg

    from fem_ms_torch.basis.rayleigh_ritz import projected_matrices, rayleigh_ritz

    cells = (5, 4) if dim == 2 else (3, 4, 3)
    g = torch.Generator().manual_seed(5)
    kappa = torch.exp(3 * torch.rand(1, *cells, generator=g, dtype=torch.float64))
    vertices = tuple(c + 1 for c in cells)
    n_v = int(np.prod(vertices))
    k1 = np.array([[1.0, -1.0], [-1.0, 1.0]])
    m1 = np.array([[1 / 3, 1 / 6], [1 / 6, 1 / 3]])
    a, s = np.zeros((n_v, n_v)), np.zeros((n_v, n_v))
    for idx in itertools.product(*map(range, cells)):
        local = [np.ravel_multi_index(tuple(i + o for i, o in zip(idx, off)), vertices)
                 for off in itertools.product((0, 1), repeat=dim)]
        # local vertices in C order (first axis slowest), as np.kron orders its factors
        mass = functools.reduce(np.kron, [m1] * dim)
        stiff = sum(functools.reduce(np.kron, [k1 if b == ax else m1 for b in range(dim)]) for ax in range(dim))
        kc = float(kappa[(0, *idx)])
        a[np.ix_(local, local)] += kc * stiff
        s[np.ix_(local, local)] += kc * mass
    lam, phi = scipy.linalg.eigh(a, s)
    n = 4
    true = torch.as_tensor(phi[:, :n].T.reshape(1, n, *vertices))
    assert torch.allclose(torch.stack(projected_matrices(true, kappa)),
                          torch.as_tensor(np.stack([phi[:, :n].T @ a @ phi[:, :n], np.eye(n)]))[:, None], atol=1e-9)
    extra = torch.randn(1, 3, *vertices, generator=g, dtype=torch.float64)
    mix = torch.randn(1, n + 3, n + 3, generator=g, dtype=torch.float64)
    u = (mix @ torch.cat([true, extra], 1).flatten(2)).reshape(1, n + 3, *vertices)
    basis, values = rayleigh_ritz(u, kappa, n, precision=precision)
    assert basis.dtype == values.dtype == torch.float64
    assert torch.allclose(values[0], torch.as_tensor(lam[:n]), rtol=tol, atol=tol * lam[n - 1])
    assert float(sal_loss(basis.flatten(2), true.flatten(2))) < tol ** 2 * 100
    gram = basis.flatten(2)[0].numpy() @ s @ basis.flatten(2)[0].numpy().T
    assert np.allclose(gram, np.eye(n), atol=tol)  # S-orthonormal
    # without the 4th eigenvector: Ritz values are upper bounds, strictly above for the 4th
    partial = torch.cat([true[:, :3], extra], 1)
    _, bounds = rayleigh_ritz(partial, kappa, n, precision=precision)
    assert torch.all(bounds[0] >= torch.as_tensor(lam[:n]) * (1 - tol) - 1e-10) and bounds[0, 3] > lam[3] * 1.01
    duplicated = torch.cat([true[:, :3], true[:, :3]], 1)  # rank 3: refuses to invent a fourth direction
    with pytest.raises(ValueError, match="fewer than 4 independent directions"):
        rayleigh_ritz(duplicated, kappa, n, precision=precision)
    with pytest.raises(ValueError, match="vertex grid"):
        rayleigh_ritz(u[..., :-1], kappa, n, precision=precision)
    with pytest.raises(ValueError, match="precision must be one of"):
        rayleigh_ritz(u, kappa, n, precision="float16")


def test_weighted_losses_measure_the_weighted_inner_product(bases):
    true, mixed, other = bases
    g = torch.Generator().manual_seed(2)
    weight = torch.rand(4, 50, generator=g, dtype=torch.float64) + 0.1
    for loss in (sal_loss, rbfl2_loss):  # uniform weights change nothing; a scale changes nothing
        assert torch.isclose(loss(other, true, torch.ones_like(weight)), loss(other, true))
        assert torch.isclose(loss(other, true, 7 * weight), loss(other, true, weight))
    assert sal_loss(mixed, true, weight) < 1e-12
    assert sal_loss(other, true, weight) > 0.1
    # against an independent computation: N_bf − ‖Q_tᵀ W Q_p‖² with W-orthonormal Q from a
    # Cholesky factorisation of the Gram matrices
    t, o, w = true[0].T, other[0].T, weight[0]

    def w_orthonormal(b):
        return b @ torch.linalg.inv(torch.linalg.cholesky(b.T @ (w[:, None] * b))).T

    qt, qo = w_orthonormal(t), w_orthonormal(o)
    expected = 3 - (qt.T @ (w[:, None] * qo)).pow(2).sum()
    assert torch.isclose(sal_loss(other[:1], true[:1], weight[:1]), expected)
    # where the weight vanishes, a difference costs nothing
    mask = torch.ones(4, 50, dtype=torch.float64)
    mask[:, 25:] = 0
    changed = true.clone()
    changed[:, :, 25:] = torch.randn(4, 3, 25, generator=g, dtype=torch.float64)
    assert sal_loss(changed, true, mask) < 1e-12 and sal_loss(changed, true) > 0.1
    with pytest.raises(ValueError, match="weight must be"):
        sal_loss(true, true, weight[:, :10])


@pytest.mark.parametrize("dim", [2, 3])
def test_vertex_mass_is_the_lumped_kappa_mass(dim):
    from fem_ms_torch.basis.features import vertex_mass

    kappa = torch.rand(2, *([5] * dim), dtype=torch.float64) * 100
    mass = vertex_mass(kappa)
    assert mass.shape == (2, *([6] * dim))
    # every cell hands κ_c / 2^dim to each of its 2^dim vertices
    assert torch.allclose(mass.sum(dim=tuple(range(1, dim + 1))), kappa.sum(dim=tuple(range(1, dim + 1))))
    ones = vertex_mass(torch.ones(1, *([4] * dim), dtype=torch.float64))[0]
    assert ones[(2,) * dim] == 1 and ones[(0,) * dim] == 0.5 ** dim  # interior vertex, corner


@pytest.mark.parametrize("dim", [2, 3])
def test_energy_embedding_integrates_q1_functions_exactly(dim):
    """Gram matrix of the features = κ-stiffness + τ·lumped mass, against exact integrals of the
    Q1 functions u₀ = Π x_b and u₁ = x₀ + 2x₁ on unit cells."""
    import itertools

    from fem_ms_torch.basis.features import energy_embedding, rayleigh_quotient, self_energy_embedding, vertex_mass

    cells = (4, 3) if dim == 2 else (3, 2, 4)
    kappa = torch.rand(1, *cells, generator=torch.Generator().manual_seed(3), dtype=torch.float64) * 10 + 0.1
    x = torch.meshgrid(*[torch.arange(n + 1, dtype=torch.float64) for n in cells], indexing="ij")
    u = torch.stack([torch.prod(torch.stack(x), 0), x[0] + 2 * x[1]])[None]
    c = [1.0, 2.0, 0.0][:dim]  # ∇u₁

    def moment(i, k):  # ∫_i^{i+1} x^k dx
        return ((i + 1) ** (k + 1) - i ** (k + 1)) / (k + 1)

    a = np.zeros((2, 2))
    for idx in itertools.product(*map(range, cells)):
        k = float(kappa[(0, *idx)])
        for ax in range(dim):  # ∂_ax u₀ = Π_{b≠ax} x_b
            others = [moment(idx[b], 2) for b in range(dim) if b != ax]
            a[0, 0] += k * np.prod(others)
            a[0, 1] += k * c[ax] * np.prod([moment(idx[b], 1) for b in range(dim) if b != ax])
        a[1, 1] += k * sum(ci * ci for ci in c)
    a[1, 0] = a[0, 1]
    m = vertex_mass(kappa).flatten(1)[0]
    s = torch.stack([(m * u[0, i].flatten() * u[0, j].flatten()).sum() for i in range(2) for j in range(2)])
    tau = torch.tensor([0.3], dtype=torch.float64)
    e = energy_embedding(u, kappa, tau)[0]
    assert torch.allclose(e @ e.T, torch.as_tensor(a) + 0.3 * s.reshape(2, 2), rtol=1e-12)
    assert torch.isclose(rayleigh_quotient(u, kappa)[0], torch.as_tensor(a.trace()) / s.reshape(2, 2).trace())
    own, own_tau = self_energy_embedding(u, kappa)  # the one-pass form used for the true basis in training
    torch.testing.assert_close(own_tau, rayleigh_quotient(u, kappa), rtol=0, atol=0)
    torch.testing.assert_close(own, energy_embedding(u, kappa, own_tau), rtol=0, atol=0)


@pytest.mark.parametrize("dim", [2, 3])
def test_ffno_shapes_resolution_transfer_and_gradients(dim):
    torch.manual_seed(0)
    model = FFNO(3, 5, dim=dim, width=8, depth=2, modes=4)
    for n in (9, 17):  # any grid size: the weights act on frequencies
        x = torch.randn(2, 3, *(n,) * dim, requires_grad=True)
        y = model(x)
        assert y.shape == (2, 5) + (n,) * dim
    y.sum().backward()
    assert all(p.grad is not None for p in model.parameters())
    with pytest.raises(ValueError, match="3 mode counts for 2 axes"):
        FFNO(3, 5, dim=2, modes=(4, 4, 4))


def test_ffno_under_bfloat16_autocast_keeps_the_residual_stream_in_float32():
    """Only the layers' products run in bfloat16: the lifting, the residual stream and the
    projection see float32, so the output is float32 and close to the float32 forward pass."""
    torch.manual_seed(0)
    model = FFNO(3, 5, dim=2, width=8, depth=2, modes=4).eval()
    x = torch.randn(2, 3, 17, 17)
    seen = {}

    def record(name):
        def hook(module, args, out):
            seen[name] = (args[0].dtype, out.dtype)
        return hook

    hooks = [module.register_forward_hook(record(name))
             for name, module in (("lift", model.lift), ("project", model.project[0]), ("ff", model.ff[0][0]))]
    with torch.inference_mode():
        exact = model(x)
        seen.clear()
        with torch.autocast("cpu", dtype=torch.bfloat16):
            fast = model(x)
    for hook in hooks:
        hook.remove()
    assert seen["lift"] == (torch.float32, torch.float32) and seen["project"] == (torch.float32, torch.float32)
    assert seen["ff"][1] == torch.bfloat16  # the feed-forward products do run in bfloat16
    assert fast.dtype == torch.float32 and not torch.equal(fast, exact)
    assert float((fast - exact).norm() / exact.norm()) < 1e-2


@pytest.mark.parametrize("dim", [2, 3])
def test_spectral_convolutions_with_identity_weights_reproduce_the_input(dim):
    """All modes kept and W = identity: K(z) = z for the FNO layer, Σ_axes z = dim·z for the F-FNO."""
    n, width = 6, 3
    x = torch.randn(2, width, *(n,) * dim)
    fno = SpectralConv(width, (n,) * dim)
    ffno = FactorizedSpectralConv(width, (n,) * dim)
    with torch.no_grad():
        eye = torch.eye(width, dtype=torch.cfloat)
        for w in fno.weights:
            w.copy_(eye.reshape(width, width, *(1,) * dim).expand_as(w))
        for w in ffno.weights:
            w.copy_(eye[..., None].expand_as(w))
    torch.testing.assert_close(fno(x), x, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(ffno(x), dim * x, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("dim", [2, 3])
def test_fno_shapes_and_gradients(dim):
    model = FNO(3, 2, dim=dim, width=6, depth=2, modes=3)
    for n in (8, 13):
        x = torch.randn(2, 3, *(n,) * dim, requires_grad=True)
        assert model(x).shape == (2, 2) + (n,) * dim
    model(x).sum().backward()
    assert all(p.grad is not None for p in model.parameters())


def test_train_checkpoint_resume_and_provider(tmp_path):
    import firedrake as fd

    from fem_ms import Diffusion, cell_field, solve, structured_hierarchy
    from fem_ms.coefficients import paper_kle
    from fem_ms.data import GMsFEMBasisConfig, generate
    from fem_ms.gmsfem import GMsFEM, get_provider
    from fem_ms.metrics import relative_l2_error
    from fem_ms_torch.basis.train import train_basis
    from fem_ms_torch.checkpoints import load_checkpoint
    from fem_ms_torch.training import metrics_path

    from .interruption import killed_after_saves

    data = generate(GMsFEMBasisConfig(name="b", samples=4, fine=12, coarse=3, n_basis=3), tmp_path, progress=False)
    ckpt = tmp_path / "no.pt"
    kwargs = dict(epochs=3, width=8, depth=2, modes=3, batch_size=4, progress=False)
    reference = train_basis(data, tmp_path / "reference.pt", **kwargs)
    with pytest.raises(KeyboardInterrupt), killed_after_saves(5):  # killed in the middle of the second kind
        train_basis(data, ckpt, **kwargs)
    assert {k: r["epochs_done"] for k, r in load_checkpoint(ckpt)["runs"].items()} == {"full": 3, "half": 2}
    train_basis(data, ckpt, **kwargs)  # the same command again: continues, and ends where an
    resumed, uninterrupted = load_checkpoint(ckpt), load_checkpoint(reference)  # uninterrupted run ends
    for kind in ("full", "half", "corner"):
        for name, tensor in uninterrupted["models"][kind]["state_dict"].items():
            assert torch.equal(resumed["models"][kind]["state_dict"][name], tensor), (kind, name)
        losses = [[r["loss"] for r in c["runs"][kind]["history"]] for c in (resumed, uninterrupted)]
        assert losses[0] == losses[1] and len(losses[0]) == 3
    # the per-epoch metrics beside the checkpoint, one row per kind and epoch, none repeated by the resume
    rows = metrics_path(ckpt).read_text().splitlines()
    assert rows[0].startswith("run,epoch,loss,lr,time_s") and len(rows) == 1 + 3 * 3
    with pytest.raises(FileExistsError, match="other settings"):
        train_basis(data, ckpt, **{**kwargs, "epochs": 5})
    # the loss on a held-out split every second epoch and after the last; training is unchanged
    validated = load_checkpoint(train_basis(data, tmp_path / "val.pt", validation_split="test", validate_every=2,
                                            **kwargs))
    history = validated["runs"]["full"]["history"]
    assert [("val_loss" in r) for r in history] == [False, True, True] and history[-1]["val_loss"] > 0
    for name, tensor in uninterrupted["models"]["full"]["state_dict"].items():
        assert torch.equal(validated["models"]["full"]["state_dict"][name], tensor), name
    fno = train_basis(data, tmp_path / "fno.pt", architecture="fno", **kwargs)
    assert load_checkpoint(fno)["models"]["full"]["record"]["name"] == "fno"
    assert uninterrupted["config"]["inner_product"] == "energy"  # the default
    for inner_product in ("kappa", "euclidean"):
        other = load_checkpoint(train_basis(data, tmp_path / f"{inner_product}.pt", inner_product=inner_product,
                                            **kwargs))
        assert other["config"]["inner_product"] == inner_product
        assert not torch.equal(other["models"]["full"]["state_dict"]["lift.weight"],
                               uninterrupted["models"]["full"]["state_dict"]["lift.weight"])
    with pytest.raises(TypeError, match="key 'inner_product' must be one of 'energy', 'euclidean', 'kappa', got 'h1'"):
        train_basis(data, tmp_path / "x.pt", inner_product="h1", **kwargs)
    # the constant (λ = 0) is put in exactly by default: the networks predict the other N_bf − 1
    assert uninterrupted["meta"]["exact_constant"] and uninterrupted["config"]["exact_constant"]
    assert uninterrupted["models"]["full"]["record"]["arguments"]["out_channels"] == 2
    all_predicted = load_checkpoint(train_basis(data, tmp_path / "all.pt", exact_constant=False, **kwargs))
    assert not all_predicted["meta"]["exact_constant"]
    assert all_predicted["models"]["full"]["record"]["arguments"]["out_channels"] == 3
    oversampled = load_checkpoint(train_basis(data, tmp_path / "over.pt", oversample=2, **kwargs))
    assert oversampled["meta"]["oversample"] == 2 and uninterrupted["meta"]["oversample"] == 0
    assert oversampled["models"]["full"]["record"]["arguments"]["out_channels"] == 4  # N_bf − 1 + 2
    for bad, error, message in ((-1, ValueError, "key 'oversample' must be >= 0"),
                                (1.5, TypeError, "key 'oversample' must be an integer")):
        with pytest.raises(error, match=message):
            train_basis(data, tmp_path / "x.pt", oversample=bad, **kwargs)
    with pytest.raises(ValueError, match="oversample needs a subspace loss"):
        train_basis(data, tmp_path / "x.pt", oversample=2, loss="rbfl2", **kwargs)
    tilted = tmp_path / "tilted.h5"
    shutil.copy(data, tilted)
    with h5py.File(tilted, "r+") as fh:  # a first basis function that is not constant
        basis = fh["half/basis"]
        basis[:, :, 0] = basis[:, :, 0] * np.linspace(1.0, 2.0, basis.shape[-1])
    with pytest.raises(ValueError, match="first basis functions of the 'half' patches are not constant"):
        train_basis(tilted, tmp_path / "tilted.pt", **kwargs)

    pair = structured_hierarchy(3, 12)
    V = fd.FunctionSpace(pair.fine, "CG", 1)
    problem = Diffusion(V, cell_field(pair.fine, paper_kle((12, 12)).sample_kappa(99)), 1.0)
    learned = GMsFEM(problem, pair, n_basis=3, basis="learned",
                     provider_options={"checkpoint": str(ckpt), "verify": "off"})
    u = learned.solve().u
    assert np.isfinite(relative_l2_error(u, solve(problem).u))
    assert "inference" in learned.space.bases.timings
    with pytest.raises(ValueError, match="predicts 3 basis functions, GMsFEM asked for n_basis=2"):
        GMsFEM(problem, pair, n_basis=2, basis="learned", provider_options={"checkpoint": str(ckpt)}).offline()
    # an oversampled model: its N_bf lowest Ritz vectors, computed on the canonical patch grid, are
    # eigenvectors of the projected local problem assembled by Firedrake in ω_i's DOF order
    over = GMsFEM(problem, pair, n_basis=3, basis="learned",
                  provider_options={"checkpoint": str(tmp_path / "over.pt"), "ritz_precision": "float64",
                                    "verify": "off"})
    assert np.isfinite(relative_l2_error(over.solve().u, solve(problem).u))
    timings = over.space.bases.timings
    assert 0 < timings["rayleigh_ritz"] and 0 < timings["network"]
    assert timings["rayleigh_ritz"] + timings["network"] < timings["inference"]
    assert learned.space.bases.timings["rayleigh_ritz"] == 0  # not oversampled, not verified
    for i, v in over.space.bases.vectors.items():
        A, S = over.space.patches.local_matrices(i)
        a, m = v.T @ A @ v, v.T @ S @ v
        assert v.shape[1] == 3 and np.allclose(m, m[0, 0] * np.eye(3), atol=1e-9 * m[0, 0])
        assert np.allclose(a, np.diag(np.diag(a)), atol=1e-9 * np.abs(a).max())
        assert np.all(np.diff(np.diag(a)) >= 0) and np.ptp(v[:, 0]) < 1e-9 * np.abs(v[:, 0]).max()
    # the default float32 Rayleigh-Ritz: the same subspaces to float32's accuracy
    fast = get_provider("learned", checkpoint=str(tmp_path / "over.pt"), verify="off")
    fast = fast.local_bases(over.space.patches, 3).vectors
    for i, v in over.space.bases.vectors.items():
        assert float(sal_loss(torch.as_tensor(fast[i].T[None]), torch.as_tensor(v.T[None]))) < 1e-8
    with pytest.raises(ValueError, match="ritz_precision must be one of"):
        get_provider("learned", checkpoint=str(ckpt), ritz_precision="bfloat16")
    # the checkpoint reloads exactly: the same predictions from the shared models and from a fresh read
    from fem_ms_torch.basis import provider as provider_module

    p1 = get_provider("learned", checkpoint=str(ckpt), verify="off").local_bases(learned.space.patches, 3).vectors
    assert all(v.shape[1] == 3 and np.ptp(v[:, 0]) == 0 for v in p1.values())
    assert get_provider("learned", checkpoint=str(ckpt)).models is learned.provider.models
    provider_module._LOADED.clear()
    p2 = get_provider("learned", checkpoint=str(ckpt), verify="off").local_bases(learned.space.patches, 3).vectors
    assert get_provider("learned", checkpoint=str(ckpt)).models is not learned.provider.models
    assert all(np.array_equal(p1[i], p2[i]) for i in p1)
    # a rewritten checkpoint is read again
    shutil.copy(fno, tmp_path / "swapped.pt")
    shutil.copy(ckpt, tmp_path / "swapped.pt.ffno")
    assert type(get_provider("learned", checkpoint=str(tmp_path / "swapped.pt")).models["full"]).__name__ == "FNO"
    os.replace(tmp_path / "swapped.pt.ffno", tmp_path / "swapped.pt")
    assert type(get_provider("learned", checkpoint=str(tmp_path / "swapped.pt")).models["full"]).__name__ == "FFNO"
    # bfloat16 inference: the same subspaces up to bfloat16 rounding
    p3 = get_provider("learned", checkpoint=str(ckpt), precision="bfloat16", verify="off")
    p3 = p3.local_bases(learned.space.patches, 3).vectors
    for i in p1:
        a, b = torch.as_tensor(p1[i].T[None]), torch.as_tensor(p3[i].T[None])
        assert not torch.equal(a, b) and float(sal_loss(b, a)) < 1e-2
    with pytest.raises(ValueError, match="precision must be one of"):
        get_provider("learned", checkpoint=str(ckpt), precision="float16")


def test_sal_pr_settings_reach_the_loss(tmp_path):
    """SAL-PR's n_vectors and pr_weight change the training loss (same data, seed and batches);
    pr_weight = 0 is SAL exactly; unset they are the loss's defaults (10 vectors, weight 1)."""
    from fem_ms.data import GMsFEMBasisConfig, generate
    from fem_ms_torch.basis.train import train_basis
    from fem_ms_torch.checkpoints import load_checkpoint

    data = generate(GMsFEMBasisConfig(name="b", samples=4, fine=12, coarse=3, n_basis=3), tmp_path, progress=False)
    kwargs = dict(epochs=2, width=8, depth=2, modes=3, batch_size=2, kinds=["full"], progress=False)

    def losses(name, **settings):
        checkpoint = load_checkpoint(train_basis(data, tmp_path / f"{name}.pt", **kwargs, **settings))
        return [r["loss"] for r in checkpoint["runs"]["full"]["history"]]

    default = losses("default", loss="sal-pr")
    assert losses("ten", loss="sal-pr", n_vectors=10, pr_weight=1.0) == default
    assert losses("five", loss="sal-pr", n_vectors=5) != losses("twenty", loss="sal-pr", n_vectors=20)
    assert losses("heavy", loss="sal-pr", pr_weight=3.0) != default
    assert losses("unweighted", loss="sal-pr", pr_weight=0.0) == losses("sal", loss="sal")
    with pytest.raises(ValueError, match="n_vectors is a setting of loss 'sal-pr', not of 'sal'"):
        train_basis(data, tmp_path / "x.pt", n_vectors=5, **kwargs)


def test_data_parallel_training_follows_one_process(tmp_path):
    """torchrun with 2 CPU processes (gloo, DistributedDataParallel), each taking half of every
    global batch, trains the same weights as one process: the averaged gradient is the gradient
    of the global batch, including the uneven last batch."""
    import subprocess
    import sys

    from fem_ms.data import GMsFEMBasisConfig, generate
    from fem_ms_torch.basis.train import train_basis
    from fem_ms_torch.checkpoints import load_checkpoint

    data = generate(GMsFEMBasisConfig(name="b", samples=4, fine=12, coarse=3, n_basis=3, train_fraction=1.0),
                    tmp_path, progress=False)
    # 4 samples x 4 patches of each kind: global batches of 15 (split 8 + 7) and 1 (one rank idles)
    kwargs = dict(kinds=["full", "corner"], epochs=3, width=8, depth=2, modes=3, batch_size=15, loss="rbfl2")
    single = train_basis(data, tmp_path / "single.pt", progress=False, **kwargs)
    script = tmp_path / "ddp.py"
    script.write_text("import sys\nfrom fem_ms_torch.basis.train import train_basis\n"
                      f"train_basis({str(data)!r}, sys.argv[1], progress=False, device='cpu', **{kwargs!r})\n")
    run = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                          str(script), str(tmp_path / "ddp.pt")], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, f"torchrun failed:\n{run.stderr[-4000:]}"
    one, two = load_checkpoint(single), load_checkpoint(tmp_path / "ddp.pt")
    for kind in ("full", "corner"):
        assert one["runs"][kind]["epochs_done"] == two["runs"][kind]["epochs_done"] == 3
        for name, tensor in one["models"][kind]["state_dict"].items():
            torch.testing.assert_close(two["models"][kind]["state_dict"][name], tensor, rtol=1e-5, atol=1e-6)
        losses = [[r["loss"] for r in c["runs"][kind]["history"]] for c in (one, two)]
        assert losses[1] == pytest.approx(losses[0], rel=1e-5)


def test_cli_train_basis(tmp_path):
    import subprocess
    import sys
    import tomllib

    from fem_ms.data import GMsFEMBasisConfig, generate

    data = generate(GMsFEMBasisConfig(name="b", samples=2, fine=8, coarse=2, n_basis=2), tmp_path, progress=False)
    cfg = tmp_path / "train.toml"
    cfg.write_text(f'dataset = "{data}"\nout = "{tmp_path / "m.pt"}"\nepochs = 1\nwidth = 4\ndepth = 1\n'
                   f'modes = 2\nprogress = false\n')
    out = subprocess.run([sys.executable, "-m", "fem_ms.cli", "train-basis", str(cfg)], check=True,
                         capture_output=True, text=True).stdout
    assert "wrote" in out and (tmp_path / "m.pt").is_file()
    # the entry function of the command: the same file (plus the dialect's optional kind) resumes the run
    from fem_ms_torch.basis.train import train_basis_from_config

    assert train_basis_from_config(cfg) == tmp_path / "m.pt"
    assert train_basis_from_config({"kind": "train_basis", **tomllib.loads(cfg.read_text())}) == tmp_path / "m.pt"
    cfg.write_text(cfg.read_text() + "epoch = 3\n")  # misspelt: named, not ignored
    bad = subprocess.run([sys.executable, "-m", "fem_ms.cli", "train-basis", str(cfg)], capture_output=True, text=True)
    assert bad.returncode == 2 and "unknown key 'epoch' (did you mean 'epochs'?)" in bad.stderr
    with pytest.raises(ValueError, match=r"unknown key 'epoch' \(did you mean 'epochs'\?\)"):
        train_basis_from_config(cfg)


def test_train_commands_take_a_device(tmp_path, capsys):
    """``--device`` replaces the config's device (the smoke run on the CPU every machine has); a
    device that is not there is an error naming it before any work, in the config and on the
    command line alike."""
    import torch

    from fem_ms.cli import main
    from fem_ms.data import GMsFEMBasisConfig, generate
    from fem_ms_torch.basis.config import TrainBasisConfig
    from fem_ms_torch.checkpoints import load_checkpoint

    data = generate(GMsFEMBasisConfig(name="b", samples=2, fine=8, coarse=2, n_basis=2), tmp_path, progress=False)
    cfg = tmp_path / "train.toml"
    cfg.write_text(f'dataset = "{data}"\nout = "{tmp_path / "m.pt"}"\nepochs = 1\nwidth = 4\ndepth = 1\n'
                   f'modes = 2\nprogress = false\ndevice = "cuda:7"\n')
    assert main(["train-basis", str(cfg), "--device", "cpu"]) == 0
    state = load_checkpoint(tmp_path / "m.pt")["models"]["full"]["state_dict"]
    assert {t.device.type for t in state.values()} == {"cpu"}
    for bad, message in (("tpu", "device must be 'cpu', 'cuda' or 'cuda:N', got 'tpu'"),
                         *([] if torch.cuda.is_available() else [("cuda", "device 'cuda' requested but CUDA is "
                                                                  "not available")])):
        assert main(["train-basis", str(cfg), "--device", bad]) == 2
        assert message in capsys.readouterr().err
        with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
            TrainBasisConfig(dataset=data, out=tmp_path / "x.pt", device=bad)


def test_standalone_baseline_trains_resumes_exactly_and_predicts(tmp_path):
    from fem_ms.data import MultilevelConfig, generate
    from fem_ms_torch.checkpoints import load_checkpoint
    from fem_ms_torch.standalone import StandaloneSolver, train_standalone

    from .interruption import killed_after_saves

    data = generate(MultilevelConfig(name="m", samples=4, levels=(8,), train_fraction=0.75), tmp_path, progress=False)
    kwargs = dict(epochs=3, batch_size=2, width=4, depth=1, modes=2, progress=False, validation_split="test")
    straight = train_standalone(data, 8, tmp_path / "a.pt", **kwargs)
    with pytest.raises(KeyboardInterrupt), killed_after_saves(1):
        train_standalone(data, 8, tmp_path / "b.pt", **kwargs)
    assert load_checkpoint(tmp_path / "b.pt")["runs"]["model"]["epochs_done"] == 1
    resumed = train_standalone(data, 8, tmp_path / "b.pt", **kwargs)
    a, b = load_checkpoint(straight), load_checkpoint(resumed)
    for name, tensor in a["models"]["model"]["state_dict"].items():
        assert torch.equal(b["models"]["model"]["state_dict"][name], tensor), name
    history = a["runs"]["model"]["history"]
    assert [r["loss"] for r in history] == [r["loss"] for r in b["runs"]["model"]["history"]]
    assert all(np.isfinite(r["val_relative_l2"]) for r in history)
    # the normaliser of the checkpoint: log-κ statistics and u's scale (the network predicts u / max|u|)
    normaliser = a["models"]["model"]["normaliser"]
    assert normaliser["log_inputs"] and normaliser["output_mean"] == 0 and normaliser["output_scale"] > 0
    solver = StandaloneSolver(straight)
    u = solver(np.ones((8, 8)), np.ones((9, 9)))
    assert u.shape == (9, 9) and torch.isfinite(u).all()
    with pytest.raises(FileExistsError, match="other settings"):
        train_standalone(data, 8, straight, **{**kwargs, "lr": 1e-2})
