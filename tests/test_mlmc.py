"""MLMC training: sample progressions, the batcher, the unbiased telescoping gradient, the
single-level limit, resumable checkpoints, the MP-PDE graph network and the mesh transfer."""

import math

import numpy as np
import pytest
import torch

from fem_ms_torch.checkpoints import load_checkpoint, load_model
from fem_ms_torch.mlmc import GridLevel, MLMCTrainer, MultilevelBatcher, batch_sizes, sample_counts, train_single_level
from fem_ms_torch.training import NonFiniteLossError

from .interruption import killed_after_saves

# -- progressions -----------------------------------------------------------------------------

def test_progressions_give_the_documented_counts():
    assert sample_counts("geometric", 4, 800, delta=2) == [800, 400, 200, 100]
    assert sample_counts("geometric", 3, 1000, delta=8) == [1000, 125, 16]       # 15.6 rounds to 16
    assert sample_counts("geometric", 3, 100, delta=1) == [100, 100, 100]
    # N_l = N_0 2^(-(2k+d) l / 2): k = 1, d = 2 → a factor 4 per level
    assert sample_counts("optimal", 3, 1024, k=1, d=2) == [1024, 256, 64]
    assert sample_counts("optimal", 2, 1000, k=0.5, d=2) == [1000, round(1000 / 2 ** 1.5)]
    assert sample_counts("prescribed", 3, counts=[50, 20, 20]) == [50, 20, 20]
    assert batch_sizes(4, 16, 2) == [16, 8, 4, 2]
    assert batch_sizes(4, 16, 8) == [16, 2, 1, 1]                                # clamped at one
    assert sample_counts("geometric", 1, 10) == [10] and batch_sizes(1, 5, 4) == [5]


@pytest.mark.parametrize("call, message", [
    (lambda: sample_counts("linear", 3, 10), "unknown progression"),
    (lambda: sample_counts("prescribed", 2, counts=[5, 9]), "non-increasing"),
    (lambda: sample_counts("prescribed", 3, counts=[5, 4]), "needs 3 counts"),
    (lambda: sample_counts("geometric", 0, 10), "levels must be a positive integer"),
    (lambda: sample_counts("geometric", 2, 10, delta=0.5), "delta must be a finite number >= 1"),
    (lambda: batch_sizes(2, 0, 2), "coarsest batch size"),
    (lambda: MultilevelBatcher(10, [10, 5], [4, 6]), "non-increasing"),
    (lambda: MultilevelBatcher(10, [10, 2], [4, 3]), "level 1: batch size 3 exceeds its 2 samples"),
    (lambda: MultilevelBatcher(10, [11], [4]), "<= the 10 samples"),
    (lambda: MultilevelBatcher(10, [10], [4], sampling="sobol"), "unknown sampling"),
])
def test_bad_schedules_are_refused(call, message):
    with pytest.raises(ValueError, match=message):
        call()


# -- batcher ----------------------------------------------------------------------------------

def test_nested_sampling_nests_and_random_sampling_does_not():
    counts = sample_counts("geometric", 4, 64, delta=2)
    nested = MultilevelBatcher(64, counts, batch_sizes(4, 16, 2), "nested", seed=3)
    for epoch in range(3):
        batches = nested.epoch(epoch)
        assert len(batches) == nested.steps_per_epoch == 4
        for sets in batches:
            assert [len(s) for s in sets] == [16, 8, 4, 2]
            for level, s in enumerate(sets):
                assert len(set(s.tolist())) == len(s)                             # no repeats
                assert set(s.tolist()) <= set(nested.level_samples[level].tolist())
                if level:
                    assert set(s.tolist()) <= set(sets[level - 1].tolist())
    # the sample sets themselves nest: the fine data are a subset of the coarse data
    for coarse, fine in zip(nested.level_samples, nested.level_samples[1:]):
        assert set(fine.tolist()) <= set(coarse.tolist())
    random = MultilevelBatcher(64, counts, batch_sizes(4, 16, 2), "random", seed=3)
    pairs = [set(s[1].tolist()) <= set(s[0].tolist()) for e in range(3) for s in random.epoch(e)]
    assert not all(pairs)


def test_random_batches_cover_each_level_and_depend_only_on_seed_and_epoch():
    batcher = MultilevelBatcher(40, [40, 20], [8, 4], "random", seed=1)
    batches = batcher.epoch(0)
    coarse = torch.cat([b[0] for b in batches])
    assert sorted(coarse.tolist()) == list(range(40))                             # one pass over 𝒩_0
    fine = torch.cat([b[1] for b in batches])
    assert sorted(fine.tolist()) == sorted(batcher.level_samples[1].tolist())     # one pass over 𝒩_1
    again = MultilevelBatcher(40, [40, 20], [8, 4], "random", seed=1).epoch(0)
    assert all(torch.equal(a, b) for x, y in zip(batches, again) for a, b in zip(x, y))
    assert not all(torch.equal(a[0], b[0]) for a, b in zip(batches, batcher.epoch(1)))


# -- the MLMC gradient ------------------------------------------------------------------------

class _ToyLevel:
    """x_l = x + c_l z (a "discretisation error" c_l z that shrinks with the level), y = a·x + η."""

    def __init__(self, x, z, y, c):
        self.x, self.y, self.name = x + c * z, y, f"c={c}"

    def __len__(self):
        return len(self.x)

    def batch(self, indices, device):
        return (self.x[indices],), self.y[indices]


def _toy_levels(generator, n, a, cs):
    x = torch.randn(n, len(a), generator=generator, dtype=torch.float64)
    z = torch.randn(n, len(a), generator=generator, dtype=torch.float64)
    y = x @ a + 0.1 * torch.randn(n, generator=generator, dtype=torch.float64)
    return [_ToyLevel(x, z, y[:, None], c) for c in cs]


@pytest.mark.parametrize("sampling", ["random", "nested"])
def test_mlmc_gradient_is_unbiased_for_the_fine_gradient(sampling):
    """For the linear model w·x_l and the squared loss, E ∇ℓ_L = 2((1 + c_L²) w − a) exactly.
    The mean of the MLMC estimate over many independent data draws must match it within
    sampling error, and the coarse-level gradient alone must not."""
    a = torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64)
    w0 = torch.tensor([1.5, 1.0, -2.0], dtype=torch.float64)
    cs = [1.0, 0.5, 0.25]
    exact = 2 * ((1 + cs[-1] ** 2) * w0 - a)
    coarse_exact = 2 * ((1 + cs[0] ** 2) * w0 - a)
    generator = torch.Generator().manual_seed(0)
    draws, coarse = [], []
    for draw in range(400):
        levels = _toy_levels(generator, 64, a, cs)
        model = torch.nn.Linear(3, 1, bias=False).double()
        with torch.no_grad():
            model.weight.copy_(w0[None])
        batcher = MultilevelBatcher(64, sample_counts("geometric", 3, 64, delta=2), [16, 8, 4], sampling, seed=draw)
        trainer = MLMCTrainer(model, levels, batcher, epochs=1, loss="mse", device="cpu", progress=False)
        trainer.accumulate_gradients(batcher.epoch(0)[0])
        draws.append(model.weight.grad[0].clone())
        single = MLMCTrainer(model, levels[:1], MultilevelBatcher(64, [64], [16], seed=draw), epochs=1,
                             loss="mse", device="cpu", progress=False)
        single.accumulate_gradients(single.batcher.epoch(0)[0])
        coarse.append(model.weight.grad[0].clone())
    draws, coarse = torch.stack(draws), torch.stack(coarse)
    stderr = draws.std(dim=0) / math.sqrt(len(draws))
    assert torch.all((draws.mean(dim=0) - exact).abs() < 4 * stderr), (draws.mean(dim=0), exact, stderr)
    # the test can fail: the coarse gradient has another mean, far outside its sampling error
    coarse_stderr = coarse.std(dim=0) / math.sqrt(len(coarse))
    assert torch.any((coarse.mean(dim=0) - exact).abs() > 10 * coarse_stderr)
    assert torch.all((coarse.mean(dim=0) - coarse_exact).abs() < 4 * coarse_stderr)


def test_identical_levels_give_the_single_level_gradient():
    """With the same data at every level all corrections vanish: the MLMC gradient is the
    coarse batch's gradient, exactly."""
    generator = torch.Generator().manual_seed(1)
    x, y = torch.randn(32, 1, 12, generator=generator), torch.randn(32, 1, 12, generator=generator)
    level = GridLevel(x, y)
    model = torch.nn.Conv1d(1, 1, 3, padding=1)
    batcher = MultilevelBatcher(32, [32, 32, 32], [8, 4, 2], "random", seed=0)
    batch = batcher.epoch(0)[0]
    trainer = MLMCTrainer(model, [level] * 3, batcher, epochs=1, device="cpu", progress=False)
    record = trainer.accumulate_gradients(batch)
    mlmc = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    torch.mean((model(x[batch[0]]) - y[batch[0]]) ** 2).backward()
    for g, h in zip(mlmc, model.parameters()):
        torch.testing.assert_close(g, h.grad, rtol=1e-6, atol=1e-7)
    assert record["loss"][1:] == [0.0, 0.0]


class _CountingModel(torch.nn.Module):
    """A per-sample model that counts its forward passes."""

    def __init__(self):
        super().__init__()
        self.conv, self.calls = torch.nn.Conv1d(1, 1, 3, padding=1), 0

    def forward(self, x):
        self.calls += 1
        return torch.tanh(self.conv(x))


@pytest.mark.parametrize("sampling, calls", [("nested", 3), ("random", 5)])
def test_nested_sampling_evaluates_each_resolution_once(sampling, calls):
    """Nested batches share the coarse half of each correction with the coarser level's batch:
    three resolutions cost three forward passes (random: five), and the gradient is still that
    of loss_0(B_0) + Σ_l [loss_l(B_l) − loss_{l−1}(B_l)] evaluated term by term."""
    generator = torch.Generator().manual_seed(3)
    x = torch.randn(24, 1, 16, generator=generator)
    levels = [GridLevel(x[..., ::s], torch.sin(2 * x[..., ::s])) for s in (4, 2, 1)]
    model = _CountingModel()
    batcher = MultilevelBatcher(24, [24, 24, 24], [8, 4, 2], sampling, seed=0)
    batch = batcher.epoch(0)[0]
    trainer = MLMCTrainer(model, levels, batcher, epochs=1, device="cpu", progress=False)
    record = trainer.accumulate_gradients(batch)
    assert model.calls == calls
    got = [p.grad.clone() for p in model.parameters()]

    def loss(level, indices):
        return torch.mean((model(levels[level].inputs[indices]) - levels[level].targets[indices]) ** 2)

    model.zero_grad()
    terms = [loss(0, batch[0])] + [loss(l, batch[l]) - loss(l - 1, batch[l]) for l in (1, 2)]
    sum(terms).backward()
    for g, p in zip(got, model.parameters()):
        torch.testing.assert_close(g, p.grad, rtol=1e-5, atol=1e-7)
    assert record["loss"] == pytest.approx([float(t.detach()) for t in terms], rel=1e-5, abs=1e-7)


def test_nested_evaluation_of_graph_batches_takes_whole_graphs():
    """GraphLevel.head keeps the nodes of the first graphs of a disjoint union."""
    from fem_ms_torch.mlmc import GraphLevel

    pos = torch.rand(5, 2)
    edges = torch.tensor([[0, 1, 2, 3], [1, 2, 3, 4]])
    level = GraphLevel(pos, edges, torch.arange(30.0).view(3, 5, 2), torch.arange(30.0).view(3, 5, 2))
    (x, *_), target = level.batch(torch.tensor([2, 0, 1]), "cpu")
    out, tgt = level.head(x, target, 2)
    first_two = level.batch(torch.tensor([2, 0]), "cpu")
    torch.testing.assert_close(out, first_two[0][0])
    torch.testing.assert_close(tgt, first_two[1])


def test_one_level_run_equals_a_plain_training_loop(tmp_path):
    """The single-level baseline is the MLMC trainer with one level; it must train exactly as
    the textbook loop (Adam, cosine schedule) over the same batches."""
    generator = torch.Generator().manual_seed(2)
    x, y = torch.randn(20, 2, 10, generator=generator), torch.randn(20, 1, 10, generator=generator)
    level = GridLevel(x, y)

    def model():
        torch.manual_seed(5)
        return torch.nn.Conv1d(2, 1, 3, padding=1)

    trainer = train_single_level(model(), level, epochs=3, batch_size=6, seed=4, lr=1e-2, device="cpu",
                                 progress=False, loss="relative_l2")
    plain = model()
    optimizer = torch.optim.Adam(plain.parameters(), lr=1e-2)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=3)
    batcher = MultilevelBatcher(20, [20], [6], seed=4)
    for epoch in range(3):
        for (indices,) in batcher.epoch(epoch):
            pred, target = plain(x[indices]), y[indices]
            loss = ((pred - target).flatten(1).norm(dim=1) / target.flatten(1).norm(dim=1)).mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        scheduler.step()
    for p, q in zip(trainer.model.parameters(), plain.parameters()):
        torch.testing.assert_close(p, q, rtol=0, atol=0)
    assert len(trainer.history) == 3 and trainer.history[0]["steps"] == 4


@pytest.mark.parametrize("sampling", ["random", "nested"])
def test_interrupted_run_resumes_to_the_same_weights(tmp_path, sampling):
    generator = torch.Generator().manual_seed(3)
    x = torch.randn(24, 1, 16, generator=generator)
    levels = [GridLevel(x[..., ::2], torch.sin(x[..., ::2])), GridLevel(x, torch.sin(x))]

    def trainer(path):
        torch.manual_seed(0)
        model = torch.nn.Conv1d(1, 1, 3, padding=1)
        batcher = MultilevelBatcher(24, [24, 12], [8, 4], sampling, seed=1)
        return MLMCTrainer(model, levels, batcher, epochs=4, checkpoint=path, device="cpu", progress=False,
                           validation_level=levels[-1], validate_every=2)

    whole = trainer(tmp_path / "whole.pt")
    whole.train()
    with pytest.raises(KeyboardInterrupt), killed_after_saves(2):  # killed after its second epoch
        trainer(tmp_path / "cut.pt").train()
    resumed = trainer(tmp_path / "cut.pt")
    resumed.train()
    assert len(resumed.history) == 4
    for p, q in zip(whole.model.parameters(), resumed.model.parameters()):
        torch.testing.assert_close(p, q, rtol=0, atol=0)
    for a, b in zip(whole.history, resumed.history):
        assert a["level_loss"] == b["level_loss"] and a.get("val_loss") == b.get("val_loss")
    assert [("val_loss" in r) for r in whole.history] == [False, True, False, True]
    state = load_checkpoint(tmp_path / "cut.pt")
    assert state["runs"]["model"]["epochs_done"] == 4 and state["config"]["counts"] == [24, 12]
    with pytest.raises(FileExistsError, match="other settings"):
        MLMCTrainer(torch.nn.Conv1d(1, 1, 3, padding=1), levels, MultilevelBatcher(24, [24, 12], [8, 2]),
                    epochs=4, checkpoint=tmp_path / "cut.pt", device="cpu", progress=False)
    with pytest.raises(ValueError, match="not a registered one"):  # a plain Conv1d: weights only
        load_model(tmp_path / "cut.pt")


def test_a_non_finite_loss_stops_training_naming_the_epoch_and_step():
    x = torch.randn(8, 1, 6)
    y = torch.randn(8, 1, 6)
    y[5, 0, 2] = float("nan")  # one bad target: the step whose batch holds it fails
    batcher = MultilevelBatcher(8, [8], [4], seed=0)
    trainer = MLMCTrainer(torch.nn.Conv1d(1, 1, 3, padding=1), [GridLevel(x, y)], batcher, epochs=2, device="cpu",
                          progress=False)
    step = next(k for k, (indices,) in enumerate(batcher.epoch(0)) if 5 in indices.tolist())
    with pytest.raises(NonFiniteLossError, match=f"MLMC: the level-0 loss term at epoch 1, step {step + 1} is nan"):
        trainer.train()


def test_trainer_refuses_mismatched_levels():
    level = GridLevel(torch.zeros(10, 1, 4), torch.zeros(10, 1, 4))
    with pytest.raises(ValueError, match="2 levels of data but the batcher has 1"):
        MLMCTrainer(torch.nn.Identity(), [level, level], MultilevelBatcher(10, [10], [2]), epochs=1)
    with pytest.raises(ValueError, match="unknown loss"):
        MLMCTrainer(torch.nn.Identity(), [level], MultilevelBatcher(10, [10], [2]), epochs=1, loss="l3")


@pytest.mark.slow  # generates a dataset through Firedrake
def test_train_mlmc_cli_runs_a_config_and_resumes(tmp_path, capsys):
    from fem_ms.cli import main
    from fem_ms.data import MultilevelConfig, generate

    data = generate(MultilevelConfig(name="m", samples=10, levels=(4, 8, 16), train_fraction=0.8), tmp_path,
                    progress=False)
    config = tmp_path / "mlmc.toml"
    config.write_text(f"""
[data]
kind = "multilevel"
path = "{data}"
levels = [4, 8, 16]
[model]
architecture = "ffno"
width = 8
depth = 2
modes = 4
[mlmc]
progression = "geometric"
delta = 2
batch_size = 4
sampling = "nested"
[train]
epochs = 2
checkpoint = "{tmp_path / 'run.pt'}"
device = "cpu"
validation_split = "test"
""")
    assert main(["train-mlmc", str(config)]) == 0
    import json

    summary = json.loads((tmp_path / "run.json").read_text())
    assert summary["counts"] == [8, 4, 2] and summary["batch_sizes"] == [4, 2, 1]
    assert len(summary["history"]) == 2 and np.isfinite(summary["test_loss_finest"])
    # validated on the finest level of the test split after every epoch: the last is the test loss
    assert summary["history"][-1]["val_loss"] == pytest.approx(summary["test_loss_finest"], rel=1e-12)
    assert main(["train-mlmc", str(config)]) == 0                    # resumed: nothing left to train
    assert json.loads((tmp_path / "run.json").read_text())["history"] == summary["history"]
    model = load_model(tmp_path / "run.pt")                           # the FFNO, rebuilt from its record
    assert type(model).__name__ == "FFNO" and load_checkpoint(tmp_path / "run.pt")["models"]["model"]["normaliser"]
    assert main(["train-mlmc", str(config), "--device", "tpu"]) == 2  # --device reaches [train]
    assert "train-mlmc config [train]: device must be 'cpu', 'cuda' or 'cuda:N', got 'tpu'" in capsys.readouterr().err
    config.write_text(config.read_text().replace("[train]", "[train]\nbatch = 3"))
    assert main(["train-mlmc", str(config)]) == 2                    # a usage error, in one line:
    assert "mlmc.toml: train-mlmc config [train]: unknown key 'batch'" in capsys.readouterr().err


@pytest.mark.slow  # generates a dataset through Firedrake and trains six small FNOs
def test_mlmc_training_demo(repo, tmp_path):
    import subprocess
    import sys

    out = subprocess.run(
        [sys.executable, str(repo / "demos" / "mlmc_training.py"), "--samples", "20", "--epochs", "1", "--width", "4",
         "--out-dir", str(tmp_path)], check=True, capture_output=True, text=True).stdout
    rows = [line for line in out.splitlines() if line.startswith(("single-level", "mlmc"))]
    assert len(rows) == 6 and all(np.isfinite(float(r.split()[-2])) for r in rows)
    assert (tmp_path / "mlmc_training.png").stat().st_size > 10_000


def _distributed_gradient(rank, world, port, out):
    torch.distributed.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank,
                                         world_size=world)
    try:
        generator = torch.Generator().manual_seed(7)
        x = torch.randn(16, 1, 8, generator=generator)
        levels = [GridLevel(x[..., ::2], torch.cos(x[..., ::2])), GridLevel(x, torch.cos(x))]
        torch.manual_seed(rank)  # different initial weights: the trainer must broadcast rank 0's
        model = torch.nn.Conv1d(1, 1, 3, padding=1)
        batcher = MultilevelBatcher(16, [16, 8], [8, 4], "random", seed=0)
        trainer = MLMCTrainer(model, levels, batcher, epochs=1, device="cpu", progress=False)
        trainer.accumulate_gradients(batcher.epoch(0)[0])
        if rank == 0:
            torch.save([p.detach().clone() for p in model.parameters()] + [p.grad.clone() for p in model.parameters()],
                       out)
    finally:
        torch.distributed.destroy_process_group()


@pytest.mark.slow  # spawns two processes
def test_data_parallel_gradient_equals_the_single_process_gradient(tmp_path):
    """Two gloo ranks, each with half of every level's batch, average to the one-process gradient."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    torch.multiprocessing.spawn(_distributed_gradient, args=(2, port, tmp_path / "dist.pt"), nprocs=2)
    weights_and_grads = torch.load(tmp_path / "dist.pt", weights_only=True)
    generator = torch.Generator().manual_seed(7)
    x = torch.randn(16, 1, 8, generator=generator)
    levels = [GridLevel(x[..., ::2], torch.cos(x[..., ::2])), GridLevel(x, torch.cos(x))]
    torch.manual_seed(0)
    model = torch.nn.Conv1d(1, 1, 3, padding=1)
    batcher = MultilevelBatcher(16, [16, 8], [8, 4], "random", seed=0)
    trainer = MLMCTrainer(model, levels, batcher, epochs=1, device="cpu", progress=False)
    trainer.accumulate_gradients(batcher.epoch(0)[0])
    expected = [p.detach() for p in model.parameters()] + [p.grad for p in model.parameters()]
    for a, b in zip(weights_and_grads, expected):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
