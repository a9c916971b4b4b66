"""The standalone baseline: an F-FNO trained to map κ (and f) straight to u on the fine grid.

Trained on a ``multilevel`` dataset level (κ, optionally f → u), with the relative L2 loss, the
same optimiser and schedule as the GMsFEM-NO models. It exists to be compared with GMsFEM-NO:
a solution operator learned for one forcing does not transfer to another, a local basis does.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from .basis.checkpoint import save_checkpoint
from .basis.features import patch_features
from .data import MultilevelDataset
from .operators import FFNO

__all__ = ["train_standalone", "StandaloneSolver"]


def _inputs(kappa: torch.Tensor, f: torch.Tensor, mean: float, std: float) -> torch.Tensor:
    return torch.cat([patch_features(kappa, mean, std), f[:, None]], dim=1)


def train_standalone(dataset, level: int, out, epochs: int = 50, batch_size: int = 8, lr: float = 1e-3,
                     width: int = 32, depth: int = 4, modes: int = 16, seed: int = 0,
                     device: str | None = None, progress: bool = True) -> Path:
    """Train κ (+ f) → u on one level of a multilevel dataset; f = 1 where the set has no f."""
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    data = MultilevelDataset(dataset, level, "train")
    kappas = torch.stack([data[i]["kappa"][0] for i in range(len(data))]).double()
    mean, std = float(torch.log(kappas).mean()), float(torch.log(kappas).std().clamp_min(1e-6))
    # the network predicts u / scale, so that its outputs are O(1)
    scale = float(torch.stack([data[i]["u"] for i in range(len(data))]).abs().max().clamp_min(1e-30))
    torch.manual_seed(seed)
    model = FFNO(4, 1, dim=2, width=width, depth=depth, modes=modes).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs)
    loader = DataLoader(data, batch_size=batch_size, shuffle=True, generator=torch.Generator().manual_seed(seed))
    for _ in tqdm(range(epochs), desc="standalone F-FNO", unit="epoch", disable=not progress):
        for batch in loader:
            kappa, u = batch["kappa"][:, 0].to(device), batch["u"].to(device)
            f = batch["f"][:, 0].to(device) if "f" in batch else torch.ones_like(u[:, 0])
            pred = scale * model(_inputs(kappa, f, mean, std))
            loss = ((pred - u).flatten(1).norm(dim=1) / u.flatten(1).norm(dim=1)).mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        scheduler.step()
    save_checkpoint(out, {"kind": "standalone", "model": model.config, "state_dict": model.state_dict(),
                          "log_kappa_mean": mean, "log_kappa_std": std, "level": level, "scale": scale})
    return Path(out)


class StandaloneSolver:
    """Predicts u on the (n+1)² vertex grid from κ (n² cells) and f ((n+1)² vertices)."""

    def __init__(self, checkpoint):
        from .basis.checkpoint import load_checkpoint

        self.entry = load_checkpoint(checkpoint)
        model = FFNO(**self.entry["model"])
        model.load_state_dict(self.entry["state_dict"])
        self.model = model.eval()

    def __call__(self, kappa, f) -> torch.Tensor:
        kappa = torch.as_tensor(kappa, dtype=torch.float32)[None]
        f = torch.as_tensor(f, dtype=torch.float32)[None]
        with torch.inference_mode():
            x = _inputs(kappa, f, self.entry["log_kappa_mean"], self.entry["log_kappa_std"])
            return self.entry["scale"] * self.model(x)[0, 0]
