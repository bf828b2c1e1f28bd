"""Code-infill benchmark: holes cut from held-out modules of the corpus (whole modules the
model never saw; tasks/code_corpus.py), filled by the shipped code denoiser, model only and
with validator re-noising (syntax errors localised to hole tokens, backjumping, tabu,
restarts), and by the autoregressive baseline of the engine benchmark prompted
prefix-suffix-middle (``constrained/models/code-ar``, when it was trained with
fill-in-the-middle).

    python benchmarks/code.py                      # 500 single-line + 200 multi-line holes
    python benchmarks/code.py --n-line 50 --n-multi 20 --no-ar

Writes benchmarks/results/code.md (then run benchmarks/collect.py).
"""

from __future__ import annotations

import argparse
import ast
import difflib
import json
import statistics
import sys
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch  # noqa: E402
from common import RESULTS, ROOT, command, machine, percentile, write_section  # noqa: E402
from constrained.tasks.code import CodeInfill, CodeProblem, compile_error  # noqa: E402

from constrained import load_task, make_solver, solve_with  # noqa: E402

SETTINGS = {
    "diffusion, model only": {"model_only": True},
    "diffusion + validator re-noising (default)": {},
}
AR_DIR = ROOT / "constrained" / "models" / "code-ar"


def _dump(text: str) -> str | None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return ast.dump(ast.parse(text))
        except (SyntaxError, ValueError, RecursionError):
            return None


class Scorer:
    """Parse, exact and AST match of completed files against the original modules."""

    def __init__(self) -> None:
        self._orig: dict[str, str | None] = {}

    def score(self, holes: list[tuple[CodeProblem, str]], fills: list[str]) -> dict[str, float]:
        n = len(holes)
        parse = exact = strip = same_ast = empty = 0
        sim = 0.0
        for (p, truth), fill in zip(holes, fills):
            sim += difflib.SequenceMatcher(None, fill.strip(), truth.strip(), autojunk=False).ratio()
            src = p.with_hole(fill)
            empty += not fill.strip()
            ok = bool(fill.strip()) and compile_error(src, p.name) is None
            parse += ok
            exact += fill == truth
            strip += fill.strip() == truth.strip()
            if ok:
                key = p.name + f":{len(p.prefix)}"
                if key not in self._orig:
                    self._orig[key] = _dump(p.with_hole(truth))
                same_ast += _dump(src) == self._orig[key]
        return {"parse": parse / n, "exact": exact / n, "exact_strip": strip / n, "ast": same_ast / n,
                "empty": empty / n, "chars": sum(len(f) for f in fills) / n, "edit_sim": sim / n,
                "distinct": len({f.strip() for f in fills}) / n}


@torch.no_grad()
def hole_nll(task: CodeInfill, model, holes, draws: int = 4, batch: int = 64, seed: int = 0) -> float:
    """The denoiser's held-out negative log-likelihood bound (MDLM, nats) per hole token, the end
    ([PAD]) counted as one token: ``draws`` noise levels t ~ U(0, 1) per hole, the masked positions'
    cross-entropy / t, over the task's candidates. Measures the model, not the search."""
    from constrained.engine.denoiser import predict_logits

    gen = torch.Generator().manual_seed(seed)
    mask_id, total, count = task.vocab.mask_id, 0.0, 0
    for i in range(0, len(holes), batch):
        part = holes[i: i + batch]
        canvas = task.encode([p for p, _ in part])
        x0 = torch.zeros_like(canvas.tokens)
        for j, (_, truth) in enumerate(part):
            ids = task.encode_hole(truth)
            x0[j, : len(ids)] = torch.tensor(ids, dtype=torch.long)
            count += min(len(ids) + 1, task.hole_tokens)
        allowed = canvas.allowed_values()
        for _ in range(draws):
            t = torch.rand(len(part), 1, generator=gen).clamp_min(1e-3)
            masked = torch.rand(x0.shape, generator=gen) < t
            xt = torch.where(masked, torch.full_like(x0, mask_id), x0)
            logits = predict_logits(model, xt, canvas).float().masked_fill(~allowed, -1e9)
            ce = torch.nn.functional.cross_entropy(logits.transpose(1, 2), x0, reduction="none")
            total += float((ce * masked / t).sum()) / draws
    return total / max(count, 1)


def run_diffusion(task: CodeInfill, model: str, holes, batch_size: int, scorer: Scorer,
                  **options) -> dict[str, float]:
    probs = [p for p, _ in holes]
    solver = make_solver(task, model, **options)
    t0 = time.perf_counter()
    res = solve_with(solver, probs, batch_size=batch_size)
    wall = time.perf_counter() - t0
    passes = [r.passes for r in res]
    n_tokens = sum(sum(1 for t in r.tokens if t != 0) for r in res)
    m = scorer.score(holes, [r.solution.hole for r in res])
    verified = sum(r.valid for r in res) / len(res)
    return {
        **m,
        "verified": verified,
        "passes_mean": statistics.mean(passes),
        "passes_median": statistics.median(passes),
        "passes_p95": percentile(passes, 95),
        "restarts": sum(r.restarts for r in res) / len(res),
        "holes_per_s": len(res) / wall,
        "tokens_per_s": n_tokens / wall,
        "overhead": solver.stats.overhead_share,
        "batch": batch_size,
        "wall": wall,
    }


def ar_model():
    """(model, tokenizer) of the AR baseline if it was trained with fill-in-the-middle, else None."""
    if not (AR_DIR / "config.json").exists():
        return None
    from constrained.engine.corpus import load_tokenizer
    from transformers import LlamaForCausalLM

    model = LlamaForCausalLM.from_pretrained(AR_DIR, use_safetensors=True).eval()
    if not float(getattr(model.config, "fim_rate", 0) or 0) > 0:
        return None
    return model, load_tokenizer(AR_DIR)


def run_ar(model, tok, holes, max_new_tokens: int, scorer: Scorer) -> dict[str, float]:
    """Greedy prefix-suffix-middle infilling, one hole at a time (batch 1, KV cache)."""
    from constrained.engine.ar import psm_infill

    fills, n_tokens = [], 0
    t0 = time.perf_counter()
    for p, _ in holes:
        mid = psm_infill(model, tok, p.prefix, p.suffix, max_new_tokens=max_new_tokens)
        fills.append(mid)
        n_tokens += len(tok.encode(mid).ids) if mid else 0
    wall = time.perf_counter() - t0
    m = scorer.score(holes, fills)
    return {**m, "verified": float("nan"), "passes_mean": float("nan"), "passes_median": float("nan"),
            "passes_p95": float("nan"), "restarts": float("nan"), "holes_per_s": len(holes) / wall,
            "tokens_per_s": n_tokens / wall, "overhead": float("nan"), "batch": 1, "wall": wall}


HEADER = ("| holes | method | parse rate | reported valid | exact match | exact (strip) | same AST | edit similarity | "
          "distinct fills | empty holes | mean hole chars | passes per hole: mean / median / p95 | "
          "restarts per hole | hole tokens/s | "
          "holes/s |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")


def _f(x: float, fmt: str) -> str:
    return "–" if x != x else format(x, fmt)


def row(kind: str, name: str, m: dict[str, float]) -> str:
    passes = ("1 prefill + 1 per token" if m["passes_mean"] != m["passes_mean"] else
              f"{m['passes_mean']:.1f} / {m['passes_median']:.0f} / {m['passes_p95']:.0f}")
    return (f"| {kind} | {name} | {m['parse']:.1%} | {_f(m['verified'], '.1%')} | {m['exact']:.1%} | "
            f"{m['exact_strip']:.1%} | "
            f"{m['ast']:.1%} | {m['edit_sim']:.1%} | {m['distinct']:.1%} | {m['empty']:.1%} | {m['chars']:.1f} | "
            f"{passes} | "
            f"{_f(m['restarts'], '.2f')} | "
            f"{m['tokens_per_s']:.0f} (batch {m['batch']}) | {m['holes_per_s']:.2f} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n-line", type=int, default=500)
    ap.add_argument("--n-multi", type=int, default=200)
    ap.add_argument("--seed", type=int, default=2026)
    ap.add_argument("--model", default="default")
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--no-ar", action="store_true", help="skip the autoregressive baseline")
    args = ap.parse_args()

    task = load_task("code-infill")
    t0 = time.perf_counter()
    sets = {
        f"single-line ({args.n_line})": task.generate(args.n_line, seed=args.seed, kind="line"),
        f"multi-line, 2-3 lines ({args.n_multi})": task.generate(args.n_multi, seed=args.seed + 1,
                                                                 kind="multiline"),
    }
    gen_s = time.perf_counter() - t0
    args.orig_chars = {kind.split(" (")[0]: statistics.mean(len(h) for _, h in holes) for kind, holes in sets.items()}
    n_modules = len({p.name for holes in sets.values() for p, _ in holes})
    ar = None
    scorer = Scorer()
    rows, raw = [], {}
    denoiser = make_solver(task, args.model).model
    n_dn = sum(p.numel() for p in denoiser.parameters())
    args.nll = {}
    for kind, holes in sets.items():
        args.nll[kind.split(" (")[0]] = hole_nll(task, denoiser, holes)
        raw[f"{kind} / hole NLL"] = {"nats_per_token": args.nll[kind.split(" (")[0]]}
        for name, opts in SETTINGS.items():
            m = run_diffusion(task, args.model, holes, args.batch_size, scorer, **opts)
            raw[f"{kind} / {name}"] = m
            rows.append(row(kind, name, m))
            print(rows[-1], flush=True)
            write_section("code", section(task, args, rows, ar, n_modules, gen_s, n_dn, done=False))
        ar = ar or (None if args.no_ar else ar_model())  # looked up late: it may land while this runs
        if ar is not None:
            m = run_ar(*ar, holes, task.hole_tokens, scorer)
            raw[f"{kind} / AR, prefix-suffix-middle"] = m
            rows.append(row(kind, "AR baseline, prefix-suffix-middle (greedy)", m))
            print(rows[-1], flush=True)
    (RESULTS / "code.json").write_text(json.dumps(raw, indent=1))
    print(write_section("code", section(task, args, rows, ar, n_modules, gen_s, n_dn, done=True)))


def section(task, args, rows: list[str], ar, n_modules: int, gen_s: float, n_dn: int, done: bool) -> str:
    if ar is not None:
        cfg = ar[0].config
        n_ar = sum(p.numel() for p in ar[0].parameters())
        ctx = getattr(cfg, "train_length", None) or cfg.max_position_embeddings
        ar_note = (f"- *AR baseline*: `constrained/models/code-ar` ({n_ar / 1e6:.2f} M parameters, the same corpus "
                   f"split and tokenizer, trained with fill-in-the-middle at rate {cfg.fim_rate}), prompted "
                   f"`[PRE] prefix [SUF] suffix [MID]` within its {ctx}-token "
                   f"context and decoded greedily until `[EOS]` or {task.hole_tokens} tokens; "
                   "it has no validator loop, so its parse rate is what it returns.")
    else:
        ar_note = ("- *AR baseline*: not run — `constrained/models/code-ar` was not trained with "
                   "fill-in-the-middle when this was measured (or `--no-ar`).")
    denoiser = json.loads((ROOT / "constrained" / "models" / "code" / "config.json").read_text())
    orig = ", ".join(f"{k}: {v:.1f}" for k, v in args.orig_chars.items())
    nll = ", ".join(f"{k}: {v:.2f}" for k, v in args.nll.items())
    arch = ("; a block-diffusion LM that reads the context as a prefix-suffix-middle prompt, started from "
            "the AR baseline's weights, `engine/infill.py`"
            if denoiser.get("model_type") == "constrained-psm-denoiser" else "; a bidirectional encoder")
    partial = "" if done else "\n**Partial: the run had not finished when this was written.**\n"
    return f"""
## Code infilling (Python)
{partial}
Holes cut from **held-out modules** (whole files of the standard library and installed packages
that the model never trained on; {n_modules} modules, split by the SHA-1 of the module path,
`tasks/code_corpus.py`), filled by the shipped denoiser `constrained/models/code`
({n_dn / 1e6:.2f} M parameters, {denoiser['num_hidden_layers']} layers of width {denoiser['hidden_size']}{arch}; hole
budget {task.hole_tokens} tokens, context {task.prefix_tokens} tokens before + {task.suffix_tokens} after).
A single-line hole is one line's code from its first non-blank character to its end; a multi-line hole
spans 2-3 lines. Holes needing more than the {task.hole_tokens}-token budget are skipped when drawing
(about 1 % of single lines and 17 % of 2-3-line spans), so multi-line holes lean short. Seeds
{args.seed} / {args.seed + 1}.

- *parse rate*: returned files that compile (`compile(..., "exec")`) with a non-empty hole (an empty
  hole often compiles — deleting a line — but fills nothing; *empty holes* counts them). With
  re-noising a file is reported valid only when it passes these checks, so there the parse rate is
  the verified rate (*reported valid*: results the solver marked valid); *mean hole chars*: length
  of the returned hole text (the originals:
  {orig};
- *exact match*: the hole's text equals the original (*strip*: ignoring surrounding whitespace);
  *same AST*: the completed file's `ast.dump` equals the original file's (equal code up to layout);
  *edit similarity*: `difflib.SequenceMatcher` ratio of the returned hole to the original (both
  stripped), averaged over holes: how close a fill is when it is not exact; *distinct fills*: distinct
  hole texts among the returned ones (a model that writes one template into every hole scores low,
  even when the template compiles);
- *held-out NLL* of the denoiser itself, whatever the search: the MDLM bound in nats per hole token
  (the end counted as one), 4 noise levels per hole: {nll};
- *passes per hole*: model forward passes until the file validated or the budget
  ({task.solver_defaults['max_passes']} passes) was spent; *hole tokens/s*: non-`[PAD]` tokens of the
  returned holes per second of wall time, validation included;
- *decoding*: both diffusion rows use the task's solver defaults
  `{dict(task.solver_defaults)}`; *model only* switches domains, validator re-noising, tabu and
  restarts off, not the sampler's rules (`end_token`: a `[PAD]` only where the code has reached it;
  `window`: left to right, a few open positions at a time);
- *pass rate of the module's own behaviour* is not measured: the held-out modules come without
  tests that run in isolation here (stdlib test packages and `tests` folders are not in the corpus, and
  most modules import their package). *Same AST* is the strongest check of behaviour measured: a
  completion with the original's AST behaves as the original;
{ar_note}

{HEADER}
{chr(10).join(rows)}

Command: `{command()}` (holes drawn in {gen_s:.0f} s).
Machine: {machine()}; shared with other jobs while it ran, so rates are lower bounds.
"""


if __name__ == "__main__":
    main()
