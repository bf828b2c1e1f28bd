"""code-infill / code-edit: parsing holes, the compile validator and its localisation, tests as a
validator, training items, the corpus split, and the CLI."""

import ast
import json

import numpy as np
import pytest
import torch
from conftest import tiny_model
from constrained.tasks.code import CodeProblem, CompletedFile, problem_from_lines, problem_from_span
from constrained.tasks.code_corpus import SourceFile, corpus_files, cut_hole, split_of

from constrained import InvalidProblem, load_task
from constrained.cli import main
from constrained.solver import Solver, SolverConfig

SRC = "def add(a, b):\n    <FILL>\n\n\nprint(add(1, 2))\n"


@pytest.fixture(scope="module")
def task():
    return load_task("code-infill")


def _sandbox_ok() -> bool:
    from constrained.tasks.sandbox import os_sandbox, unsafe_opt_in

    return os_sandbox() is not None or unsafe_opt_in()


def hole_tokens(task, text: str) -> torch.Tensor:
    ids = task.encode_hole(text)
    row = torch.zeros(1, task.hole_tokens, dtype=torch.long)
    row[0, : len(ids)] = torch.tensor(ids)
    return row


def test_vocab_ids_are_the_tokenizer_ids(task):
    assert task.vocab.tokens[:2] == ("[PAD]", "[MASK]")
    for text in ("return a + b", "    x = {'k': [1, 2]}\n", "é = 'ü'"):
        ids = task.tok.encode(text).ids
        assert task.hole_text(ids) == text
        assert all(task.vocab.tokens[i] == task.tok.id_to_token(i) for i in ids)


def test_canvas_is_the_hole_with_pad_allowed_and_context_around_it(task):
    c = task.encode([SRC])
    assert c.tokens.shape == (1, task.hole_tokens) and not c.fixed.any()
    assert c.allowed[0, :, 0].all() and not c.allowed[0, :, 1].any()  # [PAD] allowed, [MASK] not
    sep = task.vocab.id("[SEP]")
    ctx = c.context[0].tolist()
    assert ctx.count(sep) == 1 and task.vocab.id("[BOF]") in ctx and task.vocab.id("[EOF]") in ctx
    before = task.hole_text([i for i in ctx[: ctx.index(sep)] if i > 1 and i < sep])
    assert before.endswith("def add(a, b):\n    ")


def test_marker_problems_name_what_is_wrong(task):
    with pytest.raises(InvalidProblem, match="exactly one <FILL> marker, found 0"):
        task.encode(["x = 1\n"])
    with pytest.raises(InvalidProblem, match=r"found 2 \(lines \[1, 2\]\)"):
        task.encode(["x = <FILL>\ny = <FILL>\n"])


def test_file_broken_outside_the_hole_names_the_line(task):
    src = "x = <FILL>\n\ndef f(:\n    return 1\n"
    with pytest.raises(InvalidProblem, match="line 3"):
        task.encode([src])


def test_correct_hole_validates_and_decodes_to_the_file(task):
    c = task.encode([SRC])
    tok = hole_tokens(task, "return a + b")
    rep = task.validate(c, tok)
    assert rep.ok.tolist() == [True] and not rep.violations.any()
    sol = task.decode(c, tok)[0]
    assert isinstance(sol, CompletedFile) and sol.hole == "return a + b"
    assert sol == SRC.replace("<FILL>", "return a + b")


def test_syntax_error_implicates_only_hole_tokens_on_its_line(task):
    src = "def f(a):\n    <FILL>\n    return y\n"
    c = task.encode([src])
    good_line, bad_line = "x = a + 1\n    ", "y = (x * 2"
    tok = hole_tokens(task, good_line + bad_line)
    rep = task.validate(c, tok, messages=True)
    assert rep.ok.tolist() == [False]
    n_first = len(task.encode_hole(good_line))
    n = len(task.encode_hole(good_line + bad_line))
    implicated = set(rep.violations[0].nonzero().squeeze(-1).tolist())
    assert implicated and implicated <= set(range(n_first - 1, n + 1))  # line 3 (+ the [PAD] after)
    assert not implicated & set(range(n_first - 1))  # "x = a + 1" is not blamed
    assert "SyntaxError" in rep.messages[0][0]


def test_pad_may_only_trail_the_hole(task):
    c = task.encode([SRC])
    tok = hole_tokens(task, "return a + b")
    tok[0, 1] = 0  # a [PAD] inside the hole
    rep = task.validate(c, tok)
    assert rep.ok.tolist() == [False] and rep.violations[0, 1]


def test_pad_inside_a_partial_hole_implicates_only_filled_positions(task):
    c = task.encode([SRC])
    mask, pad = task.vocab.mask_id, task.vocab.pad_id
    tok = torch.full((1, task.hole_tokens), mask, dtype=torch.long)
    code = task.encode_hole("return")[0]
    tok[0, 0], tok[0, 2], tok[0, 5] = code, pad, code  # [PAD] at 2 before code at 5, [MASK]s between
    rep = task.validate(c, tok, messages=True)
    assert rep.violations[0].nonzero().squeeze(-1).tolist() == [2, 5]
    assert rep.messages[0] == ["hole tokens after the end of the hole (position 2)"]


def test_domains_keep_pad_trailing(task):
    c = task.encode([SRC])
    mask, pad = task.vocab.mask_id, task.vocab.pad_id
    tok = torch.full((1, task.hole_tokens), mask, dtype=torch.long)
    code = task.encode_hole("return")[0]
    tok[0, 3], tok[0, 6] = code, pad  # code at 3, [PAD] at 6
    dom = task.domains(c, tok)[0]  # [L, V]
    assert not dom[:3, pad].any() and dom[:3, code].all()  # before code: anything but [PAD]
    assert dom[4:6, pad].all() and dom[4:6, code].all()  # between: free
    assert dom[7:, pad].all() and dom[7:].sum(-1).eq(1).all()  # after a [PAD]: only [PAD]


def test_empty_hole_is_refused_unless_allowed(task):
    src = "x = 1\n<FILL>\ny = 2\n"
    empty = torch.zeros(1, task.hole_tokens, dtype=torch.long)
    c = task.encode([src])
    rep = task.validate(c, empty, messages=True)
    assert rep.ok.tolist() == [False] and rep.violations[0, 0] and "empty" in rep.messages[0][0]
    assert not task.domains(c, torch.full_like(empty, task.vocab.mask_id))[0, 0, task.vocab.pad_id]
    lax = load_task("code-infill", allow_empty=True)
    assert lax.validate(lax.encode([src]), empty).ok.tolist() == [True]


def test_partial_canvas_is_not_ok_and_blames_nothing(task):
    c = task.encode([SRC])
    tok = hole_tokens(task, "return a + b")
    tok[0, 2] = task.vocab.mask_id
    rep = task.validate(c, tok)
    assert rep.ok.tolist() == [False] and not rep.violations.any()


@pytest.mark.skipif(not _sandbox_ok(), reason="no OS sandbox (bwrap) and no opt-in")
def test_failing_user_tests_implicate_the_whole_hole():
    task = load_task("code-infill", tests="assert add(2, 3) == 5", test_timeout=5.0, memory_mb=256)
    c = task.encode([SRC])
    assert task.validate(c, hole_tokens(task, "return a + b")).ok.tolist() == [True]
    wrong = hole_tokens(task, "return a - b")
    rep = task.validate(c, wrong, messages=True)
    n = len(task.encode_hole("return a - b"))
    assert rep.ok.tolist() == [False] and rep.violations[0, :n].all() and "tests failed" in rep.messages[0][0]


@pytest.mark.skipif(not _sandbox_ok(), reason="no OS sandbox (bwrap) and no opt-in")
def test_generated_infinite_loop_is_a_failed_validation():
    task = load_task("code-infill", tests="assert add(2, 3) == 5", test_timeout=3.0, memory_mb=256)
    c = task.encode([SRC])
    rep = task.validate(c, hole_tokens(task, "while True: pass"), messages=True)
    assert rep.ok.tolist() == [False] and "killed" in rep.messages[0][0]


def test_edit_lines_and_span_cut_the_right_text():
    src = "import os\n\ndef f(x):\n    y = x + 1\n    return y\n"
    p = problem_from_lines(src, "4-5", "m.py")
    assert p.original == "y = x + 1\n    return y" and p.prefix.endswith("(x):\n    ") and p.suffix == "\n"
    s = problem_from_span(src, "4:9-4:14")
    assert s.original == "x + 1"
    with pytest.raises(InvalidProblem, match="outside the file's lines 1-5"):
        problem_from_lines(src, "4-9")


def test_code_edit_needs_a_span_and_rewrites_only_it():
    edit = load_task("code-edit", lines="2")
    src = "a = 1\nb = 2\nc = 3\n"
    c = edit.encode([src])
    tok = torch.zeros(1, edit.hole_tokens, dtype=torch.long)
    ids = edit.encode_hole("b = a + 1")
    tok[0, : len(ids)] = torch.tensor(ids)
    assert edit.validate(c, tok).ok.tolist() == [True]
    assert edit.decode(c, tok)[0] == "a = 1\nb = a + 1\nc = 3\n"
    with pytest.raises(InvalidProblem, match="code-edit needs the lines"):
        load_task("code-edit").encode([src])


def test_training_item_is_hole_then_pad_with_context(task):
    text = "import os\n\n\ndef f(x):\n    y = x + 1\n    return os.path.join(y, 'a')\n" * 3
    task._train = [SourceFile("stdlib/fake.py", None, text)]
    rng = np.random.default_rng(0)
    for _ in range(20):
        ex = task.training_example(rng)
        t = ex["tokens"].tolist()
        n = t.index(0) if 0 in t else len(t)
        assert n > 0 and all(v == 0 for v in t[n:]) and all(v >= 2 for v in t[:n])
        assert task.hole_text(t) in text
        assert ex["context"].shape == (task.prefix_tokens + task.suffix_tokens + 3,)
    task._train = None


def test_holes_and_split_are_deterministic(tmp_path):
    (tmp_path / "pkg").mkdir()
    for i in range(30):
        (tmp_path / "pkg" / f"m{i}.py").write_text(f"x_{i} = {i}\n" * 40)
    roots = [("stdlib", tmp_path)]
    files = corpus_files(None, roots)
    assert files == corpus_files(None, roots)
    held = {k for k, _ in corpus_files("heldout", roots)}
    train = {k for k, _ in corpus_files("train", roots)}
    assert held | train == {k for k, _ in files} and not held & train
    assert split_of("stdlib/json/decoder.py") == split_of("stdlib/json/decoder.py")
    text = files[0][1].read_text()
    a = cut_hole(text, np.random.default_rng(3), "multiline")
    b = cut_hole(text, np.random.default_rng(3), "multiline")
    assert a == b


def test_solver_returns_the_validators_verdict(task):
    model = tiny_model(task, max_position_embeddings=256)
    probs = [SRC, "values = [<FILL>]\nprint(values)\n"]
    res = Solver(task, model, model_noise(), SolverConfig(max_passes=6)).run(task.encode(probs), probs)
    for r, p in zip(res, probs):
        head, tail = p.split("<FILL>")
        assert r.solution.startswith(head) and r.solution.endswith(tail)
        try:
            ast.parse(r.solution)
            parses = True
        except SyntaxError:
            parses = False
        names = [c for c in r.checks if c.name == "names resolve"]
        assert r.valid == (parses and bool(names) and names[0].ok)
        assert [c.name for c in r.checks][:1] == ["compiles"] and r.checks[0].ok == parses


def model_noise():
    from constrained.engine.noise import MaskNoise

    return MaskNoise(1)


def test_cli_solves_a_file_prints_diff_and_rejects_broken_files(tmp_path, task, capsys):
    model_dir = tmp_path / "m"
    tiny_model(task, max_position_embeddings=256).save_pretrained(model_dir, safe_serialization=True)
    f = tmp_path / "calc.py"
    f.write_text(SRC)
    rc = main(["solve", "code-infill", str(f), "--model", str(model_dir), "--max-passes", "2", "--json"])
    out = json.loads(capsys.readouterr().out.strip().splitlines()[0])
    assert rc in (0, 1) and out["solution"].startswith("def add(a, b):\n    ") and out["valid"] == (rc == 0)
    rc = main(["solve", "code-infill", str(f), "--model", str(model_dir), "--max-passes", "2", "--diff"])
    text = capsys.readouterr().out
    assert f"--- {f}" in text and "-    <FILL>" in text
    f.write_text("x = <FILL>\nif True\n    pass\n")
    assert main(["solve", "code-infill", str(f), "--model", str(model_dir)]) == 2
    assert "line 2" in capsys.readouterr().err


def test_problem_objects_are_accepted(task):
    p = CodeProblem("x = ", "\nprint(x)\n", original="1", name="t.py")
    c = task.encode([p])
    assert task.validate(c, hole_tokens(task, "41 + 1")).ok.tolist() == [True]


def _logits_for(pred: list[int], V: int = 8, sure: list[float] | None = None) -> torch.Tensor:
    """[1, L, V] logits whose argmax is ``pred`` with softmax confidence rising with ``sure``."""
    L = len(pred)
    sure = sure or [1.0] * L
    logits = torch.zeros(1, L, V)
    for i, (t, s) in enumerate(zip(pred, sure)):
        logits[0, i, t] = 10.0 * s
    return logits


def test_deferred_pad_is_committed_only_where_the_content_has_reached_it():
    from constrained.engine.samplers import Sampler

    # content predicted at 0-2, [PAD] (id 0) at 3-7, the far-right [PAD]s the most confident
    pred = [5, 6, 7, 0, 0, 0, 0, 0]
    logits = _logits_for(pred, sure=[0.3, 0.3, 0.3, 0.5, 0.9, 1.0, 1.0, 1.0])
    allowed = torch.ones(1, 8, 8, dtype=torch.bool)
    cand = torch.ones(1, 8, dtype=torch.bool)
    plain = Sampler("topk", steps=2).step(logits, allowed, cand, 0)[2][0].tolist()
    assert plain[4:] == [True] * 4 and not any(plain[:3])  # confidence alone: the [PAD] tail first
    s = Sampler("topk", steps=2, end_token=0)
    commit = s.step(logits, allowed, cand, 0)[2][0].tolist()
    assert commit == [True] * 3 + [False] * 5  # the content first; no [PAD] while content is open
    assert s.choose(logits, cand, 0)[2][0].tolist() == commit
    # once 0-2 are committed, the whole [PAD] run after them may go in one pass
    cand2 = torch.tensor([[False] * 3 + [True] * 5])
    commit2 = Sampler("topk", steps=1, end_token=0).step(logits, allowed, cand2, 1)[2][0].tolist()
    assert commit2 == [False] * 3 + [True] * 5
    # a [PAD] behind an open position stays deferred; the open position is committed instead
    cand3 = torch.tensor([[False, False, True, True, True, True, True, True]])
    commit3 = Sampler("threshold", threshold=0.99, end_token=0).step(logits, allowed, cand3, 0)[2][0]
    assert commit3.tolist() == [False, False, True] + [False] * 5


def test_end_token_is_checked_and_off_by_default():
    from constrained.engine.samplers import Sampler

    assert Sampler().end_token is None
    with pytest.raises(ValueError, match="end_token"):
        Sampler(end_token=-1)


def test_the_old_option_name_defer_token_is_refused_naming_end_token():
    from constrained.api import make_config
    from constrained.errors import ConfigError

    with pytest.raises(ConfigError, match="'defer_token' is now called 'end_token'"):
        make_config(defer_token=0)
    assert make_config(end_token=0).sampler.end_token == 0


def test_deferred_pad_is_predicted_only_when_more_likely_than_all_content_together():
    from constrained.engine.samplers import Sampler

    probs = torch.tensor([[0.4] + [0.1] * 6, [0.6] + [0.4 / 6] * 6])  # [PAD] 0.4 / 0.6 vs spread content
    probs[:, 3] += 0.001  # the likeliest content token
    logits = probs.log().unsqueeze(0)  # [1, 2, 7]
    allowed = torch.ones(1, 2, 7, dtype=torch.bool)
    cand = torch.ones(1, 2, dtype=torch.bool)
    assert Sampler().step(logits, allowed, cand, 0)[0][0].tolist() == [0, 0]
    s = Sampler(end_token=0)
    assert s.step(logits, allowed, cand, 0)[0][0].tolist() == [3, 0]
    assert s.choose(logits, cand, 0)[0][0].tolist() == [3, 0]
    only_pad = torch.zeros(1, 2, 7, dtype=torch.bool)
    only_pad[..., 0] = True
    assert s.step(logits, only_pad, cand, 0)[0][0].tolist() == [0, 0]


def test_window_commits_left_to_right_and_a_pad_run_in_one_pass():
    from constrained.engine.samplers import Sampler

    pred = [5, 6, 7, 5, 0, 0, 0, 0]
    logits = _logits_for(pred, sure=[0.3, 0.4, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0])
    allowed = torch.ones(1, 8, 8, dtype=torch.bool)
    cand = torch.ones(1, 8, dtype=torch.bool)
    s = Sampler("topk", steps=1, window=2, end_token=0)
    assert s.step(logits, allowed, cand, 0)[2][0].tolist() == [True, True] + [False] * 6
    cand2 = torch.tensor([[False, False] + [True] * 6])
    assert s.step(logits, allowed, cand2, 1)[2][0].tolist() == [False, False, True, True] + [False] * 4
    cand3 = torch.tensor([[False] * 4 + [True] * 4])
    assert s.step(logits, allowed, cand3, 2)[2][0].tolist() == [False] * 4 + [True] * 4
    with pytest.raises(ValueError, match="window"):
        Sampler(window=0)


def test_syntax_error_implicates_from_its_column_to_the_line_end(task):
    src = "def f(a):\n    <FILL>\n    return y\n"
    c = task.encode([src])
    ok_part, bad = "y = max(a, 2", "))"  # unmatched ')' at the second parenthesis
    tok = hole_tokens(task, ok_part + bad)
    rep = task.validate(c, tok, messages=True)
    assert rep.ok.tolist() == [False] and "unmatched" in rep.messages[0][0]
    n = len(task.encode_hole(ok_part + bad))
    implicated = set(rep.violations[0].nonzero().squeeze(-1).tolist())
    keep = len(task.encode_hole(ok_part + ")")) - 1  # tokens wholly before the bad ')' stay
    assert implicated and not implicated & set(range(keep))
    assert n - 1 in implicated and n in implicated  # the bad ')' and the [PAD] after it (room to grow)


class _PadHeavy(torch.nn.Module):
    """A denoiser that ignores its input: [PAD] is the single likeliest token everywhere (0.3 on the
    first 8 positions, where code is likelier as a whole; 0.9 after), the best code token 0.1 / 0.05."""

    def __init__(self, V: int, L: int, code: int) -> None:
        super().__init__()
        p = torch.full((L, V), 0.6 / (V - 3))
        p[:, 1] = 1e-9
        p[:8, 0], p[:8, code] = 0.3, 0.1
        p[8:, 0], p[8:, code] = 0.9, 0.05
        self.register_buffer("logits", (p / p.sum(-1, keepdim=True)).log())

    def forward(self, input_ids, **_):
        return self.logits.expand(input_ids.shape[0], -1, -1)


def test_model_only_hole_does_not_collapse_to_empty_under_the_task_defaults(task):
    from constrained import make_solver, solve_with

    code = task.vocab.id("x")
    fake = _PadHeavy(len(task.vocab), task.hole_tokens, code)
    src = "xxxxxxxx = 1\ny = <FILL>\n"
    plain = solve_with(make_solver(task, fake, model_only=True, end_token=None), [src])[0]
    assert plain.solution.hole == ""  # confidence order alone: [PAD] everywhere, an empty hole
    res = solve_with(make_solver(task, fake, model_only=True), [src])[0]
    assert make_solver(task, fake, model_only=True).config.sampler.end_token == task.vocab.pad_id
    assert res.solution.hole == "x" * 8 and res.valid  # code while it is likelier, then [PAD]


def test_deferred_pad_waits_while_code_is_predicted_after_it():
    from constrained.engine.samplers import Sampler

    pred = [0, 6, 0, 0, 0]  # a confident [PAD] first, code after it: the [PAD] is not the end yet
    logits = _logits_for(pred, sure=[1.0, 0.2, 1.0, 1.0, 1.0])
    cand = torch.ones(1, 5, dtype=torch.bool)
    s = Sampler("topk", steps=1, end_token=0)
    commit = s.step(logits, torch.ones(1, 5, 8, dtype=torch.bool), cand, 0)[2]
    assert commit[0].tolist() == [False, True, False, False, False]  # only the code goes in


def _context_batch(task, context_noise, seed=0):
    from constrained.engine.noise import make_noise
    from constrained.finetune import DiffusionCollator

    text = "import os\n\n\ndef f(x):\n    y = x + 1\n    return os.path.join(y, 'a')\n" * 3
    task._train = [SourceFile("stdlib/fake.py", None, text)]
    rng = np.random.default_rng(seed)
    examples = [task.training_example(rng) for _ in range(16)]
    task._train = None
    noise = make_noise("mask", task.vocab.mask_id)
    col = DiffusionCollator(task, noise, seed=seed, context_noise=context_noise)
    return col(examples), examples, noise


def test_context_noise_masks_and_scores_only_real_context_tokens(task):
    batch, examples, _ = _context_batch(task, 1.0)
    clean = torch.stack([e["context"] for e in examples])
    assert torch.equal(batch["context_labels"], clean)
    corrupted, scored = batch["context_corrupted"], batch["context_scored"]
    assert corrupted.any() and not (corrupted & ~scored).any()
    assert not (scored & (clean == 0)).any()  # padding is never masked nor scored
    assert (batch["context"][corrupted] == task.vocab.mask_id).all()
    assert torch.equal(batch["context"][~corrupted], clean[~corrupted])
    # each example's context is masked at its own level t, as its canvas is
    share = corrupted.sum(1).float() / scored.sum(1).clamp(min=1)
    assert torch.corrcoef(torch.stack([share, batch["t"]]))[0, 1] > 0.8
    plain, _, _ = _context_batch(task, 0.0)
    assert "context_corrupted" not in plain and torch.equal(plain["context"], clean)


def test_context_noise_loss_scores_the_context_and_needs_a_model_that_returns_it(task):
    from constrained.finetune import DiffusionTrainer

    from constrained.errors import ConfigError

    batch, _, noise = _context_batch(task, 1.0)
    model = tiny_model(task)
    trainer = DiffusionTrainer.__new__(DiffusionTrainer)
    trainer.noise = noise
    loss = trainer.compute_loss(model, batch)
    out = model(input_ids=batch["input_ids"], coords=batch["coords"], context=batch["context"],
                context_mask=batch["context_mask"])
    canvas_only = noise.loss(out.logits, batch["labels"], batch["corrupted"], batch["t"], batch["fixed"])
    assert torch.isfinite(loss) and not torch.isclose(loss, canvas_only)
    loss.backward()  # the context positions' head gets gradients through the same weights
    assert model.head[-1].weight.grad.abs().sum() > 0

    class CanvasOnly(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, **kw):
            kw.pop("context_logits", None)
            return self.inner(**kw)

    with pytest.raises(ConfigError, match="scores its context positions"):
        trainer.compute_loss(CanvasOnly(model), batch)


def test_context_noise_recipe_is_checked():
    from constrained.finetune import load_recipe
    from constrained.finetune.recipes import RECIPES_DIR

    from constrained.errors import ConfigError

    encoder = RECIPES_DIR / "code-infill-encoder.toml"
    assert load_recipe("code-infill", encoder)["train"]["context_noise"] == 0.0  # off unless asked
    assert load_recipe("code-infill", encoder, overrides=["train.context_noise=0.5"])["train"]["context_noise"] == 0.5
    with pytest.raises(ConfigError, match="context_noise"):
        load_recipe("code-infill", encoder, overrides=["train.context_noise=1.5"])
    with pytest.raises(ConfigError, match="context_noise needs train.noise = 'mask'"):
        load_recipe("code-infill", encoder, overrides=["train.noise=uniform", "train.context_noise=0.5"])


def test_length_order_follows_the_models_end_token_marginals():
    from constrained.length_search import length_order as _length_order

    # P(position n is the end token) = P(length <= n): 0.1 at 0..1, 0.7 from 2, 0.9 from 5
    p_end = torch.tensor([[0.1, 0.1, 0.7, 0.7, 0.7, 0.9, 0.9, 0.9]])
    fixed = torch.zeros(1, 8, dtype=torch.bool)
    order = _length_order(p_end, fixed, torch.zeros(1, 8, dtype=torch.long), end_id=0)[0].tolist()
    # P(length = 2) = 0.6, P(5) = 0.2, P(0) = P(8) = 0.1 (8: no end token at all), the rest 0
    assert order[:2] == [2, 5] and set(order[2:4]) == {0, 8}
    # a non-monotone marginal is made monotone (a dip does not create negative mass)
    dip = torch.tensor([[0.5, 0.2, 0.8, 0.8, 0.8, 0.8, 0.8, 0.8]])
    assert _length_order(dip, fixed, torch.zeros(1, 8, dtype=torch.long), 0)[0, 0] == 0
    # fixed content at position 3 rules out lengths 0..3; a fixed end token at 6 rules out 7 and 8
    fixed2 = fixed.clone()
    fixed2[0, 3] = fixed2[0, 6] = True
    toks = torch.zeros(1, 8, dtype=torch.long)
    toks[0, 3] = 5
    order2 = _length_order(p_end, fixed2, toks, 0)[0].tolist()
    assert set(order2[:3]) == {4, 5, 6} and order2[0] == 5


def test_next_length_skips_lengths_already_tried():
    from constrained.length_search import next_length as _next_length

    order = torch.tensor([[3, 1, 4, 0, 2]])
    tried = torch.zeros(1, 5, dtype=torch.bool)
    rows = torch.tensor([0])
    tokens = torch.tensor([[7, 7, 7, 7]])  # the ended attempt filled the whole canvas: length 4
    committed = torch.ones(1, 4, dtype=torch.bool)
    assert _next_length(order, tried, rows, tokens, committed, end_id=0).tolist() == [3]
    assert _next_length(order, tried, rows, tokens, committed, end_id=0).tolist() == [1]
    assert _next_length(order, tried, rows, tokens, committed, end_id=0).tolist() == [0]  # 4 was tried
    assert tried[0].tolist() == [True, True, False, True, True]


def test_length_search_needs_the_end_token_and_fixes_each_restarts_length(task):
    from constrained.engine.samplers import Sampler

    from constrained.errors import ConfigError

    with pytest.raises(ConfigError, match="length_search needs the sampler's end_token"):
        SolverConfig(length_search=True)
    from constrained.tasks.code import CodeInfill

    class NeverValid(CodeInfill):  # every complete hole fails, so the solver keeps restarting
        def _check(self, item, row):
            return False, [], ["never valid"], []

    task = NeverValid()
    model = tiny_model(task, max_position_embeddings=256)
    probs = ["x = <FILL>\n"]
    cfg = SolverConfig(max_passes=60, patience=2, length_search=True, trace=True,
                       sampler=Sampler(threshold=0.9, floor=True, steps=4, end_token=0))
    res = Solver(task, model, model_noise(), cfg).run(task.encode(probs), probs)[0]
    assert res.restarts >= 2
    attempts: list[list] = [[]]
    for rec in res.trace:
        attempts[-1].append(rec)
        if rec.restarted:
            attempts.append([])
    assert all(rec.length is None for rec in attempts[0])  # the first attempt is the model's own
    held = []
    for att in attempts[1:]:
        if not att:
            continue
        n = att[0].length
        assert n is not None and all(rec.length == n for rec in att)
        held.append(n)
        for rec in att:  # code only before the length, [PAD] only from it on
            for i, (t, c) in enumerate(zip(rec.tokens, rec.committed)):
                if c:
                    assert (t == 0) == (i >= n), (n, i, t)
    assert len(held) == len(set(held)) >= 2  # each restart tries another length
    assert not res.valid


# --- named checks: compiles, names resolve (pyflakes), tests N/N ---------------------------------
def test_a_fill_using_an_undefined_name_is_never_valid_and_implicates_its_tokens(task):
    c = task.encode([SRC])
    tok = hole_tokens(task, "return ific")
    rep = task.validate(c, tok, messages=True)
    assert rep.ok.tolist() == [False]
    assert [(k.name, k.ok) for k in rep.checks[0]] == [("compiles", True), ("names resolve", False)]
    assert "'ific'" in rep.checks[0][1].detail and "undefined name 'ific' at line 2" in rep.messages[0]
    ids = task.encode_hole("return ific")
    spelled = [i for i in range(len(ids)) if "ific" in task.hole_text([ids[i]]) or
               task.hole_text([ids[i]]).strip() in ("if", "ic", "i", "fic", "ific")]
    implicated = rep.violations[0].nonzero().squeeze(-1).tolist()
    assert implicated and set(implicated) <= set(spelled)  # the tokens spelling the name, not 'return'
    assert 0 not in implicated
    ok = task.validate(c, hole_tokens(task, "return a + b"), messages=True)
    assert ok.ok.tolist() == [True] and [(k.name, k.ok) for k in ok.checks[0]] == [
        ("compiles", True), ("names resolve", True)]


def test_names_undefined_outside_the_hole_are_not_held_against_the_fill(task):
    src = "def add(a, b):\n    <FILL>\n\n\nprint(helper_from_elsewhere(add(1, 2)))\n"
    c = task.encode([src])
    assert task.validate(c, hole_tokens(task, "return a + b")).ok.tolist() == [True]


def test_checks_count_the_tests_that_passed():
    tests = "from solution import add\n\ndef test_a():\n    assert add(2, 3) == 5\n\ndef test_b():\n" \
            "    assert add(0, 0) == 0\n"
    task = load_task("code-infill", tests=tests, test_timeout=20.0, memory_mb=512)
    c = task.encode([SRC])
    good = task.validate(c, hole_tokens(task, "return a + b"), messages=True)
    assert good.ok.tolist() == [True] and str(good.checks[0][-1]) == "tests 2/2"
    bad = task.validate(c, hole_tokens(task, "return a - b"), messages=True)
    assert bad.ok.tolist() == [False] and bad.checks[0][-1].name == "tests" and not bad.checks[0][-1].ok
    assert bad.checks[0][-1].detail.startswith("0/1")  # pytest -x stops at the first failure
