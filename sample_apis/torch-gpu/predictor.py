"""Run a tiny deterministic PyTorch MLP on the GPU when there is one, else on the CPU."""

from __future__ import annotations

import math
import os
from typing import Any

IN_FEATURES = 4


class PythonPredictor:
    """Return the MLP's logits for each item (a list of 4 numbers) and the device that ran it."""

    def __init__(self, config: dict[str, Any]) -> None:
        try:
            import torch
        except ImportError as e:
            raise RuntimeError(
                "torch is not installed in this worker's Python environment: "
                "run `pip install torch` there (or `pip install -r requirements.txt` in this "
                "API's directory), or point predictor.python_path / predictor.image in "
                "cortex.yaml at an environment that has it"
            ) from e
        self.torch = torch

        visible = os.environ.get("CUDA_VISIBLE_DEVICES", "unset")
        if torch.cuda.is_available():
            self.device = torch.device("cuda")
            name = torch.cuda.get_device_name(self.device)
            print(
                f"device: cuda ({name}), CUDA_VISIBLE_DEVICES={visible}, torch {torch.__version__}",
                flush=True,
            )
        else:
            self.device = torch.device("cpu")
            print(
                f"device: cpu, CUDA_VISIBLE_DEVICES={visible}, torch {torch.__version__}",
                flush=True,
            )

        torch.manual_seed(int(config.get("seed", 0)))
        hidden = int(config.get("hidden", 16))
        classes = int(config.get("classes", 3))
        self.model = torch.nn.Sequential(
            torch.nn.Linear(IN_FEATURES, hidden),
            torch.nn.ReLU(),
            torch.nn.Linear(hidden, classes),
        ).to(self.device)
        self.model.eval()

    def predict(self, payload: list[Any], batch_id: str) -> list[dict[str, Any]]:
        """Run the whole batch through the model in one forward pass."""
        rows = [_row(item, index) for index, item in enumerate(payload)]
        if not rows:
            return []
        torch = self.torch
        with torch.inference_mode():
            inputs = torch.tensor(rows, dtype=torch.float32, device=self.device)
            logits = self.model(inputs)
        device = str(logits.device)
        print(f"batch {batch_id}: {len(rows)} items on {device}", flush=True)
        return [{"logits": row, "device": device} for row in logits.cpu().tolist()]


def _row(item: Any, index: int) -> list[float]:
    """Return the item as 4 floats, or raise a ValueError naming the item."""
    if (
        not isinstance(item, list)
        or len(item) != IN_FEATURES
        or not all(
            isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x)
            for x in item
        )
    ):
        raise ValueError(f"item {index}: expected a list of {IN_FEATURES} numbers, got {item!r}")
    return [float(x) for x in item]
