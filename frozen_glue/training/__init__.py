"""Heads on features: the model's own head modules applied to cached features (cached_head), their Trainers
(trainers), the fast loop that trains every seed's head at once step for step as Trainer.train() (head_training,
stacked), the head setting chosen on a train hold-out (selection), the convex probe (logistic) and evaluation of a
trained head (evaluation).

Imports: core, measures, model. Imported by: science, run."""
