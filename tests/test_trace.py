"""The HTML trace: the data it replays, the renderer hook, the CLI, and the page itself driven
in headless Chromium (skipped, saying why, where /usr/bin/chromium is missing; failed instead
under CI=true, since CI installs it)."""

from __future__ import annotations

import dataclasses
import random
import re
from pathlib import Path

import pytest
from browser import Browser, require
from conftest import EASY_SOLUTION, tiny_model
from constrained.engine import make_noise
from constrained.tasks.sudoku import Sudoku

from constrained import ConfigError, Result, load_task
from constrained.cli import main
from constrained.solver import Solver, SolverConfig
from constrained.trace import TraceView, default_view, render_html, trace_data
from constrained.vocab import MASK

ARTIFACTS = Path(__file__).resolve().parent / "artifacts"


def puzzle(seed: int, blanks: int = 45) -> str:
    gone = set(random.Random(seed).sample(range(81), blanks))
    return "".join("." if i in gone else c for i, c in enumerate(EASY_SOLUTION))


# with the tiny random model (seed 0), puzzle 3 with 60 blanks (fewer blanks fall to the task's
# propagation of singles alone): under low-confidence re-noising all 48 passes run with restarts
# and both kinds of re-noising, unsolved; without it, it validates after some validator re-noising
HARD = EASYISH = puzzle(3, blanks=60)


def traced(task, problem: str, **cfg) -> Result:
    cfg.setdefault("search", "local")  # restarts and re-noising to show; test_complete_search_trace covers the rest
    solver = Solver(task, tiny_model(task), make_noise("mask", task.vocab.mask_id),
                    SolverConfig(**{"trace": True, "max_passes": 48, "patience": 12, **cfg}))
    return solver.run(task.encode([problem]), [problem])[0]


@pytest.fixture(scope="module")
def sudoku():
    task = load_task("sudoku")
    task.locked_rounds = 0  # singles only, so the puzzles below still need the re-noising they show
    return task


@pytest.fixture(scope="module")
def unsolved(sudoku) -> Result:
    r = traced(sudoku, HARD, confidence_renoise=0.1)
    assert not r.valid and r.restarts and r.passes == 48
    assert any(p.renoised_validator for p in r.trace) and any(p.renoised_confidence for p in r.trace)
    return r


@pytest.fixture(scope="module")
def solved(sudoku) -> Result:
    r = traced(sudoku, EASYISH)
    assert r.valid and any(p.renoised_validator for p in r.trace)
    return r


# --- data ---------------------------------------------------------------------------------
def test_complete_search_trace_has_a_frame_per_pass_and_shows_backtracks(sudoku):
    r = traced(sudoku, HARD, search="complete", order="fixed", max_passes=400)
    assert r.status == "solved" and r.trace is not None and len(r.trace) == r.passes >= 1
    assert r.backtracks == 0 or any(p.renoised_validator for p in r.trace)
    frames = trace_data(r, sudoku)["frames"]
    assert len(frames) == r.passes + 2 and frames[-1]["tokens"] == r.tokens


def test_frames_are_the_problem_every_pass_and_the_result(sudoku, unsolved):
    d = trace_data(unsolved, sudoku)
    frames = d["frames"]
    assert len(frames) == unsolved.passes + 2
    assert [f["label"] for f in frames[1:-1]] == [f"pass {k + 1}" for k in range(unsolved.passes)]
    start = frames[0]
    assert [t != sudoku.vocab.mask_id for t in start["tokens"]] == [c != "." for c in HARD]
    assert frames[-1]["tokens"] == unsolved.tokens and frames[-1]["violations"] == unsolved.violations
    assert sum(f["restarted"] for f in frames) == unsolved.restarts


def test_proposed_tokens_show_what_the_validator_sent_back(sudoku, unsolved):
    rec = next(p for p in unsolved.trace if p.renoised_validator)
    assert len(rec.proposed) == 81
    for i in rec.renoised_validator:
        assert rec.tokens[i] == sudoku.vocab.mask_id and rec.proposed[i] != sudoku.vocab.mask_id


def test_sudoku_is_drawn_as_a_9x9_grid_with_box_regions(sudoku):
    v = default_view(sudoku, 81)
    assert v.kind == "grid" and v.coords[10] == (1, 1) and v.labels[80] == "r9c9"
    assert v.regions[0] == v.regions[20] != v.regions[3]


def test_a_task_hook_chooses_the_view_and_bad_views_are_refused(sudoku, solved):
    class Ring(Sudoku):
        def trace_view(self, canvas):
            return TraceView(kind="graph", coords=[(0.5, i / 80) for i in range(81)], edges=[(0, 1)])

    assert trace_data(solved, Ring())["view"]["kind"] == "graph"
    for bad, words in [(TraceView(kind="spiral"), "kind"), (TraceView(kind="grid"), "coords"),
                       (TraceView(labels=["a"]), "labels has 1 entries"),
                       (TraceView(kind="graph", coords=[(0, 0)] * 81, edges=[(0, 81)]), "edge (0, 81)")]:
        with pytest.raises(ConfigError, match=re.escape(words)):
            bad.check(81)


def test_a_result_without_a_trace_says_how_to_get_one(sudoku, solved):
    with pytest.raises(ConfigError, match="trace=True"):
        render_html(dataclasses.replace(solved, trace=None), sudoku)


def test_the_page_is_one_self_contained_file(sudoku, solved, tmp_path):
    html = render_html(solved, "sudoku", tmp_path / "t.html")
    assert (tmp_path / "t.html").read_text() == html
    assert "%%" not in html and "<script>" in html and "<style>" in html
    for external in ("<link", " src=", "@import", "url(", "fetch(", "XMLHttpRequest"):
        assert external not in html
    assert set(re.findall(r"https?://[^\s\"'<>]+", html)) <= {"http://www.w3.org/2000/svg"}  # SVG namespace
    with pytest.raises(ConfigError, match="does not exist"):
        render_html(solved, sudoku, tmp_path / "missing" / "t.html")


def test_cli_trace_writes_the_page(sudoku, tmp_path, capsys):
    model_dir = tmp_path / "model"
    tiny_model(sudoku).save_pretrained(model_dir, safe_serialization=True)
    out = tmp_path / "cli.html"
    args = ["trace", "sudoku", EASYISH, "--model", str(model_dir), "--out", str(out)]
    rc = main([*args, "--max-passes", "48"])
    said = capsys.readouterr().out
    assert rc in (0, 1) and out.exists() and f"trace written to {out}" in said
    assert ("solved (validator passed)" in said) == (rc == 0)
    assert main([*args, "--item", "3"]) == 2
    assert "out of range" in capsys.readouterr().err


# --- the page in a browser ----------------------------------------------------------------

STATE_JS = """(() => { const cells = [...document.querySelectorAll('#canvas .pos')]
  .sort((a, b) => a.dataset.pos - b.dataset.pos);
  return {frame: +document.body.dataset.frame, label: document.body.dataset.label,
          tokens: cells.map((c) => c.dataset.token), states: cells.map((c) => c.dataset.state),
          slider: +document.getElementById('slider').value,
          messages: [...document.querySelectorAll('#messages li')].map((li) => li.textContent)}; })()"""


@pytest.fixture(scope="module")
def browser():
    require()  # skips where Chromium is missing; fails under CI=true
    with Browser() as b:
        yield b


def expected_tokens(vocab, tokens, committed) -> list[str]:
    return ["" if not c else vocab.tokens[t] for t, c in zip(tokens, committed)]


def test_stepping_the_controls_reaches_every_pass_and_ends_on_the_result(browser, sudoku, unsolved, tmp_path):
    page = tmp_path / "trace.html"
    render_html(unsolved, sudoku, page)
    browser.open(page)
    browser.wait_for("document.body.dataset.ready === '1'")
    n = unsolved.passes
    assert browser.eval("+document.body.dataset.frames") == n + 2
    seen_states: set[str] = set()
    for k in range(n + 1):
        s = browser.eval(STATE_JS)
        assert s["frame"] == k == s["slider"]
        if k == 0:
            assert s["label"] == "start"
            assert s["tokens"] == ["" if c == "." else c for c in HARD]
        else:
            rec = unsolved.trace[k - 1]
            assert s["label"] == f"pass {k}"
            shown = [t for t, st in zip(s["tokens"], s["states"]) if st not in ("rv", "rc")]
            want = [t for t, st in zip(expected_tokens(sudoku.vocab, rec.tokens, rec.committed), s["states"])
                    if st not in ("rv", "rc")]
            assert shown == want
            rv = sorted(i for i, st in enumerate(s["states"]) if st == "rv")
            assert rv == sorted(rec.renoised_validator)
            assert {i for i, st in enumerate(s["states"]) if st == "rc"} <= set(rec.renoised_confidence)
            assert s["messages"][:60] == (rec.messages[:60] or ["no complaints"])
        seen_states.update(s["states"])
        browser.click("#next")
    final = browser.eval(STATE_JS)
    assert final["frame"] == n + 1 and final["label"] == "result"
    assert final["tokens"] == [sudoku.vocab.tokens[t] for t in unsolved.tokens]  # the Result, token for token
    assert "".join(final["tokens"]) == unsolved.solution
    assert sorted(i for i, st in enumerate(final["states"]) if st.endswith("bad")) == unsolved.violations
    assert {"given", "new", "committed", "rv", "rc", "empty"} <= seen_states
    browser.click("#next")  # past the end stays on the result
    assert browser.eval("+document.body.dataset.frame") == n + 1
    ARTIFACTS.mkdir(exist_ok=True)
    browser.call("Runtime.evaluate", expression="constrainedTrace.show(constrainedTrace.frames - 2)")
    shot = browser.screenshot(ARTIFACTS / "trace-last-pass.png")
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 10_000


def test_slider_keys_play_and_query_string_move_through_passes(browser, sudoku, solved, tmp_path):
    page = tmp_path / "solved.html"
    render_html(solved, sudoku, page)
    browser.open(page, "?pass=2")
    browser.wait_for("document.body.dataset.ready === '1'")
    assert browser.eval("+document.body.dataset.frame") == 2
    browser.eval("(() => { const s = document.getElementById('slider'); s.value = 4;"
                 " s.dispatchEvent(new Event('input')); })()")
    assert browser.eval("+document.body.dataset.frame") == 4
    browser.key("ArrowLeft", "ArrowLeft", 37)
    assert browser.eval("+document.body.dataset.frame") == 3
    browser.key("End", "End", 35)
    s = browser.eval(STATE_JS)
    assert s["label"] == "result" and "".join(s["tokens"]) == solved.solution
    assert browser.eval("document.getElementById('verdict').textContent") == "validated"
    browser.click("#first")
    assert browser.eval("+document.body.dataset.frame") == 0
    browser.eval("document.getElementById('speed').value = '200'")
    browser.click("#play")
    browser.wait_for(f"+document.body.dataset.frame === {solved.passes + 1}"
                     " && document.body.dataset.playing === '0'", timeout=20)


@pytest.mark.parametrize("kind", ["graph", "strip", "lines"])
def test_every_view_kind_draws_every_position(browser, solved, tmp_path, kind):
    class Custom(Sudoku):
        def trace_view(self, canvas):
            coords = [(i % 9 / 8, i // 9 / 8) for i in range(81)] if kind == "graph" else \
                [(i // 9, i % 9) for i in range(81)]
            return TraceView(kind=kind, coords=None if kind == "strip" else coords, edges=[(0, 1), (1, 2)],
                             palette={"1": "#fde68a"}, token_text={MASK: "_"}, hidden=[80], per_row=27,
                             before="above", after="below")

    page = tmp_path / f"{kind}.html"
    render_html(solved, Custom(), page)
    browser.open(page, "?pass=result")
    browser.wait_for("document.body.dataset.ready === '1'")
    s = browser.eval(STATE_JS)
    assert len(s["tokens"]) == 80 and "".join(s["tokens"]) == solved.solution[:80]
    assert browser.eval("document.getElementById('before').textContent") == "above"
    if kind == "graph":
        assert browser.eval("document.querySelectorAll('#canvas svg line').length") == 2
