"""The peptide task: spec parsing and bad input, exact RDKit-derived properties, localised
violations, domain narrowing, the real data, the CLI, and an ESM-2 style denoiser."""

from __future__ import annotations

import itertools
import json
import random

import numpy as np
import pytest
import torch
from conftest import tiny_model
from constrained.engine.noise import make_noise
from constrained.tasks.peptide_chem import (
    AMINO_ACIDS,
    PROPERTIES,
    find_pattern,
    net_charge,
    parse_pattern,
    rdkit_properties,
    residue_tables,
)
from constrained.tasks.peptide_data import is_held_out, load_peptides, split

from constrained import InvalidProblem, Solver, load_task, make_config, make_solver, solve_with
from constrained.cli import main

SPEC = {"length": [10, 14], "motif": {"3": "RGD"}, "exclude": "C",
        "windows": {"mw": [1000, 1800], "charge": [0, 4]}, "max_run": 2, "forbidden": ["N[^P][ST]"],
        "label": "amp"}


@pytest.fixture(scope="module")
def task():
    return load_task("peptide")


def canvas_with(task, spec, seq: str):
    """The canvas of ``spec`` and tokens holding ``seq`` then padding."""
    canvas = task.encode([spec])
    tokens = canvas.tokens.clone()
    tokens[0, : len(seq)] = torch.tensor([task.vocab.id(a) for a in seq])
    tokens[0, len(seq):] = task.vocab.pad_id
    return canvas, tokens


# --- chemistry ---------------------------------------------------------------------------
def test_residue_tables_reproduce_rdkit_exactly_on_random_and_real_sequences():
    t = residue_tables()
    rng = random.Random(0)
    seqs = ["".join(rng.choice(AMINO_ACIDS) for _ in range(rng.randint(1, 40))) for _ in range(20)]
    seqs += ["P", "PGK", [p.seq for p in load_peptides()][7]]
    for s in seqs:
        p = rdkit_properties(s)
        got = t.value(s)
        for k, name in enumerate(PROPERTIES):
            assert abs(float(got[k]) - p.get(name)) < 1e-6, (s, name)


def test_net_charge_counts_termini_and_ionisable_residues():
    assert net_charge("G") == pytest.approx(0.0, abs=0.05)  # zwitterion
    assert net_charge("KKKK") == pytest.approx(4.0, abs=0.1)
    assert net_charge("DDEE") == pytest.approx(-4.0, abs=0.1)
    assert net_charge("KR") > net_charge("KD")


def test_patterns_parse_and_match():
    sequon = parse_pattern("N[^P][ST]")
    assert len(sequon) == 3 and "P" not in sequon[1] and sequon[2] == frozenset("ST")
    assert find_pattern("AANGSA", sequon) == 2
    assert find_pattern("AANPSA", sequon) == -1
    with pytest.raises(InvalidProblem, match="unknown residue letter 'B'"):
        parse_pattern("NBS")


# --- bad input -----------------------------------------------------------------------------
@pytest.mark.parametrize("spec, message", [
    ({"length": 10, "motif": {"2": "AZA"}}, "unknown residue letter 'Z'"),
    ({"length": 10, "motif": {"9": "RGD"}}, "outside the maximum length 10"),
    ({"length": 10, "windows": {"mw": [50, 100]}}, r"window mw \[50.0, 100.0\] Da cannot be met"),
    ({"length": [5, 8], "windows": {"charge": [20, 30]}}, "cannot be met"),
    ({"length": 10, "colour": "red"}, "unknown spec key"),
    ({"length": 100}, "exceeds the canvas of 64"),
    ({"length": 10, "motif": {"1": "C"}, "exclude": "C"}, "position 1: no residue is left"),
    ({"length": 10, "motif": {"1": "AAA"}, "max_run": 2}, "run of 3 A"),
    ({"length": 10, "motif": {"4": "NGS"}, "forbidden": ["N[^P][ST]"]}, "forbidden pattern NX?"),
    ({"length": 10, "windows": {"weight": [1, 2]}}, "unknown window 'weight'"),
    ({"length": 10, "allowed": {"12": "KR"}}, "outside the maximum length 10"),
    ({"length": 10, "label": "toxic"}, "label must be"),
    ({"length": 20, "windows": {"mw": [3500, 3800], "tpsa": [500, 560]}}, "cannot be met together"),
])
def test_bad_specs_raise_invalid_problem_naming_the_input(task, spec, message):
    with pytest.raises(InvalidProblem, match=message.replace("X?", "")):
        task.encode([spec])


def test_encode_names_the_bad_spec_of_a_batch_and_refuses_a_bare_spec(task):
    with pytest.raises(InvalidProblem, match=r"^spec 1: length"):
        task.encode([{"length": 10}, {"length": 0}])
    with pytest.raises(InvalidProblem, match="encode takes a list of specs.*wrap a single spec in a list"):
        task.encode({"length": 10})


def test_the_task_module_still_exports_the_spec_names():
    from constrained.tasks import peptide, peptide_bounds, peptide_spec

    for name in ("PeptideSpec", "parse_spec", "LABEL_TOKENS", "SPEC_KEYS"):
        assert getattr(peptide, name) is getattr(peptide_spec, name)
    assert peptide.property_directions is peptide_bounds.property_directions


def test_motif_past_the_minimum_length_raises_the_minimum(task):
    spec = task.parse({"length": [4, 12], "motif": {"8": "KK"}})
    assert (spec.min_len, spec.max_len) == (9, 12)
    canvas = task.encode([{"length": [4, 12], "motif": {"8": "KK"}}])
    pad = task.vocab.pad_id
    assert not canvas.allowed[0, 8, pad] and canvas.allowed[0, 9, pad]  # 9 residues at least
    assert canvas.fixed[0, 12:].all() and (canvas.tokens[0, 12:] == pad).all()


# --- validator -----------------------------------------------------------------------------
def test_real_sequence_meets_its_generated_spec(task):
    for spec, seq in task.generate(20, seed=4):
        canvas, tokens = canvas_with(task, spec, seq)
        rep = task.validate(canvas, tokens, messages=True)
        assert rep.ok.item(), (spec, seq, rep.messages)
        assert task.parse(spec).check(seq) == []


def test_too_heavy_design_implicates_the_heaviest_free_residues_only(task):
    spec = {"length": 12, "motif": {"1": "W"}, "windows": {"mw": [700, 1000]}}
    seq = "WGGGWGGGWGGG"  # three tryptophans: too heavy; position 1 is a fixed motif residue
    canvas, tokens = canvas_with(task, spec, seq)
    rep = task.validate(canvas, tokens, messages=True)
    assert not rep.ok.item()
    implicated = rep.violations[0].nonzero().squeeze(-1).tolist()
    assert implicated and set(implicated) <= {4, 8}  # free Trp, not the motif, not glycines
    assert "molecular weight" in rep.messages[0][0] and "above" in rep.messages[0][0]


def test_localisation_takes_a_few_positions_per_pass(task):
    spec = {"length": 20, "windows": {"charge": [-1, 1]}}
    canvas, tokens = canvas_with(task, spec, "K" * 2 + "G" + "KR" * 8 + "G")
    rep = task.validate(canvas, tokens)
    assert 1 <= int(rep.violations.sum()) <= task.localise


def test_partial_canvas_bound_violation_before_completion(task):
    spec = {"length": 10, "windows": {"mw": [500, 900]}}
    canvas = task.encode([spec])
    tokens = canvas.tokens.clone()
    tokens[0, :5] = task.vocab.id("W")  # five Trp: already above 900 Da whatever follows
    rep = task.validate(canvas, tokens)
    assert not rep.ok.item() and rep.violations[0, :5].any() and not rep.violations[0, 5:].any()


def test_interior_padding_runs_and_forbidden_motifs_are_flagged(task):
    canvas, tokens = canvas_with(task, {"length": [6, 12]}, "ACDEFGHIK")
    tokens[0, 7] = task.vocab.pad_id  # a hole
    rep = task.validate(canvas, tokens, messages=True)
    assert not rep.ok.item() and rep.violations[0, 7] and "contiguous" in " ".join(rep.messages[0])

    canvas, tokens = canvas_with(task, {"length": 10, "max_run": 2}, "AKKKKAGAGA")
    rep = task.validate(canvas, tokens)
    assert not rep.ok.item() and rep.violations[0].nonzero().squeeze(-1).tolist() == [3]

    canvas, tokens = canvas_with(task, {"length": 10, "forbidden": ["N[^P][ST]"]}, "AANGTAAAAA")
    rep = task.validate(canvas, tokens, messages=True)
    assert not rep.ok.item() and rep.violations[0].nonzero().squeeze(-1).tolist() == [2, 3, 4]
    assert "forbidden motif N[^P][ST] at position 3" in rep.messages[0]


# --- domains -------------------------------------------------------------------------------
def test_domains_narrow_padding_windows_runs_and_patterns(task):
    V = task.vocab
    spec = {"length": [4, 12], "max_run": 2, "forbidden": ["N[^P][ST]"], "windows": {"mw": [None, 1000]}}
    canvas = task.encode([spec])
    tokens = canvas.tokens.clone()
    for i, a in enumerate("KKANA"):
        tokens[0, i] = V.id(a)
    tokens[0, 6] = V.id("G")
    tokens[0, 8] = V.pad_id
    dom = task.domains(canvas, tokens)[0]
    assert not dom[5, V.id("S")] and not dom[5, V.id("T")] and dom[5, V.id("A")]  # N-x-S/T
    assert not dom[9:, V.id("A")].any() and dom[9:, V.pad_id].all()  # only padding after a pad
    assert not dom[5, V.pad_id] and dom[7, V.pad_id]  # a residue follows at position 7
    canvas2 = task.encode([spec])
    t2 = canvas2.tokens.clone()
    t2[0, 0], t2[0, 1] = V.id("K"), V.id("K")
    assert not task.domains(canvas2, t2)[0, 2, V.id("K")]  # a third K would break max_run
    # mw <= 1000: five Trp weigh 949 Da, so not even a glycine (57 Da) fits after them: the peptide ends
    t3 = canvas2.tokens.clone()
    t3[0, :5] = V.id("W")
    d3 = task.domains(canvas2, t3)[0]
    assert d3[5].nonzero().squeeze(-1).tolist() == [V.pad_id]


def test_domains_keep_every_residue_of_a_valid_design_and_prune_jointly_impossible_ones(task):
    # weight and TPSA windows around RSN: each alone leaves most residues; together far fewer
    spec = {"length": [2, 3], "windows": {"mw": [360.39, 390.39], "tpsa": [236.74, 256.74]}}
    s = task.parse(spec)
    feasible = [set() for _ in range(3)]
    for n in (2, 3):
        for seq in itertools.product(AMINO_ACIDS, repeat=n):
            if not s.check("".join(seq)):
                for i, a in enumerate(seq):
                    feasible[i].add(a)
                if n == 2:
                    feasible[2].add("[PAD]")
    canvas = task.encode([spec])
    dom = task.domains(canvas, canvas.tokens)[0]
    kept = [{task.vocab.tokens[j] for j in dom[i].nonzero().squeeze(-1).tolist()} for i in range(3)]
    for i in range(3):
        assert feasible[i] <= kept[i]  # sound: nothing a valid design uses is pruned
        assert len(kept[i]) <= len(feasible[i]) + 4  # tight: per-window bounds alone keep 19 or more


def test_a_partial_design_that_misses_two_windows_together_is_implicated(task):
    # each window alone is still reachable after PWL; together they are not: the tryptophan is
    # heavy for its small polar surface, and it is the residue sent back
    spec = {"length": 6, "windows": {"mw": [577, 617], "tpsa": [251, 281]}}
    canvas = task.encode([spec])
    tokens = canvas.tokens.clone()
    tokens[0, :3] = torch.tensor([task.vocab.id(a) for a in "PWL"])
    rep = task.validate(canvas, tokens, messages=True)
    assert not rep.ok.item()
    assert rep.violations[0].nonzero().squeeze(-1).tolist() == [1]
    assert rep.messages[0][0] == ("the molecular weight and TPSA windows cannot both be met: every completion "
                                  "has too high a molecular weight for its TPSA")


# --- data ----------------------------------------------------------------------------------
def test_real_data_is_split_and_training_examples_are_well_formed(task):
    train, held = split(64, held_out=False), split(64, held_out=True)
    assert len(train) > 3000 and len(held) > 300
    assert not {p.seq for p in train} & {p.seq for p in held}
    assert all(is_held_out(p.seq) for p in held)
    ex = task.training_example(np.random.default_rng(0))
    assert ex["tokens"].shape == (64,) and ex["fixed"].shape == (64,) and ex["context"].shape == (1,)
    assert "".join(task.decode(None, ex["tokens"][None])[0]) in {p.seq for p in train}


# --- solving -------------------------------------------------------------------------------
def test_solver_never_reports_an_invalid_design_as_valid(task):
    model = tiny_model(task)
    specs = [s for s, _ in task.generate(12, seed=5)] + [SPEC]
    solver = Solver(task, model, make_noise("mask", task.vocab.mask_id),
                    make_config(max_passes=40, temperature=0.7, strategy="topk", steps=12))
    res = solve_with(solver, specs)
    assert any(r.valid for r in res)
    for r, s in zip(res, specs):
        assert r.valid == (task.parse(s).check(r.solution) == []), (r.solution, r.messages)


def test_cli_prints_fasta_with_measured_properties(task, tmp_path, capsys):
    model_dir = tmp_path / "model"
    tiny_model(task).save_pretrained(model_dir)
    spec_file = tmp_path / "spec.json"
    spec_file.write_text(json.dumps({"length": 8, "motif": {"1": "GLF"}, "windows": {"charge": [-3, 3]}}))
    rc = main(["solve", "peptide", str(spec_file), "--model", str(model_dir), "--n", "2",
               "--max-passes", "48"])
    out = capsys.readouterr().out
    headers = [ln for ln in out.splitlines() if ln.startswith(">design")]
    assert len(headers) == 2
    assert rc in (0, 1)
    if rc == 0:
        assert all("mw=" in h and "charge=" in h and "logp=" in h and "tpsa=" in h for h in headers)
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"length": 8, "motif": {"9": "K"}}))
    assert main(["solve", "peptide", str(bad), "--model", str(model_dir)]) == 2
    assert "outside the maximum length" in capsys.readouterr().err


# --- ESM-2 style denoiser ------------------------------------------------------------------
ESM_VOCAB = ["<cls>", "<pad>", "<eos>", "<unk>", *"LAGVSERTIDPKQNFYMHWCXBUZO.-", "<null_1>", "<mask>"]


def test_esm_masked_lm_loads_through_load_denoiser(task, tmp_path):
    from constrained.engine.denoiser import HFMaskedLMDenoiser
    from transformers import EsmConfig, EsmForMaskedLM, EsmTokenizer

    from constrained.loading import load_denoiser

    (tmp_path / "vocab.txt").write_text("\n".join(ESM_VOCAB) + "\n")
    tok = EsmTokenizer(str(tmp_path / "vocab.txt"))
    torch.manual_seed(0)
    cfg = EsmConfig(vocab_size=len(ESM_VOCAB), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                    intermediate_size=64, max_position_embeddings=130, pad_token_id=tok.pad_token_id,
                    mask_token_id=tok.mask_token_id, position_embedding_type="rotary", token_dropout=True)
    out = tmp_path / "esm"
    EsmForMaskedLM(cfg).save_pretrained(out)
    tok.save_pretrained(out)

    den, noise = load_denoiser(task, str(out))
    assert isinstance(den, HFMaskedLMDenoiser) and noise.name == "mask"
    tm = den.token_map.tolist()
    assert tm[0] == tok.pad_token_id and tm[1] == tok.mask_token_id
    assert [ESM_VOCAB[i] for i in tm[2:22]] == list(AMINO_ACIDS)  # residues map letter to letter
    assert tm[22:] == [tok.unk_token_id] * 3  # label tokens ESM has no word for
    solver = make_solver(task, den, max_passes=24)
    res = solve_with(solver, [{"length": 10, "motif": {"2": "KK"}}])
    assert len(res[0].solution) >= 1
    if res[0].valid:
        assert res[0].solution[1:3] == "KK"


def test_backjump_flag_overrides_the_task_default():
    from constrained.cli import build_parser
    from constrained.cli_options import solver_options

    parse = build_parser().parse_args
    assert solver_options(parse(["solve", "peptide", "{}", "--backjump"]))["backjump"] is True
    assert solver_options(parse(["solve", "peptide", "{}", "--no-backjump"]))["backjump"] is False
    assert "backjump" not in solver_options(parse(["solve", "peptide", "{}"]))  # the task's default: off
    assert load_task("peptide").solver_defaults["backjump"] is False
