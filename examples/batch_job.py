"""A batch job: problems in a JSONL file, validator-certified results out, resumable.
Rerunning the same call skips the ids already in the output (a killed job picks up where it
stopped); under torchrun each rank takes its share and rank 0 merges.

    python examples/batch_job.py --n 100                # files go to a new temp folder
    python examples/batch_job.py --n 100 --dir jobs/
    # the same from the shell: constrained batch sudoku --input puzzles.jsonl --output results.jsonl
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from constrained import load_task
from constrained.batch import run_batch


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="default", help="'default' (shipped), or a model folder")
    ap.add_argument("--n", type=int, default=100, help="puzzles to write and solve")
    ap.add_argument("--dir", default=None,
                    help="where puzzles.jsonl and results.jsonl go (default: a new temp folder)")
    ap.add_argument("--max-passes", type=int, default=64)
    a = ap.parse_args(argv)

    folder = Path(a.dir) if a.dir else Path(tempfile.mkdtemp(prefix="constrained-batch-"))
    folder.mkdir(parents=True, exist_ok=True)
    print(f"files in {folder}")
    inp, out = folder / "puzzles.jsonl", folder / "results.jsonl"
    pairs = load_task("sudoku").generate(a.n, seed=3, grade="hard")
    with inp.open("w") as f:  # one JSON object per line: an id and the problem
        for i, (puzzle, _) in enumerate(pairs):
            f.write(json.dumps({"id": f"p{i}", "puzzle": puzzle}) + "\n")
    with inp.open("a") as f:  # a broken record becomes an "invalid-input" result, not a crash
        f.write(json.dumps({"id": "broken", "puzzle": "11" + "." * 79}) + "\n")

    summary = run_batch("sudoku", inp, out, model=a.model, batch_size=64, max_passes=a.max_passes,
                        progress=False)
    print(summary.text())
    again = run_batch("sudoku", inp, out, model=a.model, max_passes=a.max_passes, progress=False)
    print(f"rerun: {again.processed} processed, {again.skipped} already done")
    records = [json.loads(line) for line in out.read_text().splitlines()]
    truth = {f"p{i}": s for i, (_, s) in enumerate(pairs)}
    right = sum(r["status"] == "solved" and r["solution"] == truth[r["id"]] for r in records if r["id"] in truth)
    broken = next(r for r in records if r["id"] == "broken")
    print(f"{right}/{len(pairs)} equal the generator's solution; broken: {broken['status']} ({broken['reason']})")


if __name__ == "__main__":
    main()
