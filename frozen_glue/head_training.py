"""Head training on cached features, step for step what `Trainer.train()` does, without its per-step
bookkeeping (callbacks, logging checks, accelerate's wrappers: about 1.5 ms a step, which dominates when the
model is one Linear layer and a protocol is 16,000 steps).

Parity is by construction, not by imitation: the batches come from the Trainer's own prepared train dataloader
(same sampler, same per-epoch `set_epoch`, same RNG draws), the optimizer and the lr schedule from the Trainer's
own `create_optimizer_and_scheduler`, and each step is the Trainer's: train mode, forward, backward, gradient
clipping to `max_grad_norm`, optimizer step, scheduler step, zero_grad. tests/test_feature_cache.py checks the
result against the Trainer path to 1e-4. Settings this loop does not cover fall back to `trainer.train()`.

`train_many` trains several seeds' heads at once when the head is one Linear layer, after a dropout or not
(GPT-2's `score`, BERT's `dropout` + `classifier`): AdamW is elementwise, so one optimizer over the seeds'
stacked weights computes exactly what one optimizer per seed does; gradient clipping is done per seed; each
seed's batches and dropout masks come from its own dataloader and RNG stream, consumed in its Trainer run's
order (see SeedStream). One step then costs about what one seed's step costs, which is what brings 5 seeds x
3 epochs close to the cost of the base forward alone.
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


def _metrics(runtime, samples, steps, loss, epochs) -> dict:
    """The keys and rounding of Trainer.train()'s metrics."""
    return {"train_runtime": round(runtime, 4), "train_samples_per_second": round(samples / runtime, 3),
            "train_steps_per_second": round(steps / runtime, 3), "train_loss": loss, "epoch": float(epochs)}


def train(trainer) -> dict:
    """Train trainer.model (a CachedHead) and return the Trainer's train metrics."""
    args, model = trainer.args, trainer.model
    # the RNG state right after this seed's Trainer.__init__ (the seeds' Trainers are all built first)
    set_seed(args.seed)
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
    return _metrics(time.time() - started, len(dataloader.dataset) * epochs, steps,
                    total_loss.item() / max(steps, 1), epochs)


def _stackable(head):
    """(linear, dropout or None) when the head is one Linear, optionally after a dropout (GPT-2's `score`;
    BERT's `dropout` + `classifier`), else None."""
    linears = [m for m in head.modules() if isinstance(m, nn.Linear)]
    if len(linears) != 1 or head.rule not in ("last_non_pad", "pooler"):
        return None
    dropout = head.heads["dropout"] if head.rule == "pooler" else None
    return linears[0], (dropout if dropout is not None and dropout.p > 0 else None)


class RowIndex(torch.utils.data.Dataset):
    """Row numbers 0..n-1: the same sampler and RNG draws as the feature dataset of that length (samplers look
    only at the length), without collating features the stacked loop indexes itself."""

    def __init__(self, n):
        self.n = n

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        return {"index": i}


class SeedStream:
    """One seed's batches and RNG stream, consumed in exactly the order its own Trainer run consumes them: the
    global RNG is swapped in around this seed's batch fetch (epoch starts draw from it) and dropout draw."""

    def __init__(self, trainer, epochs, device):
        self.device = device
        set_seed(trainer.args.seed)  # the state right after this seed's Trainer.__init__
        features = trainer.train_dataset
        trainer.train_dataset = RowIndex(len(features))
        try:
            loader = trainer.get_train_dataloader()
        finally:
            trainer.train_dataset = features
        self.steps = epochs * len(loader)
        self.batches = (batch for epoch in range(epochs) for batch in epoch_batches(loader, epoch))
        self.state = self._rng()

    def _rng(self):
        return (torch.get_rng_state(), torch.cuda.get_rng_state(self.device) if self.device.type == "cuda" else None)

    def next(self, features, dropout):
        torch.set_rng_state(self.state[0])
        if self.state[1] is not None:
            torch.cuda.set_rng_state(self.state[1], self.device)
        index = next(self.batches)["index"]
        x = features[index.to(features.device)]
        if dropout is not None:
            x = dropout(x)
        self.state = self._rng()
        return x, index


def train_many(trainers) -> list:
    """Train every trainer's CachedHead (one per seed, same arguments but the seed); their metrics in order."""
    args = trainers[0].args
    stackable = [_stackable(t.model) for t in trainers]
    if len(trainers) == 1 or not supported(args) or any(s is None for s in stackable):
        return [train(t) for t in trainers]
    linears = [lin for lin, _ in stackable]
    dropout = stackable[0][1]
    head = trainers[0].model
    head.train()
    device = linears[0].weight.device
    features = trainers[0].train_dataset.features.to(device)
    labels = trainers[0].train_dataset.labels.to(device)
    epochs = int(args.num_train_epochs)
    streams = [SeedStream(t, epochs, device) for t in trainers]
    weight = nn.Parameter(torch.stack([lin.weight.detach() for lin in linears]))          # seeds x out x in
    bias = nn.Parameter(torch.stack([lin.bias.detach() for lin in linears])) if linears[0].bias is not None else None
    groups = [{"params": [weight], "weight_decay": args.weight_decay}]  # Trainer: no decay on biases
    if bias is not None:
        groups.append({"params": [bias], "weight_decay": 0.0})
    optimizer_cls, optimizer_kwargs = Trainer.get_optimizer_cls_and_kwargs(args, head)
    optimizer = optimizer_cls(groups, **optimizer_kwargs)
    steps = streams[0].steps
    scheduler = trainers[0].create_scheduler(num_training_steps=steps, optimizer=optimizer)
    params = [p for p in (weight, bias) if p is not None]
    losses = torch.zeros(len(trainers), device=device)
    started = time.time()
    for _ in range(steps):
        inputs, indices = zip(*(stream.next(features, dropout) for stream in streams))
        index = torch.stack(indices).to(device)                                             # seeds x batch
        logits = torch.bmm(torch.stack(inputs), weight.transpose(1, 2))                     # seeds x batch x out
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
    return [_metrics(runtime, len(features) * epochs, steps, loss.item() / steps, epochs) for loss in losses]
