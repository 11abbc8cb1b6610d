"""Experiment tracking: one W&B run per seed (`<model>/<task>/seed<N>`, grouped by model x task), logged from what
the run folder records — the train log history and the final metrics — so both paths report alike. Must not
touch training or decide what a run computes; it is called only when --report_to names wandb."""

import os


def wandb_key(key: str) -> str:
    """The Trainer's W&B naming: eval_<metric> -> eval/<metric>; everything else under train/ (train/loss,
    train/train_loss)."""
    return f"eval/{key.removeprefix('eval_')}" if key.startswith("eval_") else f"train/{key}"


def log_to_wandb(name, group, config, history, results):
    """One W&B run: the history entries at their steps, then the final metrics, then finish."""
    import wandb

    # project and dir from the environment at each run (wandb's settings singleton would keep the first ones)
    run = wandb.init(project=os.environ.get("WANDB_PROJECT", "frozen-glue"), dir=os.environ.get("WANDB_DIR"),
                     name=name, group=group, config=config)
    try:
        step = 0
        for entry in history:
            step = entry.get("step", step)
            run.log({wandb_key(k): v for k, v in entry.items() if k != "step" and isinstance(v, (int, float))},
                    step=step)
        final = {wandb_key(k): v for k, v in results.items() if isinstance(v, (int, float))}
        run.log(final, step=step)
        run.summary.update(final)
    finally:
        run.finish()
