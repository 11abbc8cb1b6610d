"""The parts of the fast loop (head_training.FastLoop) that mirror the Trainer's own: the heads' stacked
parameters under the Trainer's optimizer groups and schedule, its loss scaling, per-head clipping, and each head's
TrainerState and log history. Must not fetch batches or decide which heads stack (head_training.py does)."""

import itertools

import torch
from torch import nn
from transformers import Trainer, TrainerState


class History:
    """Each seed's TrainerState and log history, kept as Trainer keeps them: the running loss every logging step
    (DefaultFlowCallback's rule), grad_norm and learning rate, then the train metrics at the end."""

    def __init__(self, args, n_seeds, max_steps, epochs, device):
        self.args = args
        self.states = []
        for _ in range(n_seeds):
            state = TrainerState()
            state.train_batch_size = args.per_device_train_batch_size
            state.compute_steps(args, max_steps)
            state.num_train_epochs = epochs
            self.states.append(state)
        self.total_loss = torch.zeros(n_seeds, dtype=torch.float64)
        self.since_log = torch.zeros(n_seeds, device=device)
        self.last_logged = 0

    def add(self, loss):
        self.since_log += loss.detach()

    def should_log(self, step, end_of_epoch):
        strategy = str(getattr(self.args.logging_strategy, "value", self.args.logging_strategy))
        if end_of_epoch:
            return strategy == "epoch" and step > self.last_logged
        return (strategy == "steps" and step % self.args.logging_steps == 0) or \
            (self.args.logging_first_step and step == 1)

    def log(self, step, epoch, grad_norms, learning_rates):
        losses = self.since_log.double().cpu()
        self.total_loss += losses
        self.since_log.zero_()
        for i, state in enumerate(self.states):
            state.log_history.append({"loss": losses[i].item() / (step - self.last_logged),
                                      "grad_norm": grad_norms[i].item(), "learning_rate": learning_rates[i],
                                      "epoch": epoch, "step": step})
        self.last_logged = step

    def finish(self, trainers, step, epoch, timing, flops) -> list:
        """Every seed's train metrics; each trainer's `state` becomes its seed's state."""
        self.total_loss += self.since_log.double().cpu()
        out = []
        for trainer, state, loss in zip(trainers, self.states, self.total_loss.tolist()):
            metrics = {**timing, "total_flos": flops, "train_loss": loss / max(step, 0.001), "epoch": epoch}
            state.global_step, state.epoch, state.total_flos = step, epoch, flops
            state.log_history.append({**metrics, "step": step})
            trainer.state = state
            out.append(metrics)
        return out


def clip_per_head(kinds, max_grad_norm):
    """clip_grad_norm_ for each head's slice of the stacked parameters (`kinds`: the weights' group tensors, then
    the biases'); returns the pre-clip norms (what Trainer logs as grad_norm)."""
    norms = torch.linalg.vector_norm(torch.stack([torch.cat([p.grad.flatten(1) for p in group]).norm(dim=1)
                                                  for group in kinds]), dim=0)
    if max_grad_norm and max_grad_norm > 0:
        scale = (max_grad_norm / (norms + 1e-6)).clamp(max=1.0)
        for group in kinds:
            start = 0
            for p in group:
                p.grad.mul_(scale[start:start + len(p)].view(-1, *[1] * (p.dim() - 1)))
                start += len(p)
    return norms


def stacked_loss(head, args, logits, gold, items, micro_batches):
    """Per-head loss of one micro-batch (heads x batch), scaled as Trainer.training_step scales it."""
    if head.problem_type == "regression":
        loss = ((logits.squeeze(-1).float() - gold) ** 2).mean(1)
    elif args.label_smoothing_factor:
        # LabelSmoother: (1 - eps) * nll + eps * mean over classes of -log p, over the update's items when the
        # model takes loss kwargs (Trainer then passes num_items_in_batch), else over this micro-batch
        logp = -nn.functional.log_softmax(logits.float(), dim=-1)
        nll = logp.gather(-1, gold[..., None]).squeeze(-1).sum(1)
        smooth = logp.sum(-1).sum(1) / logits.shape[-1]
        denominator = items if head.accepts_loss_kwargs else gold.shape[1]
        eps = args.label_smoothing_factor
        loss = ((1 - eps) * nll + eps * smooth) / denominator
    else:
        loss = nn.functional.cross_entropy(logits.flatten(0, 1).float(), gold.flatten(), reduction="none") \
            .view(gold.shape).mean(1)
    return loss if head.accepts_loss_kwargs else loss / micro_batches


class StackedParameters:
    """The heads' Linear weights (and biases) stacked, one tensor per head setting (consecutive heads with the same
    learning rate and weight decay), with the Trainer's optimizer and schedule over them."""

    def __init__(self, trainers, linears, device):
        self.trainers, self.linears = trainers, linears
        self.settings = [(key, len(list(run))) for key, run in itertools.groupby(
            (t.args.learning_rate, t.args.weight_decay) for t in trainers)]
        self.weights, self.biases, start = [], [], 0
        for _, n in self.settings:
            group = linears[start:start + n]
            self.weights.append(nn.Parameter(torch.stack([lin.weight.detach() for lin in group]).to(device)))
            if group[0].bias is not None:
                self.biases.append(nn.Parameter(torch.stack([lin.bias.detach() for lin in group]).to(device)))
            start += n

    def stacked(self):
        """(weight heads x out x in, bias heads x out or None), differentiable into the per-setting tensors."""
        weight = torch.cat(self.weights) if len(self.weights) > 1 else self.weights[0]
        bias = (torch.cat(self.biases) if len(self.biases) > 1 else self.biases[0]) if self.biases else None
        return weight, bias

    def optimizer(self, max_steps):
        """The Trainer's optimizer class and arguments, one group per setting with its learning rate and weight
        decay (none on biases, as Trainer), and the Trainer's schedule, which scales every group's rate alike."""
        groups = []
        for i, ((lr, wd), _) in enumerate(self.settings):
            groups.append({"params": [self.weights[i]], "weight_decay": wd, "lr": lr})
            if self.biases:
                groups.append({"params": [self.biases[i]], "weight_decay": 0.0, "lr": lr})
        trainer = self.trainers[0]
        optimizer_cls, optimizer_kwargs = Trainer.get_optimizer_cls_and_kwargs(trainer.args, trainer.model)
        optimizer = optimizer_cls(groups, **optimizer_kwargs)
        return optimizer, trainer.create_scheduler(num_training_steps=max_steps, optimizer=optimizer)

    def rates(self, scheduler):
        """Each head's current learning rate (its setting's group)."""
        rates, lrs = [], scheduler.get_last_lr()  # one per parameter group: a setting's weight (and bias)
        for (_, n), lr in zip(self.settings, lrs[::len(lrs) // len(self.settings)]):
            rates += [lr] * n
        return rates

    def clip(self, max_grad_norm):
        return clip_per_head([self.weights, self.biases] if self.biases else [self.weights], max_grad_norm)

    @torch.no_grad()
    def copy_back(self):
        """The trained values into each head's own Linear."""
        weight, bias = self.stacked()
        for i, lin in enumerate(self.linears):
            lin.weight.copy_(weight[i])
            if bias is not None:
                lin.bias.copy_(bias[i])
