"""The FNO-3d of the Navier–Stokes MLMC benchmark: neuraloperator's FNO over (x, y, t) through the
registry, the space-time levels that feed it, and that it learns a space-time map."""

import math

import numpy as np
import pytest
import torch

from fem_ms_torch.mlmc import SpaceTimeLevel, train_single_level, vorticity_levels
from fem_ms_torch.operators import space_time_fno
from fem_ms_torch.registry import model_from_record, model_record, plain_state_dict


def travelling_waves(samples: int, n: int, times: int, seed: int = 0) -> np.ndarray:
    """(samples, times, n, n): sums of two plane waves with random amplitudes and phases, each
    moving at its own fixed speed, at t = 1 … times (a linear, exactly known space-time map)."""
    rng = np.random.default_rng(seed)
    x = np.arange(n) / n
    X, Y = np.meshgrid(x, x, indexing="ij")
    t = np.arange(1, times + 1)[:, None, None]
    out = np.zeros((samples, times, n, n))
    for s in range(samples):
        a, phase = rng.normal(size=2), rng.uniform(0, 2 * math.pi, size=2)
        out[s] = a[0] * np.sin(2 * math.pi * (X - 0.05 * t) + phase[0]) \
            + a[1] * np.cos(2 * math.pi * (X + Y + 0.03 * t) + phase[1])
    return out


def test_space_time_fno_maps_every_resolution_and_round_trips_through_its_record():
    torch.manual_seed(0)
    model = space_time_fno(4, width=6, depth=2, modes=8, time_modes=4).eval()
    record = model_record(model)
    assert record["name"] == "neuralop:FNO"
    assert list(record["arguments"]["n_modes"]) == [8, 8, 4] and record["arguments"]["in_channels"] == 4
    levels, _ = vorticity_levels([travelling_waves(3, n, 7) for n in (8, 16)], input_times=4)
    for level in levels:
        (x,), y = level.batch(torch.arange(3), "cpu")
        n = level.inputs.shape[-1]
        assert x.shape == (3, 4, n, n, 3) and y.shape == (3, 1, n, n, 3)
        # the inputs are the first snapshots at every output time, the targets the later ones
        assert torch.equal(x[1, :, :, :, 2], level.inputs[1]) and torch.equal(y[2, 0, :, :, 0], level.targets[2, 0])
        assert model(x).shape == y.shape
    rebuilt = model_from_record(record, plain_state_dict(model)).eval()
    (x,), _ = levels[1].batch(torch.arange(2), "cpu")
    assert torch.equal(rebuilt(x), model(x))


def test_space_time_fno_fits_a_travelling_wave_map():
    """Snapshots t = 1 … 4 → t = 5 … 8 of moving plane waves: the trained FNO-3d predicts held-out
    samples far better than at initialisation (and than predicting zero, error 1)."""
    torch.manual_seed(0)
    train, stats = vorticity_levels([travelling_waves(24, 8, 8, seed=1)], input_times=4)
    test, _ = vorticity_levels([travelling_waves(8, 8, 8, seed=2)], input_times=4, stats=stats)
    model = space_time_fno(4, width=8, depth=2, modes=8, time_modes=4)
    trainer = train_single_level(model, train[0], epochs=60, batch_size=8, loss="relative_l2", lr=1e-2,
                                 device="cpu", progress=False)
    before = trainer.history[0]["loss"]
    error = trainer.evaluate(test[0])
    assert error < 0.1 < before, (before, error)


def test_vorticity_levels_share_one_scale_and_refuse_bad_fields():
    coarse, fine = travelling_waves(5, 8, 6), travelling_waves(5, 16, 6)
    levels, stats = vorticity_levels([coarse, fine], input_times=2)
    assert [level.name for level in levels] == ["8x8", "16x16"] and len(levels[0]) == 5
    assert stats.output_mean == 0.0 and stats.output_scale == pytest.approx(np.sqrt(np.mean(coarse ** 2)))
    np.testing.assert_allclose(levels[1].targets.numpy(), fine[:, 2:] / stats.output_scale, rtol=1e-6)
    assert isinstance(levels[1], SpaceTimeLevel) and levels[1].output_times == 4
    with pytest.raises(ValueError, match="input_times must be an integer in \\[1, 5\\]"):
        vorticity_levels([coarse], input_times=6)
    with pytest.raises(ValueError, match="same samples and times"):
        vorticity_levels([coarse, fine[:4]], input_times=2)
    with pytest.raises(ValueError, match="increase strictly"):
        vorticity_levels([fine, coarse], input_times=2)
    with pytest.raises(ValueError, match=r"fields\[0\] must be \(samples, times, n, n\)"):
        vorticity_levels([coarse[0]], input_times=2)
    bad = coarse.copy()
    bad[0, 0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="non-finite"):
        vorticity_levels([bad], input_times=2)
    with pytest.raises(ValueError, match="time_modes must be a positive integer"):
        space_time_fno(4, time_modes=0)
