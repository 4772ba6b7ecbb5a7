"""Train your own model (a plain MLP) on `rigid/projectile` with a data loss plus two physics
losses from `physground.losses`. Run: python examples/train_own_model.py --steps 200"""

import argparse
import tempfile
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from physground import losses as PL
from physground.learned.torch_dataset import WindowDataset, collate_windows
from physground.metrics.quantities import finite_difference_acceleration
from physground.storage import DatasetSpec, generate_dataset

CONTEXT, HORIZON = 2, 8


def main(steps: int = 200, root: str | None = None) -> list[float]:
    """Train for ``steps`` batches; returns the physics loss of every step."""
    torch.manual_seed(0)
    spec = DatasetSpec(scenario="rigid/projectile", split="train", count=16)
    data = generate_dataset(spec, Path(root or tempfile.mkdtemp()), progress=False)
    windows = WindowDataset(data, context=CONTEXT, horizon=HORIZON, states=["pos"])
    loader = DataLoader(windows, batch_size=64, shuffle=True, collate_fn=collate_windows)
    model = torch.nn.Sequential(torch.nn.Linear(CONTEXT * 3 + 2, 128), torch.nn.Tanh(),
                                torch.nn.Linear(128, HORIZON * 3))  # yours: any nn.Module
    optimizer, history = torch.optim.Adam(model.parameters(), lr=1e-3), []
    while len(history) < steps:
        for batch in loader:
            ctx, target = batch["context"]["pos"], batch["target"]["pos"]  # [B, T, 1, 3] m
            radius, ground = batch["static"]["radius"], batch["static"]["ground_height"]
            inputs = torch.cat([ctx.flatten(1), radius, ground[:, None]], dim=1)  # visible only
            pred = ctx[:, -1:] + model(inputs).view(-1, HORIZON, 1, 3)
            # supervision may use latent truth (gravity); the model above never reads it
            gravity = torch.stack([torch.as_tensor(windows.rollouts[i].static["gravity"])
                                   for i in batch["rollout"].tolist()]).float()
            dt, truth = float(batch["dt"][0]), torch.cat([ctx, target], dim=1)
            accel = finite_difference_acceleration(truth.movedim(1, 0), dt)
            free = (accel.movedim(0, 1) - gravity[:, None, None]).norm(dim=-1) < 0.5  # no bounce
            path = torch.cat([ctx, pred], dim=1)
            physics = PL.ballistic_residual(path, dt, gravity, free) \
                + PL.ground_penetration_loss(path, radius[:, None], ground[:, None, None])
            loss = ((pred - target) ** 2).mean() + 0.1 * physics
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            history.append(physics.item())
            print(f"step {len(history)}: loss {loss.item():.4f} physics {history[-1]:.4f}")
            if len(history) == steps:
                break
    return history


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--root", default=None, help="dataset directory (default: a temp dir)")
    main(**vars(parser.parse_args()))
