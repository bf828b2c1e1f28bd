"""Validator-reward fine-tuning (``constrained finetune TASK --mode reward``).

Each training step, for every problem of the batch:

1. **rollouts**: the current model solves it ``group_size`` times with the Solver in
   model-only mode, sampling with temperature (no domains, no validator re-noising: the
   behaviour being improved is the bare model's);
2. **reward**: the task's exact validator scores each completed canvas: the mean of the
   fraction of constraint groups with no implicated position and the fraction of free positions
   not implicated, plus ``solved_bonus`` if it validates;
3. **group-relative advantage** (GRPO): ``A = (r - mean_group) / std_group``, clipped; a group
   whose samples all score the same teaches nothing and gets A = 0;
4. **update**: the diffusion model's likelihood of a completion is estimated as in diffu-GRPO
   (d1) by one pass on the completion re-corrupted at a random level t: the mean log-probability
   of the sampled tokens at the corrupted positions. The loss is ``-A * logp`` (a reward-weighted
   denoising loss: good samples are learned, bad ones unlearned) plus ``kl_beta`` times the k3
   KL estimate to the starting model on the same positions, which keeps the policy near it.

One update per batch of rollouts, so the GRPO importance ratio is 1 and its clipping never
acts; it is left out. From trl we use ``selective_log_softmax`` (per-token log-probabilities of
the sampled tokens) and ``nanstd`` (group standard deviation); trl's ``GRPOTrainer`` itself
generates left-to-right with ``model.generate`` and scores log-probs causally, which does not fit
a bidirectional denoiser, so the loop is a ``transformers.Trainer`` (``RewardTrainer``): DDP,
FSDP and DeepSpeed under ``torchrun`` / ``accelerate launch`` work as for the other modes.
"""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any

import torch
from constrained.engine.denoiser import domain_features, predict_logits, reads_domains
from constrained.engine.noise import NoiseProcess
from constrained.engine.samplers import Sampler
from torch import nn
from torch.utils.data import Dataset
from transformers import Trainer, TrainerCallback, TrainingArguments
from trl.trainer.utils import nanstd, selective_log_softmax

from constrained.canvas import Canvas
from constrained.errors import ConfigError
from constrained.loading import load_denoiser
from constrained.solver import Solver, SolverConfig
from constrained.task import Task

from .cards import CardText, machine_description
from .evaluation import held_out_description, pool_seed, scores_table
from .recipes import RewardSettings
from .skeleton import Mode, Run, train


def validator_reward(task: Task, canvas: Canvas, tokens: torch.Tensor, solved_bonus: float = 1.0,
                     ) -> tuple[torch.Tensor, torch.Tensor]:
    """(reward [B], solved [B]) of complete canvases ``tokens`` [B, L].

    reward = mean of (a) the fraction of the layout's constraint groups none of whose positions
    the validator implicates and (b) the fraction of free positions it does not implicate (a
    denser signal: one repeated digit fails three Sudoku groups at once), plus ``solved_bonus``
    when the validator passes. A task without groups gets (b) alone.
    """
    rep = task.validate(canvas, tokens)
    viol = rep.violations.float()  # [B, L]
    free = (~canvas.fixed).float()
    cells = 1.0 - (viol * free).sum(-1) / free.sum(-1).clamp(min=1)
    groups = canvas.layout.membership.to(viol.device)  # [G, L]
    if groups.shape[0]:
        bad_groups = (viol @ groups.T) > 0  # [B, G]
        frac = 0.5 * (1.0 - bad_groups.float().mean(-1)) + 0.5 * cells
    else:
        frac = cells
    solved = rep.ok.bool()
    return frac + solved_bonus * solved.float(), solved


def group_advantages(rewards: torch.Tensor, group_size: int, clip: float) -> torch.Tensor:
    """GRPO's group-relative advantage: rewards [B*G] in groups of ``group_size`` -> [B*G]."""
    r = rewards.view(-1, group_size)
    mean = r.mean(-1, keepdim=True)
    std = nanstd(r, dim=1, keepdim=True)
    adv = torch.where(std > 1e-6, (r - mean) / (std + 1e-4), torch.zeros_like(r))
    return adv.clamp(-clip, clip).view(-1)


class ProblemPool(Dataset):
    """Indices into a list of problems (the trainer holds the problems themselves)."""

    def __init__(self, n: int) -> None:
        self.n = n

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> dict[str, int]:
        return {"problem_index": i}


def collate_indices(examples: list[dict[str, int]]) -> dict[str, torch.Tensor]:
    return {"problem_index": torch.tensor([e["problem_index"] for e in examples], dtype=torch.long)}


class RewardTrainer(Trainer):
    """transformers.Trainer whose loss is the group-relative, validator-rewarded objective above."""

    def __init__(self, *args: Any, task: Task, noise: NoiseProcess, problems: list[Any],
                 settings: RewardSettings, reference: nn.Module | None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.task, self.noise, self.problems, self.settings = task, noise, problems, settings
        self.reference = reference
        self._stats: dict[str, list[float]] = {}
        self._calls = 0

    def _rollouts(self, model: nn.Module, canvas: Canvas) -> torch.Tensor:
        rank = int(os.environ.get("RANK", 0))
        cfg = SolverConfig.model_only(max_passes=self.settings.max_passes,
                                      sampler=Sampler(temperature=self.settings.temperature),
                                      seed=self.args.seed * 1_000_003 + self._calls * 101 + rank)
        solver = Solver(self.task, model, self.noise, cfg, device=canvas.tokens.device)
        results = solver.run(canvas)
        return torch.tensor([r.tokens for r in results], dtype=torch.long, device=canvas.tokens.device)

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        s = self.settings
        self._calls += 1
        device = inputs["problem_index"].device
        idx = inputs["problem_index"].tolist()
        problems = [self.problems[i] for i in idx for _ in range(s.group_size)]
        canvas = self.task.encode(problems).to(device)  # [N = B*G, L]
        policy = self.accelerator.unwrap_model(model)
        tokens = self._rollouts(policy, canvas)  # [N, L]; leaves the policy in eval mode
        model.train()
        reward, solved = validator_reward(self.task, canvas, tokens, s.solved_bonus)
        adv = group_advantages(reward, s.group_size, s.clip_advantage)  # [N]
        adv = torch.where(adv < 0, adv * s.negative_weight, adv)

        # one-pass likelihood estimate of each completion: re-corrupt it at a random level t
        gen = torch.Generator(device=device).manual_seed(self.args.seed + 7919 * self._calls)
        t = self.noise.sample_t(tokens.shape[0], gen, device=device)
        fixed = canvas.fixed
        domain = canvas.allowed_values() & ~fixed.unsqueeze(-1)
        xt, corrupted = self.noise.corrupt(tokens, t, fixed, domain, gen)
        feats = None
        if reads_domains(policy):  # a model that reads candidate domains sees them here too
            dom = self.task.domains(canvas, xt)
            feats = domain_features(domain | fixed.unsqueeze(-1) if dom is None else dom, xt != self.noise.mask_id)
        logits = predict_logits(model, xt, canvas, domains=feats)  # [N, L, V]
        logp = selective_log_softmax(logits.float(), tokens)  # [N, L]
        w = corrupted.float()
        n_pos = w.sum(-1).clamp(min=1)
        seq_logp = (logp * w).sum(-1) / n_pos  # [N]
        loss = -(adv * seq_logp).mean()
        kl = torch.zeros((), device=device)
        if self.reference is not None and s.kl_beta > 0:
            with torch.no_grad():
                ref_logp = selective_log_softmax(
                    predict_logits(self.reference, xt, canvas, domains=feats).float(), tokens)
            d = ref_logp - logp
            kl_tok = torch.exp(d) - d - 1  # k3 estimator of KL(policy || reference)
            kl = ((kl_tok * w).sum(-1) / n_pos).mean()
            loss = loss + s.kl_beta * kl
        for k, v in (("reward", reward.mean()), ("solved", solved.float().mean()), ("kl", kl.detach()),
                     ("group_std", nanstd(reward.view(-1, s.group_size), dim=1).mean())):
            self._stats.setdefault(k, []).append(float(v))
        return (loss, logits) if return_outputs else loss

    def log(self, logs: dict[str, float], *args: Any, **kwargs: Any) -> None:
        if self._stats and "loss" in logs:
            for k, v in self._stats.items():
                logs[f"rollout_{k}"] = round(sum(v) / len(v), 4)
            self._stats = {}
        super().log(logs, *args, **kwargs)


class RewardMode(Mode):
    """Validator-reward training of ``init`` (default: the task's shipped model): the full model
    is updated and saved; the card holds the solve rates before and after."""

    name, out_suffix, before_key = "reward", "-reward", "scores_before"

    def prepare(self, run: Run) -> tuple[nn.Module, NoiseProcess]:
        task, settings = run.task, run.recipe.reward
        self.source = run.init or "default"
        model, noise = load_denoiser(task, self.source)
        if not hasattr(model, "save_pretrained"):
            raise ConfigError(f"reward mode trains and saves a full model; {type(model).__name__} from "
                              f"{self.source} has no save_pretrained")
        for p in model.parameters():
            p.requires_grad_(True)
        self.reference = copy.deepcopy(model).eval().requires_grad_(False) if settings.kl_beta > 0 else None
        gen_kw = {"grade": settings.grade} if settings.grade else {}
        self.pool = [p for p, _ in task.generate(settings.pool_size, seed=pool_seed(run.recipe), **gen_kw)]
        return model, noise

    def trainer(self, run: Run, args: TrainingArguments, callbacks: list[TrainerCallback]) -> Trainer:
        return RewardTrainer(model=run.model, args=args, train_dataset=ProblemPool(len(self.pool)),
                             data_collator=collate_indices, task=run.task, noise=run.noise, problems=self.pool,
                             settings=run.recipe.reward, reference=self.reference, callbacks=callbacks)

    def plot(self, history: list[dict[str, Any]], path: Path) -> None:
        plot_rollouts(history, path)

    def card(self, run: Run) -> CardText:
        task, s, tr = run.task, run.recipe.reward, run.recipe.train
        return CardText(
            title=f"{task.name} denoiser, validator-reward fine-tuned",
            intro=[f"`{self.source}` fine-tuned for the `{task.name}` task of `constrained` with validator rewards "
                   "(group-relative advantages over rollouts of the model itself; see finetune/reward.py)."],
            trained=[f"command: `constrained finetune {task.name} --mode reward --out {run.out}"
                     + "".join(f" --set {o}" for o in run.overrides) + "` "
                     f"(recipe `finetune/recipes/{task.name}.reward.toml` if present, else `{task.name}.toml`)",
                     f"rollouts: {s.group_size} per problem, temperature {s.temperature}, up to {s.max_passes} "
                     f"model passes, model only; problems: {s.pool_size} generated ({s.grade or 'default'} grade, "
                     f"seed {pool_seed(run.recipe)})",
                     f"reward: mean of the fractions of constraint groups and of cells satisfied, + {s.solved_bonus} "
                     f"if solved; KL weight {s.kl_beta}",
                     f"steps: {tr.max_steps}, {tr.batch_size} problems per step, lr {tr.learning_rate}",
                     f"wall time: {run.wall / 60:.1f} min on {machine_description()}"],
            scores=scores_table([("before", run.before), ("after", run.scores)]),
            held_out=held_out_description(run.recipe), size=run.recipe.eval.size, tags=[task.name, "reward"])


def finetune_reward(task_name: str, out: str | Path | None = None, recipe_path: str | None = None,
                    overrides: list[str] | None = None, init: str | None = None, resume: bool = True,
                    progress: bool = True) -> dict[str, Any]:
    """Validator-reward fine-tuning of ``init`` (default: the task's shipped model); saves the
    updated full model in OUT with a model card holding the before/after solve rates. The
    result adds ``scores_before``."""
    return train(RewardMode(), task_name, out, recipe_path, overrides, init, resume, progress)


def plot_rollouts(history: list[dict[str, Any]], path: Path) -> None:
    """Loss (linear: the policy-gradient loss changes sign) and mean rollout reward per logged step."""
    rows = [h for h in history if "loss" in h and "rollout_reward" in h]
    if not rows:
        return
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = [h["step"] for h in rows]
    fig, (a, b) = plt.subplots(1, 2, figsize=(9, 3.5))
    a.plot(steps, [h["loss"] for h in rows])
    a.set_xlabel("step")
    a.set_ylabel("reward loss")
    b.plot(steps, [h["rollout_reward"] for h in rows], label="mean reward")
    b.plot(steps, [h["rollout_solved"] for h in rows], label="rollouts solved")
    b.set_xlabel("step")
    b.legend()
    for ax in (a, b):
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
