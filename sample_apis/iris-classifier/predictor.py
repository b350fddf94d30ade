"""Classify iris flowers with a scikit-learn LogisticRegression trained at start-up."""

from __future__ import annotations

import math
from collections import Counter
from typing import Any

from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

# Item keys in the column order of sklearn's bundled iris data.
FEATURES = ("sepal_length", "sepal_width", "petal_length", "petal_width")


class PythonPredictor:
    """Predict an iris species ("setosa", "versicolor", "virginica") for each item."""

    def __init__(self, config: dict[str, Any], job_spec: dict[str, Any]) -> None:
        # Training on the bundled data takes milliseconds, works offline and never
        # depends on a pickle made by another scikit-learn version.
        iris = load_iris()
        self.model = LogisticRegression(
            C=float(config.get("C", 1.0)),
            max_iter=int(config.get("max_iter", 1000)),
            random_state=0,
        )
        self.model.fit(iris.data, iris.target)
        self.labels = [str(name) for name in iris.target_names]
        self.job_id = job_spec.get("job_id", "?")
        self.counts: Counter[str] = Counter()
        accuracy = self.model.score(iris.data, iris.target)
        print(f"iris model trained for job {self.job_id}: training accuracy {accuracy:.3f}")

    def predict(self, payload: list[Any], batch_id: str) -> list[str]:
        """Return one species label per item of the batch."""
        rows = [_features(item, index) for index, item in enumerate(payload)]
        if not rows:
            return []
        labels = [self.labels[int(k)] for k in self.model.predict(rows)]
        self.counts.update(labels)
        summary = ", ".join(f"{name}={n}" for name, n in sorted(Counter(labels).items()))
        print(f"batch {batch_id}: {len(labels)} items -> {summary}")
        return labels

    def on_job_complete(self, job_summary: dict[str, Any]) -> None:
        """Print the job's batch counts and what this worker predicted."""
        seen = ", ".join(f"{name}={n}" for name, n in sorted(self.counts.items())) or "nothing"
        print(
            f"job {job_summary['job_id']} complete: {job_summary['succeeded']} of "
            f"{job_summary['total']} batches succeeded, {job_summary['failed']} failed; "
            f"this worker predicted {seen}"
        )


def _features(item: Any, index: int) -> list[float]:
    """Return the item's measurements in model order, or raise a ValueError naming the problem."""
    if not isinstance(item, dict):
        raise ValueError(
            f"item {index}: expected an object with keys {', '.join(FEATURES)}, "
            f"got {type(item).__name__}"
        )
    row = []
    for key in FEATURES:
        if key not in item:
            raise ValueError(f"item {index}: missing key {key!r} (expected {', '.join(FEATURES)})")
        value = item[key]
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
        ):
            raise ValueError(f"item {index}: {key!r} must be a finite number, got {value!r}")
        row.append(float(value))
    return row
