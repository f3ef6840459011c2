"""The model shipped in extra/checkpoint/ is what `python sample.py` uses right after install: it must load with
the plain Hugging Face classes, be the story-world model its metrics say it is, and write varied, story-length text.
(Its validity is 0/64 today; the README says so. These tests guard what it does do.)"""
import json

from transformers import AutoModelForMaskedLM, AutoTokenizer

import sample
from extra import storyworld
from extra.loading import load
from extra.probe_agreement import probe


def test_shipped_checkpoint_loads_with_plain_transformers():
    model = AutoModelForMaskedLM.from_pretrained(sample.SHIPPED)
    tok = AutoTokenizer.from_pretrained(sample.SHIPPED)
    assert tok.mask_token_id is not None and tok.eos_token_id is not None and tok.bos_token_id is not None
    assert model.config.vocab_size >= len(tok)
    metrics = json.load(open(f"{sample.SHIPPED}/metrics.json"))
    assert metrics["dataset"] == "storyworld" and metrics["val_nelbo_per_token"] < 2.5 * metrics["true_entropy_per_token"]


def test_shipped_model_knows_the_grammar():
    """At a masked name or pronoun it puts nearly all its mass on a name / a pronoun (which one: see the README)."""
    model, tok, _ = load(sample.SHIPPED)
    for kind, (right, cls, n) in probe(model, tok, n_stories=5).items():
        assert n > 5 and cls > 0.95, kind


def test_shipped_model_writes_varied_story_length_text(capsys):
    """16 samples with sample.py's defaults (the seed is fixed, so this is deterministic)."""
    sample.main(["--ckpt", sample.SHIPPED, "--n", "16", "--json", "--seed", "0"])
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(rows) == 16 and len({r["text"] for r in rows}) == 16  # not one story sixteen times
    assert all(r["valid"] == storyworld.check(r["text"])[0] for r in rows)
    words = sorted(len(r["text"].split()) for r in rows)
    assert words[0] >= 20 and 50 <= words[8] <= 150, words  # the world's stories have 63-120 words
