"""--probe logistic: scikit-learn's logistic regression (ridge for STS-B) on the cached features, regularisation
chosen by 5-fold cross-validation on train — the convex, optimiser-free probe of SentEval/MTEB — dressed as a
Trainer (predict, state) so that writer.py writes its run folder like any other. Must not read data or models."""

import numpy as np
import torch
from sklearn.linear_model import LogisticRegressionCV, RidgeCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from transformers import TrainerState
from transformers.trainer_utils import PredictionOutput

GRID = np.logspace(-4, 4, 9)  # C for logistic regression, alpha for ridge
DESCRIPTION = (f"scikit-learn LogisticRegressionCV (RidgeCV for regression) on standardised features, L2 with C "
               f"(alpha) from {GRID[0]:g} to {GRID[-1]:g} chosen by 5-fold cross-validated log loss on train")


class LogisticProbe:
    """Fit once on the train features (deterministic: every seed gets the same probe); `predict` and `state` are
    what evaluation.evaluate and writer.finish read from a Trainer."""

    def __init__(self, regression: bool):
        # L2 (l1_ratios 0), C chosen by log loss (a proper scoring rule, smoother than accuracy on few rows)
        model = RidgeCV(alphas=GRID) if regression else LogisticRegressionCV(
            Cs=GRID, cv=5, max_iter=2000, l1_ratios=(0.0,), scoring="neg_log_loss", use_legacy_attributes=False)
        self.pipeline = make_pipeline(StandardScaler(), model)
        self.regression = regression
        self.state = TrainerState()

    def fit(self, dataset) -> dict:
        features, labels = dataset.features.float().numpy(), dataset.labels.numpy()
        self.pipeline.fit(features, labels)
        model = self.pipeline[-1]
        chosen = float(model.alpha_) if self.regression else float(np.ravel(model.C_)[0])
        return {"train_samples": len(labels), "probe": "logistic", f"probe_{'alpha' if self.regression else 'C'}":
                chosen}

    def is_world_process_zero(self):
        return True

    def predict(self, dataset, metric_key_prefix="eval"):
        features = dataset.features.float().numpy()
        if self.regression:
            logits = self.pipeline.predict(features).reshape(-1, 1)
        else:
            logits = self.pipeline.predict_log_proba(features)  # softmax of log-probabilities = probabilities
        labels = None if dataset.labels is None else dataset.labels.numpy()
        return PredictionOutput(predictions=logits, label_ids=labels, metrics={})

    def state_dict(self) -> dict:
        """head.safetensors: the standardisation and the linear map."""
        scaler, model = self.pipeline[0], self.pipeline[-1]
        tensors = {"probe.mean": scaler.mean_, "probe.scale": scaler.scale_, "probe.coef": np.atleast_2d(model.coef_),
                   "probe.intercept": np.atleast_1d(model.intercept_)}
        return {k: torch.tensor(np.asarray(v), dtype=torch.float32).contiguous() for k, v in tensors.items()}
