"""Head training on cached features, step for step what `Trainer.train()` does, without its per-step
bookkeeping (callbacks, logging checks, accelerate's wrappers: about 1.5 ms a step, which dominates when the
model is one Linear layer and a protocol is 16,000 steps).

Parity is by construction, not by imitation: the batches come from the Trainer's own prepared train dataloader
(same sampler, same per-epoch `set_epoch`, same RNG draws), the optimizer and the lr schedule from the Trainer's
own `create_optimizer_and_scheduler`, and each step is the Trainer's: train mode, forward, backward, gradient
clipping to `max_grad_norm`, optimizer step, scheduler step, zero_grad. tests/test_feature_cache.py checks the
result against the Trainer path to 1e-4. Settings this loop does not cover fall back to `trainer.train()`.
"""

import time

import torch


def supported(args) -> bool:
    return (args.gradient_accumulation_steps == 1 and args.max_steps <= 0 and float(args.num_train_epochs).is_integer()
            and not args.deepspeed and args.report_to in ([], None, "none", ["none"]) and args.world_size == 1)


def train(trainer) -> dict:
    """Train trainer.model (a CachedHead) and return the Trainer's train metrics."""
    args, model = trainer.args, trainer.model
    if not supported(args):
        return trainer.train().metrics
    dataloader = trainer.get_train_dataloader()
    epochs = int(args.num_train_epochs)
    steps = epochs * len(dataloader)
    trainer.create_optimizer_and_scheduler(num_training_steps=steps)
    optimizer, scheduler = trainer.optimizer, trainer.lr_scheduler
    params = [p for p in model.parameters() if p.requires_grad]
    device = args.device
    model.to(device)
    model.zero_grad()
    total_loss = torch.zeros((), device=device)
    started = time.time()
    for epoch in range(epochs):
        if hasattr(dataloader, "set_epoch"):
            dataloader.set_epoch(epoch)
        inner = getattr(getattr(dataloader, "batch_sampler", None), "batch_sampler", None)
        if hasattr(inner, "set_epoch"):
            inner.set_epoch(epoch)
        for batch in dataloader:
            model.train()
            loss = model(**{k: v.to(device) for k, v in batch.items()})["loss"]
            loss.backward()
            total_loss += loss.detach()
            if args.max_grad_norm and args.max_grad_norm > 0:
                torch.nn.utils.clip_grad_norm_(params, args.max_grad_norm)
            optimizer.step()
            scheduler.step()
            model.zero_grad()
    runtime = time.time() - started
    samples = len(dataloader.dataset) * epochs
    return {"train_runtime": round(runtime, 4), "train_samples_per_second": round(samples / runtime, 3),
            "train_steps_per_second": round(steps / runtime, 3), "train_loss": total_loss.item() / max(steps, 1),
            "epoch": float(epochs)}
