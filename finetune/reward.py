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
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from constrained.engine.denoiser import domain_features, predict_logits, reads_domains
from constrained.engine.noise import NoiseProcess
from constrained.engine.samplers import Sampler
from torch import nn
from torch.utils.data import Dataset
from transformers import Trainer
from trl.trainer.utils import nanstd, selective_log_softmax

from constrained.canvas import Canvas
from constrained.errors import ConfigError
from constrained.solver import Solver, SolverConfig
from constrained.task import Task


@dataclass
class RewardSettings:
    """The ``[reward]`` recipe section."""

    group_size: int = 8
    grade: str = "expert"
    pool_size: int = 256
    temperature: float = 1.0
    max_passes: int = 32
    solved_bonus: float = 1.0
    kl_beta: float = 0.05
    clip_advantage: float = 3.0
    negative_weight: float = 1.0  # scale of below-group-mean advantages (0: learn only from the better samples)

    @classmethod
    def from_recipe(cls, section: dict[str, Any]) -> RewardSettings:
        return cls(**{k: section[k] for k in cls.__dataclass_fields__})


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
        domain = canvas.domain() & ~fixed.unsqueeze(-1)
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


def finetune_reward(task_name: str, out: str | Path | None = None, recipe_path: str | None = None,
                    overrides: list[str] | None = None, init: str | None = None, resume: bool = True,
                    progress: bool = True) -> dict[str, Any]:
    """Validator-reward fine-tuning of ``init`` (default: the task's shipped model); saves the
    updated full model in OUT with a model card holding the before/after solve rates."""
    from constrained.loading import load_denoiser
    from constrained.registry import load_task

    from .run import ValidatorEval, _last_checkpoint, evaluate
    from .training import final_scores, training_arguments

    recipe = load_recipe_for_reward(task_name, recipe_path, overrides)
    task = load_task(task_name, **recipe["task"])
    tr, ev = recipe["train"], recipe["eval"]
    settings = RewardSettings.from_recipe(recipe["reward"])
    out = Path(out or f"runs/{task_name}-reward")
    torch.manual_seed(tr["seed"])
    source = init or "default"
    model, noise = load_denoiser(task, source)
    if not hasattr(model, "save_pretrained"):
        raise ConfigError(f"reward mode trains and saves a full model; {type(model).__name__} from {source} "
                          "has no save_pretrained")
    for p in model.parameters():
        p.requires_grad_(True)
    reference = copy.deepcopy(model).eval().requires_grad_(False) if settings.kl_beta > 0 else None
    rank = int(os.environ.get("RANK", 0))
    gen_kw = {"grade": settings.grade} if settings.grade else {}
    pool = [p for p, _ in task.generate(settings.pool_size, seed=20_000 + tr["seed"], **gen_kw)]
    eval_kw = {k: v for k, v in ev.items() if k not in ("steps", "size", "options")}
    held_out = [p for p, _ in task.generate(ev["size"], seed=10_000 + tr["seed"], **eval_kw)] \
        if ev["size"] else []
    last = _last_checkpoint(out / "checkpoints") if resume else None
    before = evaluate(task, model, noise, held_out, **ev["options"]) \
        if held_out and rank == 0 and not last else {}
    if before:
        print("[before] " + ", ".join(f"{k}={v:.3f}" for k, v in before.items()), flush=True)

    args = training_arguments(recipe, out, progress)
    trainer = RewardTrainer(
        model=model, args=args, train_dataset=ProblemPool(len(pool)), data_collator=collate_indices,
        task=task, noise=noise, problems=pool, settings=settings, reference=reference,
        callbacks=[ValidatorEval(task, noise, held_out, ev["steps"], ev["options"])],
    )
    if last is not None and rank == 0:
        print(f"resuming from {last}", flush=True)
    t0 = time.time()
    trainer.train(resume_from_checkpoint=str(last) if last else None)
    wall = time.time() - t0
    scores = final_scores(trainer, lambda: evaluate(task, model, noise, held_out, **ev["options"])) \
        if held_out else {}
    result = {"scores": scores, "scores_before": before, "wall_seconds": wall, "out": str(out),
              "world_size": trainer.args.world_size, "steps": trainer.state.global_step}
    if trainer.is_world_process_zero():
        model.save_pretrained(out, safe_serialization=True)
        history = trainer.state.log_history
        (out / "training_log.json").write_text(json.dumps(history, indent=1))
        plot_rollouts(history, out / "loss.png")
        write_reward_card(out, task, recipe, source, settings, scores, before, wall, eval_kw, overrides or [])
    return result


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


def load_recipe_for_reward(task_name: str, recipe_path: str | None,
                           overrides: list[str] | None) -> dict[str, Any]:
    from .recipes import load_recipe

    return load_recipe(task_name, recipe_path, overrides, mode="reward")


def write_reward_card(out: Path, task: Task, recipe: dict[str, Any], source: str, s: RewardSettings,
                      scores: dict[str, float], before: dict[str, float], wall: float,
                      eval_kw: dict[str, Any], overrides: list[str] | None = None) -> None:
    from .training import machine_description, scores_table

    tr, ev = recipe["train"], recipe["eval"]
    where = ", ".join(f"{k}={v}" for k, v in eval_kw.items()) or "default generator"
    lines = [
        f"# {task.name} denoiser, validator-reward fine-tuned",
        "",
        f"`{source}` fine-tuned for the `{task.name}` task of `constrained` with validator rewards "
        "(group-relative advantages over rollouts of the model itself; see finetune/reward.py).",
        "",
        "## How it was trained",
        "",
        f"- command: `constrained finetune {task.name} --mode reward --out {out}"
        + "".join(f" --set {o}" for o in overrides or []) + "` "
        f"(recipe `finetune/recipes/{task.name}.reward.toml` if present, else `{task.name}.toml`)",
        f"- rollouts: {s.group_size} per problem, temperature {s.temperature}, up to {s.max_passes} model "
        f"passes, model only; problems: {s.pool_size} generated ({s.grade or 'default'} grade, "
        f"seed {20_000 + tr['seed']})",
        f"- reward: mean of the fractions of constraint groups and of cells satisfied, + {s.solved_bonus} "
        f"if solved; KL weight {s.kl_beta}",
        f"- steps: {tr['max_steps']}, {tr['batch_size']} problems per step, lr {tr['learning_rate']}",
        f"- wall time: {wall / 60:.1f} min on {machine_description()}",
        "",
        "## Scores",
        "",
        f"Verified solve rate on {ev['size']} held-out generated problems "
        f"({where}; seed {10_000 + tr['seed']}):",
        "",
        *scores_table([("before", before), ("after", scores)]),
    ]
    lines += [""]
    (out / "README.md").write_text("\n".join(lines))
