"""The model shipped in extra/checkpoint/ is what `python sample.py` uses right after install: it
must load with the plain Hugging Face classes, be the story-world model its metrics say it is, and
write varied, story-length text, copying each repeated word of a story from its other mentions. (Its
validity is measured by `python sample.py --n 64` and stated in the README; these tests guard what
makes it.)"""
import json

from transformers import AutoModelForMaskedLM, AutoTokenizer

import sample
from extra import storyworld
from extra.loading import SHIPPED, load
from extra.probe_agreement import probe


def test_shipped_checkpoint_loads_with_plain_transformers():
    model = AutoModelForMaskedLM.from_pretrained(SHIPPED)
    tok = AutoTokenizer.from_pretrained(SHIPPED)
    assert (tok.mask_token_id is not None and tok.eos_token_id is not None
            and tok.bos_token_id is not None)
    assert model.config.vocab_size >= len(tok)
    metrics = json.load(open(f"{SHIPPED}/metrics.json"))
    assert (metrics["dataset"] == "storyworld"
            and metrics["val_nelbo_per_token"] < 2.5 * metrics["true_entropy_per_token"])


def test_shipped_model_copies_its_hero_from_context():
    """A masked name or he/she, the rest of the story visible: the right one, not just some name (a
    guess is ~1/20)."""
    model, tok, _ = load(SHIPPED)
    found = probe(model, tok, n_stories=10)
    for kind in ("name", "pronoun"):
        right, cls, n = found[kind]
        assert n > 10 and cls > 0.95 and right > 0.9, (kind, right, cls)


def test_shipped_model_copies_every_repeated_word_of_a_story():
    """The companion stage's point (extra/companion_stage.py): every list is copied, the companion
    too (a guess among the eight family words is ~0.15; before the stage it was 0.16)."""
    model, tok, _ = load(SHIPPED)
    found = probe(model, tok, n_stories=30)
    for kind in ("toy", "companion", "other_animal", "friends_name", "snack"):
        right, cls, n = found[kind]
        assert n >= 8 and right > 0.9, (kind, right, n)


def test_shipped_model_writes_varied_story_length_text(capsys):
    """16 samples with sample.py's defaults (the seed is fixed, so this is deterministic)."""
    sample.main(["--ckpt", SHIPPED, "--n", "16", "--json", "--seed", "0"])
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(rows) == 16 and len({r["text"] for r in rows}) == 16  # not one story sixteen times
    assert all(r["valid"] == storyworld.check(r["text"])[0] for r in rows)
    words = sorted(len(r["text"].split()) for r in rows)
    assert words[0] >= 20 and 50 <= words[8] <= 150, words  # the world's stories have 63-120 words
