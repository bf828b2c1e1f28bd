"""Throughput of each denoiser adapter: canvas passes per second at batch 64 on the Sudoku task,
tiny random configs of similar width, each saved and opened by path through ``load_denoiser``
(so the loader's dispatch and the tokenizer mapping are on the measured path).

    python benchmarks/adapters.py                      # batch 64, 20 timed passes per adapter
    python benchmarks/adapters.py --batch 64 --passes 40 --solver-passes 16

Two figures per adapter:

- **forward passes/s**: one ``predict_logits`` call on 64 canvases of 81 cells (no_grad), the
  median of ``--passes`` timed calls after 2 warm-up calls;
- **Solver passes/s**: ``Solver.run`` on 64 expert puzzles (benchmarks/data, seed 12345) for at most
  ``--solver-passes`` passes of the local search (``search="local"``), every constraint mechanism on
  (domains, validator re-noising, backjumping, tabu, restarts): canvas passes (each item's, summed)
  per second of the whole run, model and constraint layer together. The models are random, so solve
  rates mean nothing and are not reported.

Weights are random: no checkpoint hub is reachable here. Results go to
benchmarks/results/adapters.md.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch  # noqa: E402
from common import cached_pairs, command, machine, write_section  # noqa: E402

WIDTH = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4)
WORDS = ["<pad>", "<eos>", "<bos>", "<unk>", "<mask>", *"0123456789"]


def tokenizer(vocab_size: int = 64):
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    full = WORDS + [f"<x{i}>" for i in range(vocab_size - len(WORDS))]
    tok = Tokenizer(models.WordLevel({t: i for i, t in enumerate(full)}, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    return PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", eos_token="<eos>", bos_token="<bos>",
                                   unk_token="<unk>", mask_token="<mask>")


def build(kind: str, task, root: Path) -> Path:
    """A tiny random checkpoint of ``kind`` saved under ``root``; returns its folder."""
    from constrained.engine.difflm import standin_config
    from constrained.engine.model import DenoiserConfig, DenoiserModel
    from transformers import (
        AutoModelForCausalLM,
        BertConfig,
        BertForMaskedLM,
        DiffusionGemmaConfig,
        DiffusionGemmaForBlockDiffusion,
    )

    torch.manual_seed(0)
    path = root / kind
    if kind == "constrained (DenoiserModel)":
        cfg = DenoiserConfig(vocab_size=len(task.vocab), coord_sizes=dict(task.layout.coord_sizes), task=task.name,
                             vocab_tokens=list(task.vocab.tokens), canvas_length=81, **WIDTH)
        DenoiserModel(cfg).save_pretrained(path)
        return path
    if kind == "masked-lm (BERT)":
        model = BertForMaskedLM(BertConfig(vocab_size=64, **WIDTH))
    elif kind == "diffusion_gemma":
        text = dict(vocab_size=64, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                    num_attention_heads=4, num_key_value_heads=2, head_dim=16, global_head_dim=16,
                    sliding_window=128, max_position_embeddings=512, num_experts=2, top_k_experts=1,
                    moe_intermediate_size=64, layer_types=["sliding_attention", "full_attention"],
                    pad_token_id=0, eos_token_id=1, bos_token_id=2)
        vision = dict(model_type="gemma4_vision", hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                      num_attention_heads=2, num_key_value_heads=2, head_dim=8)
        model = DiffusionGemmaForBlockDiffusion(DiffusionGemmaConfig(
            text_config=text, vision_config=vision, canvas_length=96, image_token_id=63, boi_token_id=62,
            eoi_token_id=61))
    else:
        k, arch = {"llada (Llama stand-in)": ("llada", "llama"), "dream (Qwen2 stand-in)": ("dream", "qwen2")}[kind]
        cfg = standin_config(k, arch, vocab_size=64, num_key_value_heads=2, pad_token_id=0, eos_token_id=1,
                             bos_token_id=2, **WIDTH)
        cfg.mask_token_id = 4
        model = AutoModelForCausalLM.from_config(cfg)
    model.save_pretrained(path)
    tokenizer().save_pretrained(path)
    return path


KINDS = ["constrained (DenoiserModel)", "masked-lm (BERT)", "diffusion_gemma", "llada (Llama stand-in)",
         "dream (Qwen2 stand-in)"]


def measure(kinds: list[str], task, root: Path, puzzles: list[str], passes: int, solver_passes: int) -> list[dict]:
    """Forward timings interleaved (one call of each adapter per round, so load on the shared CPU hits
    all alike), then one Solver run each."""
    from constrained.engine.denoiser import predict_logits

    from constrained.loading import load_denoiser
    from constrained.solver import Solver, SolverConfig

    canvas = task.encode(puzzles)
    loaded = [load_denoiser(task, build(kind, task, root)) for kind in kinds]
    times: list[list[float]] = [[] for _ in kinds]
    with torch.no_grad():
        for i in range(passes + 2):
            for j, (den, _) in enumerate(loaded):
                den.eval()
                t = time.perf_counter()
                predict_logits(den, canvas.tokens, canvas)
                if i >= 2:
                    times[j].append(time.perf_counter() - t)
    rows = []
    for kind, (den, noise), ts in zip(kinds, loaded, times):
        solver = Solver(task, den, noise, SolverConfig(max_passes=solver_passes, patience=4, search="local"))
        t = time.perf_counter()
        results = solver.run(canvas, puzzles)
        wall = time.perf_counter() - t
        rows.append({"kind": kind, "params": sum(p.numel() for p in den.parameters()), "noise": noise.name,
                     "forward": 1 / statistics.median(ts), "solver": sum(r.passes for r in results) / wall,
                     "batch_passes": solver.stats.passes, "outside": solver.stats.overhead_share})
        print(f"{kind}: {rows[-1]['forward']:.1f} batch forward passes/s, {rows[-1]['solver']:.0f} Solver canvas "
              "passes/s", flush=True)
    return rows


def block_decoding(root: Path, batch: int) -> list[dict]:
    """DiffusionGemma in the block engine: its own sampler (entropy-bound, transformers' defaults) vs the
    project's threshold sampler, one canvas of 96 per item after a 16-token prompt."""
    from constrained.engine.block import BlockConfig, generate_blocks
    from constrained.engine.gemma import GemmaDenoiser
    from constrained.engine.noise import UniformNoise
    from constrained.engine.samplers import Sampler
    from transformers import DiffusionGemmaForBlockDiffusion

    den = GemmaDenoiser(DiffusionGemmaForBlockDiffusion.from_pretrained(root / "diffusion_gemma").eval())
    prompt = torch.randint(3, 60, (batch, 16), generator=torch.Generator().manual_seed(0))
    rows = []
    for name, sampler in (("entropy-bound (Sampler.diffusion_gemma())", Sampler.diffusion_gemma()),
                          ("threshold 0.9, floor, 48-step schedule", Sampler(threshold=0.9, floor=True, steps=48))):
        cfg = BlockConfig(max_new_tokens=96, sampler=sampler, stop_at_eos=False, max_passes=48)
        _, st = generate_blocks(den, prompt, UniformNoise(den.mask_id), cfg)
        rows.append({"sampler": name, "passes": st.passes, "tps": st.tokens_per_second, "outside": st.overhead_share})
        print(f"block decoding, {name}: {st.passes} passes, {st.tokens_per_second:.0f} tokens/s", flush=True)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--passes", type=int, default=20)
    ap.add_argument("--solver-passes", type=int, default=16)
    a = ap.parse_args()
    torch.set_num_threads(1)
    load = os.getloadavg()
    from constrained import load_task

    task = load_task("sudoku")
    puzzles = [p for p, _ in cached_pairs("sudoku", 1000, "expert", 12345)][: a.batch]
    with tempfile.TemporaryDirectory() as tmp:
        rows = measure(KINDS, task, Path(tmp), puzzles, a.passes, a.solver_passes)
        blocks = block_decoding(Path(tmp), a.batch)
    lines = [
        "## Denoiser adapters: passes per second",
        "",
        f"Command: `{command()}`  ",
        f"Machine: {machine()}  ",
        f"Batch {a.batch} Sudoku canvases (81 cells; expert puzzles, seed 12345), tiny random configs of one width "
        "(hidden 64, 2 layers, 4 heads, FFN 128; hub-style vocabularies of 64 tokens mapped from the task's by "
        "tokenizer), each saved and opened by path through `load_denoiser`. *forward*: one denoiser call on the "
        f"batch (median of {a.passes} rounds, the adapters interleaved in each), in batch passes/s and "
        f"canvases/s (x {a.batch}); *Solver*: `Solver.run` (`search=\"local\"`: the denoise / re-noise loop; the "
        "complete search's time goes mostly to propagation, see its own section) for at "
        f"most {a.solver_passes} passes with every constraint mechanism on, canvas passes (each item's passes, "
        "summed) per second of the whole run; items that finish leave the batch, so later passes are smaller. "
        "Random weights (no hub here; no GPU was lent to this session): the figures are the adapters' cost on "
        f"this CPU, not solve rates. The cores were shared with other jobs while this ran (1-minute load average "
        f"{load[0]:.1f} at the start, {os.getloadavg()[0]:.1f} at the end): absolute figures vary by up to 2x "
        "between runs; the forward columns, interleaved, compare fairly.",
        "",
        "| adapter (checkpoint kind) | parameters | noise | forward: batch passes/s | forward: canvases/s | "
        "Solver: canvas passes/s | Solver batch passes | share of Solver time outside the model |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(f"| {r['kind']} | {r['params']:,} | {r['noise']} | {r['forward']:.1f} | "
                     f"{r['forward'] * a.batch:.0f} | {r['solver']:.0f} | {r['batch_passes']} | {r['outside']:.0%} |")
    lines += ["", "DiffusionGemma's parameters include its (small) vision tower and two experts per MoE layer. "
              "It pads the canvas to its canvas length (96 here) and prefills `[BOS]` once per "
              "context (cached while the context is unchanged); the LLaDA / Dream stand-ins run `[BOS]` plus the "
              "canvas through the whole model each pass (no cache: a bidirectional model's keys change with the "
              "canvas).",
              "",
              f"### DiffusionGemma in the block engine: its own sampler vs the threshold sampler (batch {a.batch})",
              "",
              "The same tiny random DiffusionGemma, a 16-token prompt, one canvas of 96 new tokens per item, "
              "`generate_blocks` with the KV cache. A random model is never confident, so the entropy-bound loop "
              "runs all 48 steps and the threshold sampler's floor fills the canvas on its 48-step schedule: the "
              "rows compare the loops' cost per pass, not their quality.",
              "",
              "| sampler | canvas passes | tokens/s | share of time outside the model |",
              "|---|---|---|---|"]
    lines += [f"| {r['sampler']} | {r['passes']} | {r['tps']:.0f} | {r['outside']:.0%} |" for r in blocks]
    write_section("adapters", "\n".join(lines))


if __name__ == "__main__":
    main()
