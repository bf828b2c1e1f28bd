"""Train the block-diffusion language model and its autoregressive baseline on the same
tokens, the same batches and the same number of steps (nanoGPT-style loop, AdamW, cosine).

    python -m constrained.engine.lm_train --kind block --out constrained/models/code-block-diffusion
    python -m constrained.engine.lm_train --kind ar    --out constrained/models/code-ar

Both read the Python source corpus the code tasks read, in the code tasks' tokenizer
(``engine/corpus.py``, ``constrained/pycorpus.py``; the tokenizer is saved next to each model;
``--tokenizer`` names another, ``--corpus-root NAME=DIR`` other roots). The AR model
sees ``--fim-rate`` of its windows in fill-in-the-middle (prefix-suffix-middle) order, so
it can also infill (``engine/ar.py: psm_infill``); the block model sees the same windows
as they are.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from constrained.errors import ConfigError
from constrained.pycorpus import TOKENIZER_PATH, corpus_roots

from .ar import ar_config_like
from .blockmodel import BlockDiffusionLM, block_config
from .corpus import (
    EOS,
    FIM_MIDDLE,
    FIM_PREFIX,
    FIM_SUFFIX,
    encode_texts,
    fim_permute,
    load_corpus,
    load_tokenizer,
    sample_windows,
    special_ids,
)
from .noise import make_noise


@dataclass
class LMTrainConfig:
    kind: str = "block"  # "block" (block diffusion) or "ar"
    canvas_length: int = 256
    prompt_max: int = 64  # training prompts are 1..prompt_max tokens
    hidden_size: int = 128
    num_hidden_layers: int = 4
    num_attention_heads: int = 4
    intermediate_size: int = 384
    noise: str = "mask"
    steps: int = 600
    batch_size: int = 16
    learning_rate: float = 2e-3
    warmup: int = 50
    max_minutes: float = 9.5
    seed: int = 0
    fim_rate: float = 0.5  # AR only: share of windows in prefix-suffix-middle order
    stratified_t: bool = False  # block only: low-discrepancy noise levels across the batch (MDLM)
    shift: bool = False  # block only: canvas logits from the previous position (AR-to-diffusion, Dream)
    max_chars: int = 8_000_000  # training text read from the corpus

    def __post_init__(self) -> None:
        if self.kind not in ("block", "ar"):
            raise ConfigError(f"kind must be 'block' or 'ar', got {self.kind!r}")
        if self.prompt_max < 1 or self.canvas_length < 1:
            raise ConfigError("prompt_max and canvas_length must be >= 1")
        if not 0.0 <= self.fim_rate <= 1.0:
            raise ConfigError(f"fim_rate must be in [0, 1], got {self.fim_rate}")


def _lr(cfg: LMTrainConfig, step: int, elapsed: float = 0.0) -> float:
    """Linear warm-up, then cosine to zero over the steps or the time budget, whichever runs out first."""
    if step < cfg.warmup:
        return cfg.learning_rate * (step + 1) / cfg.warmup
    frac = max((step - cfg.warmup) / max(1, cfg.steps - cfg.warmup), elapsed / (cfg.max_minutes * 60))
    return cfg.learning_rate * 0.5 * (1 + math.cos(math.pi * min(frac, 1.0)))


def build_models_config(cfg: LMTrainConfig, tok):
    """(block-diffusion config, AR config) for the tokenizer ``tok``: same architecture, same vocab."""
    bc = block_config(tok.get_vocab_size(), cfg.canvas_length, cfg.noise, hidden_size=cfg.hidden_size,
                      num_hidden_layers=cfg.num_hidden_layers, num_attention_heads=cfg.num_attention_heads,
                      intermediate_size=cfg.intermediate_size, eos_token_id=tok.token_to_id(EOS),
                      non_content_ids=[i for i in special_ids(tok) if i > 1], shift=cfg.shift)
    ac = ar_config_like(bc)
    ac.train_length = cfg.prompt_max + cfg.canvas_length  # the longest sequence it was trained on
    ac.fim_rate = cfg.fim_rate
    return bc, ac


def fim_ids(tok) -> tuple[int, int, int, int]:
    """(prefix, suffix, middle, eos) sentinel ids of ``tok``; a clear error when one is missing."""
    ids = tuple(tok.token_to_id(t) for t in (FIM_PREFIX, FIM_SUFFIX, FIM_MIDDLE, EOS))
    if any(i is None for i in ids):
        raise ConfigError(f"the tokenizer lacks the fill-in-the-middle tokens {FIM_PREFIX} {FIM_SUFFIX} "
                          f"{FIM_MIDDLE} {EOS}")
    return ids  # type: ignore[return-value]


def ar_weights_into_block(model: BlockDiffusionLM, ar_dir: str | Path) -> None:
    """Start a block-diffusion model from the autoregressive model saved in ``ar_dir`` (the same
    architecture: every weight is copied; with ``shift`` the AR's next-token head keeps its meaning)."""
    from transformers import AutoConfig, LlamaForCausalLM

    ar_dir = Path(ar_dir)
    if not (ar_dir / "config.json").exists():
        raise ConfigError(f"--init-from-ar {ar_dir}: no config.json there")
    ac = AutoConfig.from_pretrained(ar_dir)
    keys = ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads", "num_key_value_heads",
            "intermediate_size")
    diff = [f"{k} {getattr(ac, k, None)} vs {getattr(model.config, k)}" for k in keys
            if getattr(ac, k, None) != getattr(model.config, k)]
    if ac.model_type != "llama" or diff:
        raise ConfigError(f"--init-from-ar {ar_dir}: not a Llama model of the block model's architecture "
                          f"({ac.model_type}; " + (", ".join(diff) or "same shapes") + ")")
    ar = LlamaForCausalLM.from_pretrained(ar_dir, use_safetensors=True)
    model.load_state_dict(ar.state_dict(), strict=True)


def train(cfg: LMTrainConfig, out: str | Path, tokenizer: str | None = None, init: str | None = None,
          init_from_ar: str | None = None, roots: Sequence[tuple[str, Path]] | None = None) -> dict:
    """Train from scratch, continue the model saved at ``init`` (its tokenizer too), or (block models)
    start from the weights of the autoregressive model saved at ``init_from_ar``. ``roots``: the
    corpus's (name, directory) pairs (default ``constrained.pycorpus.corpus_roots()``); the tokenizer
    is ``tokenizer``, else that of ``init`` / ``init_from_ar``, else the code tasks' shipped one."""
    from transformers import LlamaForCausalLM

    if init and init_from_ar:
        raise ConfigError("give --init (continue a block model) or --init-from-ar, not both")
    if init_from_ar and cfg.kind != "block":
        raise ConfigError("--init-from-ar starts a block-diffusion model (--kind block) from an AR model")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    corpus = load_corpus(corpus_roots() if roots is None else roots, cfg.max_chars)
    tok = load_tokenizer(tokenizer or init or init_from_ar or TOKENIZER_PATH)
    tok.save(str(out / "tokenizer.json"))
    train_ids = encode_texts(tok, corpus.train)
    held_ids = encode_texts(tok, corpus.heldout)
    V = tok.get_vocab_size()
    bc, ac = build_models_config(cfg, tok)
    fim = fim_ids(tok) if cfg.kind == "ar" and cfg.fim_rate > 0 else None
    torch.manual_seed(cfg.seed)
    cls = BlockDiffusionLM if cfg.kind == "block" else LlamaForCausalLM
    prev_steps, prev_wall, prev_cmds = 0, 0.0, []
    if init:
        model = cls.from_pretrained(init, use_safetensors=True)
        prev = Path(init) / "training_log.json"
        if prev.exists():
            ps = json.loads(prev.read_text())["summary"]
            prev_steps, prev_wall = ps.get("steps_total", 0), ps.get("wall_total", 0.0)
            prev_cmds = ps.get("commands", [])
    else:
        model = cls(bc if cfg.kind == "block" else ac)
        if init_from_ar:
            ar_weights_into_block(model, init_from_ar)
    model.train()
    noise = make_noise(cfg.noise, 1)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.learning_rate, weight_decay=0.01, betas=(0.9, 0.95))
    rng = np.random.default_rng(cfg.seed)  # the windows: the same for both kinds
    fim_rng = np.random.default_rng(cfg.seed + 1)  # FIM draws, apart so they never shift the windows
    gen = torch.Generator().manual_seed(cfg.seed)
    S = cfg.prompt_max + cfg.canvas_length
    log: list[dict] = []
    t0 = time.time()
    step = 0
    for step in range(cfg.steps):
        x = sample_windows(train_ids, cfg.batch_size, S, rng)  # same windows for both kinds
        p = int(rng.integers(1, cfg.prompt_max + 1))
        x = x[:, cfg.prompt_max - p :]
        for g in opt.param_groups:
            g["lr"] = _lr(cfg, step, time.time() - t0)
        if cfg.kind == "block":
            loss = model.diffusion_loss(x, p, noise, gen, stratified=cfg.stratified_t)
        else:
            if fim is not None:
                x = fim_permute(x, cfg.fim_rate, fim_rng, *fim)
            loss = model(input_ids=x, labels=x, use_cache=False).loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        if step % 20 == 0 or step == cfg.steps - 1:
            log.append({"step": step, "loss": float(loss), "seconds": round(time.time() - t0, 1)})
            print(f"step {step} loss {float(loss):.4f} {time.time() - t0:.0f}s", flush=True)
        if time.time() - t0 > cfg.max_minutes * 60:
            print(f"stopping at step {step}: {cfg.max_minutes} min budget", flush=True)
            break
    wall = time.time() - t0
    model.eval()
    held = heldout_loss(model, cfg, held_ids, noise)
    held_fim = heldout_loss(model, cfg, held_ids, noise, fim=fim) if fim is not None else None
    model.save_pretrained(out, safe_serialization=True)
    summary = {"config": asdict(cfg), "steps_done": step + 1, "steps_total": prev_steps + step + 1,
               "init": init, "init_from_ar": init_from_ar, "wall_seconds": round(wall, 1),
               "wall_total": round(prev_wall + wall, 1),
               "commands": prev_cmds + ["python -m constrained.engine.lm_train " + " ".join(sys.argv[1:])],
               "heldout_loss": held, "heldout_fim_loss": held_fim, "vocab_size": V,
               "train_tokens": int(train_ids.numel()),
               "heldout_tokens": int(held_ids.numel()), "corpus": corpus.source}
    (out / "training_log.json").write_text(json.dumps({"summary": summary, "log": log}, indent=1))
    _plot(log, out / "loss.png", cfg.kind)
    _card(out, cfg, summary, model)
    return summary


@torch.no_grad()
def heldout_loss(model, cfg: LMTrainConfig, held_ids: torch.Tensor, noise, n: int = 64,
                 fim: tuple[int, int, int, int] | None = None) -> float:
    """Mean loss on ``n`` held-out windows: the training objective, on files never trained on
    (``fim``: every window in prefix-suffix-middle order, AR only)."""
    rng = np.random.default_rng(1234)
    gen = torch.Generator().manual_seed(1234)
    S = cfg.prompt_max + cfg.canvas_length
    x = sample_windows(held_ids, n, S, rng)
    if fim is not None:
        x = fim_permute(x, 1.0, rng, *fim)
    losses = []
    for i in range(0, n, 16):
        xb = x[i : i + 16]
        if cfg.kind == "block":
            losses.append(float(model.diffusion_loss(xb, cfg.prompt_max, noise, gen)))
        else:
            losses.append(float(model(input_ids=xb, labels=xb, use_cache=False).loss))
    return round(sum(losses) / len(losses), 4)


def _plot(log: list[dict], path: Path, kind: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.plot([r["step"] for r in log], [r["loss"] for r in log])
    ax.set_xlabel("step")
    ax.set_ylabel("diffusion loss" if kind == "block" else "next-token loss")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def _card(out: Path, cfg: LMTrainConfig, s: dict, model) -> None:
    n = sum(p.numel() for p in model.parameters())
    machine = (f"{platform.machine()}, {os.cpu_count()} cores, "
               f"{'CUDA' if torch.cuda.is_available() else 'CPU only'}, torch {torch.__version__}")
    block = cfg.kind == "block"
    what = ("a block-diffusion language model (DiffusionGemma-style: causal prefill into a KV cache, "
            f"bidirectional {cfg.canvas_length}-token canvas, {cfg.noise} noise)" if block
            else "the autoregressive baseline of the block-diffusion model `code-block-diffusion`: the same "
            "architecture and size, the same tokens, with fill-in-the-middle")
    obj = "MDLM masked-diffusion loss (an upper bound on the NLL per token)" if block \
        else "next-token cross-entropy (NLL per token)"
    tok = load_tokenizer(out)
    ar_steps = 0
    if s.get("init_from_ar"):
        ar_log = Path(s["init_from_ar"]) / "training_log.json"
        if ar_log.exists():
            ar_steps = int(json.loads(ar_log.read_text())["summary"].get("steps_total", 0))
    fim_line = ("- fill-in-the-middle: none (the block model sees every window as it is; the AR model sees "
                f"the same windows, {cfg.fim_rate:.0%} of them reordered prefix-suffix-middle)" if block else
                f"- fill-in-the-middle: {cfg.fim_rate:.0%} of the windows (drawn per window, seed {cfg.seed + 1}) "
                "are reordered prefix-suffix-middle (Bavarian et al. 2022; StarCoder): the first "
                f"{cfg.prompt_max + cfg.canvas_length - 4} tokens are cut at two uniform random points into "
                "prefix / middle / suffix and written `[PRE] prefix [SUF] suffix [MID] middle [EOS]`; "
                "the loss is the ordinary next-token loss on every position")
    lines = [
        f"# {out.name}",
        "",
        f"{what[0].upper() + what[1:]}: a Llama-style decoder, {n / 1e6:.2f} M parameters "
        f"({cfg.num_hidden_layers} layers, width {cfg.hidden_size}, {cfg.num_attention_heads} heads, "
        f"vocab {s['vocab_size']}), part of `constrained`'s engine benchmark (BENCHMARKS.md).",
        "",
        "## Training",
        "",
        "- commands (in order): " + "; ".join(f"`{c}`" for c in s["commands"]),
        f"- data: the code tasks' Python corpus ({s['corpus']}; modules held out by the hash of their "
        f"path, `constrained.pycorpus`): {s['train_tokens']:,} training tokens "
        f"({cfg.max_chars:,} characters read), {s['heldout_tokens']:,} held-out tokens; the code tasks' "
        "byte-level BPE tokenizer (`tokenizer.json`, a copy of `constrained/models/code/tokenizer.json`)",
        f"- {s['steps_total']} steps"
        + (f" ({s['steps_done']} in the last run, continuing `{s['init']}`)" if s["init"] else "")
        + f" of {cfg.batch_size} windows of up to {cfg.prompt_max}+{cfg.canvas_length} tokens "
        + (f"(seed {cfg.seed}), starting from the weights of the autoregressive model `{s['init_from_ar']}`"
           + (" with the logits shifted one position, so its next-token head keeps its meaning (Dream's "
              "adaptation of an AR model)" if cfg.shift else "")
           + f": on top of that model's {ar_steps} steps, {ar_steps + s['steps_total']} training steps in all "
           f"against the AR baseline's {ar_steps}"
           if s.get("init_from_ar") else
           f"(the same windows, seed {cfg.seed}, for both models: equal training-batch budget)")
        + ", AdamW lr "
        f"{cfg.learning_rate}, {cfg.warmup} warm-up steps, cosine to zero",
        fim_line,
        f"- wall time {s['wall_total'] / 60:.1f} min in all on {machine}, 1 torch thread",
        "",
        "## Score",
        "",
        f"Held-out {obj}: **{s['heldout_loss']:.3f}** (64 windows of held-out modules)"
        + (f"; the same windows in prefix-suffix-middle order: **{s['heldout_fim_loss']:.3f}**."
           if s.get("heldout_fim_loss") is not None else "."),
        "",
    ]
    if not block:
        ids = {t: tok.token_to_id(t) for t in (FIM_PREFIX, FIM_SUFFIX, FIM_MIDDLE, EOS)}
        lines += [
            "## Infilling (prefix-suffix-middle prompting)",
            "",
            f"Prompt with the token ids `{FIM_PREFIX}` ({ids[FIM_PREFIX]}), the prefix's tokens, "
            f"`{FIM_SUFFIX}` ({ids[FIM_SUFFIX]}), the suffix's tokens, `{FIM_MIDDLE}` ({ids[FIM_MIDDLE]}); "
            f"decode greedily until `{EOS}` ({ids[EOS]}): what came before `{EOS}` is the middle. Prefix and "
            "suffix are tokenized separately (`tokenizer.encode(text).ids`). The sentinels are special "
            "tokens: write them as ids, not as text inside the prefix. The model was trained on sequences "
            f"of up to {cfg.prompt_max + cfg.canvas_length} tokens: keep prompt + middle within that "
            "(`psm_infill` keeps the end of the prefix and the start of the suffix that fit).",
            "",
            "```python",
            "from transformers import LlamaForCausalLM",
            "from constrained.engine.ar import psm_infill",
            "from constrained.engine.corpus import load_tokenizer",
            "",
            'model = LlamaForCausalLM.from_pretrained("constrained/models/code-ar", use_safetensors=True)',
            'tok = load_tokenizer("constrained/models/code-ar")',
            'middle = psm_infill(model, tok, prefix="def add(a, b):\\n    ", suffix="\\n\\nprint(add(1, 2))\\n",',
            "                    max_new_tokens=32)  # -> the text between them, without [EOS]",
            "```",
            "",
            "Without the sentinels it is an ordinary left-to-right model (the engine benchmark's AR baseline).",
            "",
        ]
    lines += [
        "A small model trained for minutes on a CPU: it writes Python-looking text, not working "
        "programs. It exists to measure the engine (speed, passes, cache) and to be the same-size "
        "baseline, not to be used for code.",
        "",
    ]
    (out / "README.md").write_text("\n".join(lines))


def write_card(out: str | Path) -> None:
    """Rewrite ``out``/README.md from the model and its ``training_log.json`` (no training)."""
    from transformers import AutoConfig, LlamaForCausalLM

    out = Path(out)
    log = out / "training_log.json"
    if not log.exists():
        raise ConfigError(f"no training_log.json in {out}: train the model first")
    s = json.loads(log.read_text())["summary"]
    cfg = LMTrainConfig(**{k: v for k, v in s["config"].items() if k in LMTrainConfig.__dataclass_fields__})
    kind = AutoConfig.from_pretrained(out).model_type
    model = (BlockDiffusionLM if kind == "constrained-block-diffusion" else LlamaForCausalLM).from_pretrained(
        out, use_safetensors=True)
    _card(out, cfg, s, model)


def _root(arg: str) -> tuple[str, Path]:
    """``NAME=DIR`` of ``--corpus-root`` -> (NAME, DIR); ConfigError when it is not one."""
    name, eq, where = arg.partition("=")
    if not eq or not name or not where:
        raise ConfigError(f"--corpus-root {arg!r}: write NAME=DIR (e.g. stdlib=/usr/lib/python3.11)")
    return name, Path(where)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--kind", choices=["block", "ar"], required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--tokenizer", default=None, help="reuse this tokenizer.json (or a folder holding one)")
    p.add_argument("--init", default=None, help="continue training the model saved in this folder")
    p.add_argument("--init-from-ar", default=None,
                   help="block models: start from the weights of the AR model saved in this folder "
                        "(same architecture; use with --shift)")
    p.add_argument("--corpus-root", action="append", default=None, metavar="NAME=DIR",
                   help="read the corpus under DIR (repeatable; default: this Python's standard library "
                        "and installed packages)")
    p.add_argument("--card-only", action="store_true", help="only rewrite the model card of --out")
    for f in LMTrainConfig.__dataclass_fields__.values():
        if f.name == "kind":
            continue
        if isinstance(f.default, bool):
            p.add_argument(f"--{f.name.replace('_', '-')}", action="store_true", default=None)
        else:
            p.add_argument(f"--{f.name.replace('_', '-')}", type=type(f.default), default=None)
    a = p.parse_args(argv)
    kw = {k: v for k, v in vars(a).items() if k in LMTrainConfig.__dataclass_fields__ and v is not None}
    try:
        roots = None if a.corpus_root is None else [_root(r) for r in a.corpus_root]
        if a.card_only:
            write_card(a.out)
            return 0
        print(json.dumps(train(LMTrainConfig(**kw), a.out, a.tokenizer, a.init, a.init_from_ar, roots),
                         indent=1))
    except ConfigError as e:
        print(f"lm_train: error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
