"""Head training on cached features, step for step what `Trainer.train()` does, without its per-step
bookkeeping (callbacks, logging checks, accelerate's wrappers: about 1.5 ms a step, which dominates when the
model is one Linear layer and a protocol is 16,000 steps).

Parity is by construction, not by imitation: the batches come from the Trainer's own prepared train dataloader
(same sampler, same per-epoch `set_epoch`, same RNG draws), the optimizer and the lr schedule from the Trainer's
own `create_optimizer_and_scheduler`, and each step is the Trainer's: train mode, forward, backward, gradient
clipping to `max_grad_norm`, optimizer step, scheduler step, zero_grad. tests/test_feature_cache.py checks the
result against the Trainer path to 1e-4. Settings this loop does not cover fall back to `trainer.train()`.

`train_many` trains several seeds' heads at once when the head is one Linear layer without dropout (GPT-2's
`score`): AdamW is elementwise, so one optimizer over the seeds' stacked weights computes exactly what one
optimizer per seed does; gradient clipping is done per seed; each seed's batches are its own Trainer
dataloader's, drawn right after that seed's `set_seed`, as on the Trainer path. One step then costs about what
one seed's step costs, which is what brings 5 seeds x 3 epochs close to the cost of the base forward alone.
"""

import time

import torch
from torch import nn
from transformers import Trainer, set_seed


def epoch_batches(loader, epoch):
    """Iterate the Trainer's prepared dataloader for one epoch, after the same set_epoch calls Trainer makes
    (accelerate's DataLoaderShard does not forward set_epoch to a wrapped batch sampler)."""
    if hasattr(loader, "set_epoch"):
        loader.set_epoch(epoch)
    inner = getattr(getattr(loader, "batch_sampler", None), "batch_sampler", None)
    if hasattr(inner, "set_epoch"):
        inner.set_epoch(epoch)
    return iter(loader)


def supported(args) -> bool:
    return (args.gradient_accumulation_steps == 1 and args.max_steps <= 0 and float(args.num_train_epochs).is_integer()
            and not args.deepspeed and args.report_to in ([], None, "none", ["none"]) and args.world_size == 1)


def train(trainer) -> dict:
    """Train trainer.model (a CachedHead) and return the Trainer's train metrics."""
    args, model = trainer.args, trainer.model
    if not supported(args):
        return trainer.train().metrics
    set_seed(args.seed)  # the RNG state right after Trainer.__init__, as trainer.train() would start from
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
        for batch in epoch_batches(dataloader, epoch):
            model.train()
            loss = model(features=batch["features"].to(device), labels=batch["labels"].to(device))["loss"]
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


def _single_linear(head):
    """The head's only Linear when it has nothing else that acts in training (no active dropout), else None."""
    linears = [m for m in head.modules() if isinstance(m, nn.Linear)]
    dropout = any(isinstance(m, nn.Dropout) and m.p > 0 for m in head.modules())
    return linears[0] if len(linears) == 1 and not dropout and head.rule == "last_non_pad" else None


def train_many(trainers) -> list:
    """Train every trainer's CachedHead (one per seed, same arguments but the seed); their metrics in order."""
    args = trainers[0].args
    linears = [_single_linear(t.model) for t in trainers]
    if len(trainers) == 1 or not supported(args) or any(lin is None for lin in linears):
        return [train(t) for t in trainers]
    epochs = int(args.num_train_epochs)
    orders = []
    for t in trainers:  # each seed's batch order, drawn as its own Trainer path would draw it
        set_seed(t.args.seed)
        loader = t.get_train_dataloader()
        orders.append([batch["index"] for epoch in range(epochs) for batch in epoch_batches(loader, epoch)])
    head = trainers[0].model
    features, labels = trainers[0].train_dataset.features, trainers[0].train_dataset.labels
    weight = nn.Parameter(torch.stack([lin.weight.detach() for lin in linears]))          # seeds x out x in
    bias = nn.Parameter(torch.stack([lin.bias.detach() for lin in linears])) if linears[0].bias is not None else None
    groups = [{"params": [weight], "weight_decay": args.weight_decay}]  # Trainer: no decay on biases
    if bias is not None:
        groups.append({"params": [bias], "weight_decay": 0.0})
    optimizer_cls, optimizer_kwargs = Trainer.get_optimizer_cls_and_kwargs(args, head)
    optimizer = optimizer_cls(groups, **optimizer_kwargs)
    steps = len(orders[0])
    scheduler = trainers[0].create_scheduler(num_training_steps=steps, optimizer=optimizer)
    params = [p for p in (weight, bias) if p is not None]
    losses = torch.zeros(len(trainers))
    started = time.time()
    for step in range(steps):
        index = torch.stack([order[step] for order in orders])                              # seeds x batch
        logits = torch.bmm(features[index], weight.transpose(1, 2))                         # seeds x batch x out
        if bias is not None:
            logits = logits + bias[:, None, :]
        gold = labels[index]
        if head.problem_type == "regression":
            per_seed = ((logits.squeeze(-1) - gold) ** 2).mean(1)
        else:
            per_seed = nn.functional.cross_entropy(logits.flatten(0, 1), gold.flatten(), reduction="none") \
                .view(index.shape).mean(1)
        per_seed.sum().backward()  # seeds do not interact: each slice gets its own seed's gradient
        losses += per_seed.detach()
        if args.max_grad_norm and args.max_grad_norm > 0:  # clip_grad_norm_, per seed
            norms = torch.linalg.vector_norm(torch.stack([p.grad.flatten(1).norm(dim=1) for p in params]), dim=0)
            scale = (args.max_grad_norm / (norms + 1e-6)).clamp(max=1.0)
            for p in params:
                p.grad.mul_(scale.view(-1, *[1] * (p.dim() - 1)))
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad()
    runtime = (time.time() - started) / len(trainers)  # shared time, split evenly between the seeds
    with torch.no_grad():
        for i, lin in enumerate(linears):
            lin.weight.copy_(weight[i])
            if bias is not None:
                lin.bias.copy_(bias[i])
    samples = len(features) * epochs
    return [{"train_runtime": round(runtime, 4), "train_samples_per_second": round(samples / runtime, 3),
             "train_steps_per_second": round(steps / runtime, 3), "train_loss": losses[i].item() / steps,
             "epoch": float(epochs)} for i in range(len(trainers))]
