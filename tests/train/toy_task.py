"""A tiny regression task for testing the training engine itself (not a model of ours)."""
from __future__ import annotations

import torch
from torch import nn
from torch.utils.data import TensorDataset


class ToyModel(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Dropout(0.2), nn.Linear(16, 1))

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return nn.functional.mse_loss(self.net(x).squeeze(-1), y)


class ToyTask:
    name = "toy"

    def __init__(self, n: int = 64, seed: int = 123) -> None:
        g = torch.Generator().manual_seed(seed)
        x = torch.randn(n, 4, generator=g)
        y = x @ torch.tensor([1.0, -2.0, 0.5, 3.0]) + 0.1 * torch.randn(n, generator=g)
        self.train_set = TensorDataset(x[: n * 3 // 4], y[: n * 3 // 4])
        self.val_set = TensorDataset(x[n * 3 // 4:], y[n * 3 // 4:])

    def build_model(self) -> nn.Module:
        return ToyModel()

    def datasets(self):
        return self.train_set, self.val_set

    def collate(self, batch):
        xs, ys = zip(*batch)
        return torch.stack(xs), torch.stack(ys)

    def loss(self, model, batch, device):
        x, y = (t.to(device) for t in batch)
        loss = model(x, y)
        return loss, {"mse": float(loss.detach())}

    def validate(self, model, dataset, device):
        x, y = dataset.tensors
        return {"val_loss": float(model(x.to(device), y.to(device)))}
