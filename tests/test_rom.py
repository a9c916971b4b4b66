"""The reduced-order and regression baselines (fem_ms_torch.rom): one interface, exact limits
where there are some (POD of the training solutions reproduces them), fits of a tiny problem,
budgets honoured or refused, bad input named."""

import numpy as np
import pytest

from fem_ms.data import MultilevelConfig, generate
from fem_ms_torch.rom import IntrusivePOD, read_split

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
