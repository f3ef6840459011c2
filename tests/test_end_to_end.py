"""End to end on the story world: the real scripts, a real (short) training run, real samples."""
import json

import pytest

import sample
import train
from extra import storyworld


@pytest.mark.slow
def test_a_short_run_learns_the_story_world(tmp_path, capsys):
    """Two minutes of the default recipe: the validation -ELBO must fall far below where it starts
    (a random model sits near log V, ~7 nats/token) and the samples must already read like
    stories."""
    out = tmp_path / "out"
    train.main(["--max_steps", "200", "--eval_every", "100", "--n_val", "64",
                "--out_dir", str(out)])
    metrics = json.loads((out / "metrics.json").read_text())
    first, last = metrics["log"][0]["val_nelbo_per_token"], metrics["val_nelbo_per_token"]
    assert metrics["log"][0]["step"] == 1 and first > 6
    assert last < 0.7 * first
    assert 0.25 < metrics["true_entropy_per_token"] < 0.4
    capsys.readouterr()
    sample.main(["--ckpt", str(out), "--n", "4", "--steps", "32", "--json", "--seed", "0"])
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(rows) == 4 and all(set(r) == {"text", "valid", "problems", "grade"} for r in rows)
    assert all(r["valid"] == storyworld.check(r["text"])[0] == r["grade"]["valid"] for r in rows)
    assert all(0 <= r["grade"]["fitting"] <= r["grade"]["sentences"] for r in rows)
