"""Heads on cached features: two loops. The fast loop trains every seed's head at once, step for step as
`Trainer.train()` would, for the flags the allowlist in `contract.py` names; everything else trains under
`Trainer.train()` itself, per seed. Must not decide which flags are allowed (contract.py does).

The fast loop covers heads that are one Linear layer, after a dropout or not (GPT-2's `score`, BERT's `dropout` +
`classifier`). AdamW and SGD are elementwise, so one optimizer over the seeds' stacked weights computes exactly
what one optimizer per seed does. Parity is by construction, not by imitation: each seed's batches come from its
own Trainer's prepared train dataloader (same sampler, same `set_epoch`, same RNG draws), the optimizer class and
arguments and the lr schedule from the Trainer's own factories, and each update step is the Trainer's: train mode,
forward over `gradient_accumulation_steps` micro-batches with the Trainer's loss scaling (label smoothing as its
LabelSmoother), backward, per-head clipping to `max_grad_norm`, optimizer step, scheduler step, zero_grad. Each
seed's batch fetches and dropout draws happen on its own RNG stream, in its Trainer run's order (SeedStream).
The same loop stacks the heads of probed layers (their own features, their seed's batches and draws) and of a
head-setting grid (their own optimizer parameter group: learning rate and weight decay). One step then costs
about what one seed's step costs: 5 seeds x 3 epochs come close to the base forward alone.
"""

import logging
import math
import time

import torch
from torch import nn
from transformers import set_seed
from transformers.trainer_utils import speed_metrics

from frozen_glue.core import compat
from frozen_glue.training.stacked import History, StackedParameters, stacked_loss

logger = logging.getLogger(__name__)


def epoch_batches(loader, epoch):
    """Iterate the Trainer's prepared dataloader for one epoch, after the same set_epoch calls Trainer makes
    (accelerate's DataLoaderShard does not forward set_epoch to a wrapped batch sampler)."""
    if hasattr(loader, "set_epoch"):
        loader.set_epoch(epoch)
    inner = compat.inner_batch_sampler(loader)
    if hasattr(inner, "set_epoch"):
        inner.set_epoch(epoch)
    return iter(loader)


def stackable(head):
    """(linear, dropout or None) when the head computes linear(x), or linear(dropout(x)), from its (standardised)
    features, else None: one Linear and at most one active dropout among its modules, and the head's own forward
    checked against that form on a probe batch, in eval mode and in train mode (the same dropout draws). Checked
    once per head (CachedHead runs the model's own forward: any architecture reaches here)."""
    if "_linear_form" not in head.__dict__:
        head.__dict__["_linear_form"] = _linear_form(head)
    return head.__dict__["_linear_form"]


def _linear_form(head):
    own = [m for name, top in head.heads.items() if name != "standardize" for m in top.modules()]
    linears = [m for m in own if isinstance(m, nn.Linear)]
    dropouts = [m for m in own if isinstance(m, nn.Dropout) and m.p > 0]
    if len(linears) != 1 or len(dropouts) > 1:
        return None
    linear, dropout = linears[0], (dropouts[0] if dropouts else None)
    norm = head.heads["standardize"] if "standardize" in head.heads else nn.Identity()
    x = torch.randn(4, linear.in_features, generator=torch.Generator().manual_seed(0)).to(linear.weight.device)
    was = head.training
    try:
        with torch.no_grad(), torch.random.fork_rng(devices=[]):
            same = []
            for mode in (False, True):
                head.train(mode)
                torch.manual_seed(0)
                got = head(features=x)["logits"]
                torch.manual_seed(0)
                want = linear(dropout(norm(x)) if dropout is not None and mode else norm(x))
                same.append(got.shape == want.shape and torch.allclose(got, want, atol=1e-6))
    finally:
        head.train(was)
    return (linear, dropout) if all(same) else None


def train_heads(trainers, fallback: str | None) -> list:
    """Train every trainer's CachedHead (one per seed x layer x setting: the same arguments but the seed, the
    learning rate and the weight decay); their train metrics, in order. Each trainer's `state` holds its log
    history afterwards, as after Trainer.train()."""
    if fallback is None and any(stackable(t.model) is None for t in trainers):
        fallback = "the head is not one Linear layer"
    if fallback is None:
        return FastLoop(trainers).run()
    logger.info(f"cached path: heads train with Trainer.train(), one seed at a time ({fallback})")
    out = []
    for trainer in trainers:
        set_seed(trainer.args.seed)  # the RNG state right after this seed's Trainer.__init__
        out.append(trainer.train().metrics)
    return out


class RowIndex(torch.utils.data.Dataset):
    """Row numbers 0..n-1: the same sampler and RNG draws as the feature dataset of that length (samplers look
    only at the length), without collating features the fast loop indexes itself."""

    def __init__(self, n):
        self.n = n

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        return {"index": i}


class SeedStream:
    """One seed's batches and RNG stream, consumed in exactly the order its own Trainer run consumes them: the
    global RNG is swapped in around this seed's epoch start (the sampler draws its seed) and dropout draws."""

    def __init__(self, trainer, device):
        self.device = device
        set_seed(trainer.args.seed)  # the state right after this seed's Trainer.__init__
        features = trainer.train_dataset
        trainer.train_dataset = RowIndex(len(features))
        try:
            self.loader = trainer.get_train_dataloader()
        finally:
            trainer.train_dataset = features
        self.batches = iter(())
        self.state = self._rng()

    def _rng(self):
        return (torch.get_rng_state(), torch.cuda.get_rng_state(self.device) if self.device.type == "cuda" else None)

    def _swap_in(self):
        torch.set_rng_state(self.state[0])
        if self.state[1] is not None:
            torch.cuda.set_rng_state(self.state[1], self.device)

    def _dropout(self, dropout, x):
        """Dropout on this seed's RNG stream, from where its last draw left it."""
        self._swap_in()
        x = dropout(x)
        self.state = self._rng()
        return x

    def start_epoch(self, epoch):
        """All of this epoch's batches at once: only the first fetch draws from the global RNG (the sampler's
        seed for the epoch); the later fetches use the sampler's own generator."""
        self._swap_in()
        self.batches = iter([batch["index"] for batch in epoch_batches(self.loader, epoch)])
        self.state = self._rng()

    def next(self, features: list, dropout, norms: list):
        """This seed's next batch from each of `features` (one tensor per head of this seed: its layers, its head
        settings), standardised by its head's `norms` entry (--standardize_features; None: as stored), each with
        the dropout mask it would draw in its own run: every head starts from the same RNG state, so heads reading
        the same features (the settings of a grid; their statistics are the same) get the very same batch, made
        once."""
        index = next(self.batches)
        start, made = self.state, {}
        for f, norm in zip(features, norms):
            if id(f) not in made:
                self.state = start
                x = f[index.to(f.device)].float()
                x = norm(x) if norm is not None else x
                made[id(f)] = self._dropout(dropout, x) if dropout is not None else x
        return [made[id(f)] for f in features], index.to(self.device)


class FastLoop:
    """Every head (seeds x probed layers x head settings) as one stacked weight (heads x out x in), trained
    together: heads of one seed share its batches and dropout draws (SeedStream), heads of one (learning rate,
    weight decay) share an optimizer parameter group."""

    def __init__(self, trainers):
        self.trainers = trainers
        self.args = args = trainers[0].args  # equal for all but seed, learning rate and weight decay
        self.head = trainers[0].model
        pairs = [stackable(t.model) for t in trainers]
        self.linears, self.dropout = [lin for lin, _ in pairs], pairs[0][1]
        self.device = args.device
        # each trainer has its features (one tensor per probed layer, shared by its seeds and settings: moved to
        # the device once), and all have the same labels and rows
        moved = {}
        for t in trainers:
            if id(t.train_dataset.features) not in moved:
                moved[id(t.train_dataset.features)] = t.train_dataset.features.to(self.device)
        self.features = [moved[id(t.train_dataset.features)] for t in trainers]
        self.norms = [t.model.heads["standardize"].to(self.device) if "standardize" in t.model.heads else None
                      for t in trainers]
        self.labels = trainers[0].train_dataset.labels.to(self.device)
        self.streams, self.by_seed = {}, {}
        for i, t in enumerate(trainers):
            if t.args.seed not in self.streams:
                self.streams[t.args.seed] = SeedStream(t, self.device)
            self.by_seed.setdefault(t.args.seed, []).append(i)
        batches = len(next(iter(self.streams.values())).loader)
        ga = args.gradient_accumulation_steps
        # Trainer.set_initial_training_values: update steps per epoch, total steps, epochs, samples
        self.updates_per_epoch = max(batches // ga + int(batches % ga > 0), 1)
        self.batches_per_epoch = batches
        if args.max_steps > 0:
            self.max_steps = args.max_steps
            self.epochs = math.ceil(self.max_steps / self.updates_per_epoch)
            self.samples = self.max_steps * args.per_device_train_batch_size * ga
        else:
            self.max_steps = math.ceil(args.num_train_epochs * self.updates_per_epoch)
            self.epochs = math.ceil(args.num_train_epochs)
            self.samples = len(self.labels) * args.num_train_epochs

    def _fetch(self):
        """One micro-batch of every head: (inputs, row indices), in head order."""
        inputs, indices = [None] * len(self.trainers), [None] * len(self.trainers)
        for seed, stream in self.streams.items():
            members = self.by_seed[seed]
            xs, index = stream.next([self.features[i] for i in members], self.dropout,
                                    [self.norms[i] for i in members])
            for i, x in zip(members, xs):
                inputs[i], indices[i] = x, index
        return inputs, indices

    def _forward(self, micro, params, items):
        """Forward and backward of one micro-batch of every head (heads do not interact: each slice of the stacked
        parameters gets its own head's gradient)."""
        inputs, indices = micro
        index = torch.stack(indices)                                                   # heads x batch
        weight, bias = params.stacked()
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=bool(self.args.bf16)):
            logits = torch.bmm(torch.stack(inputs), weight.transpose(1, 2))             # heads x batch x out
            if bias is not None:
                logits = logits + bias[:, None, :]
        loss = stacked_loss(self.head, self.args, logits, self.labels[index], items, self._micro_batches)
        loss.sum().backward()
        return loss

    def run(self) -> list:
        args = self.args
        params = StackedParameters(self.trainers, self.linears, self.device)
        optimizer, scheduler = params.optimizer(self.max_steps)
        history = History(args, len(self.trainers), self.max_steps, self.epochs, self.device)
        for module in [*self.linears, self.dropout]:
            if module is not None:
                module.train()
        ga, step, started = args.gradient_accumulation_steps, 0, time.time()
        for epoch in range(self.epochs):
            for stream in self.streams.values():
                stream.start_epoch(epoch)
            step_in_epoch = -1
            for update in range(self.updates_per_epoch):
                last = update == self.updates_per_epoch - 1
                self._micro_batches = (self.batches_per_epoch % ga or ga) if last else ga
                micro = [self._fetch() for _ in range(self._micro_batches)]
                items = sum(len(batch[1][0]) for batch in micro)
                for batch in micro:
                    step_in_epoch += 1
                    history.add(self._forward(batch, params, items))
                grad_norms = params.clip(args.max_grad_norm)
                optimizer.step()
                rates = params.rates(scheduler)
                scheduler.step()
                optimizer.zero_grad()
                step += 1
                epoch_float = epoch + (step_in_epoch + 1) / self.batches_per_epoch
                if history.should_log(step, end_of_epoch=False):
                    history.log(step, epoch_float, grad_norms, rates)
                if step >= self.max_steps:
                    break
            if history.should_log(step, end_of_epoch=True):
                history.log(step, epoch_float, grad_norms, rates)
            if step >= self.max_steps:
                break
        params.copy_back()
        # the shared time, split evenly between the heads (speed_metrics measures from a start time)
        timing = speed_metrics("train", time.time() - (time.time() - started) / len(self.trainers),
                               num_samples=self.samples, num_steps=step)
        flops = float(self.head.floating_point_ops({"features": self.features[0][:1]}) * self.samples)
        return history.finish(self.trainers, step, epoch_float, timing, flops)
