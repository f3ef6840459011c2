"""Known-answer tests for the story world (extra/storyworld.py): the engine, the generator, the checker."""
import math
import random

import pytest

from extra import storyworld as sw

# A hand-written lost-and-found story that the world can produce (checked below), used for corruptions.
LOST = ('Once upon a time, there was a little girl named Lily. She loved to draw pictures. '
        'Lily had a big red ball that she loved very much. One day, she took it to the park. '
        'Then the ball was gone! Lily felt very sad. "Where is my ball?" Lily asked. Her mom came to help. '
        'They looked everywhere. At last, Lily saw her red ball under a bush. Lily was so happy.')


def toy_world(r):
    """A two-choice toy. Texts and probabilities, worked out by hand:
    'red red' / 'red red!' (1/3 * 1/4, 1/3 * 3/4), the same for blue and green: 6 texts, sum 1.
    The colour is a latent, so it must be repeated; '!' is an optional ending with weights 3:1."""
    r.say(r.latent("c", "colour", ("red", "blue", "green")))
    r.say(" " + r.latent("c", "colour", ("red", "blue", "green")))
    if r.choose("bang", (True, False), (3, 1)):
        r.say("!")


def ambiguous_world(r):
    """'ab' can be said as 'a'+'b' or as 'ab': the checker must see two derivations."""
    r.say(r.choose("first", ("a", "ab")))
    if r.choose("more", (True, False)):
        r.say("b")


@pytest.fixture(scope="module")
def samples():
    rng = random.Random(42)
    return [sw.sample_story(rng) for _ in range(1000)]


def test_engine_on_toy_world():
    texts = [f"{c} {c}{e}" for c in ("red", "blue", "green") for e in ("", "!")]
    total = 0.0
    for text in texts:
        found = sw.derivations(text, toy_world)
        assert len(found) == 1, text
        total += math.exp(found[0][1])
    assert total == pytest.approx(1.0, abs=1e-12)
    assert math.exp(sw.derivations("blue blue!", toy_world)[0][1]) == pytest.approx(1 / 3 * 3 / 4)
    # a latent that changes is not a derivation; the relaxed parse names it
    assert sw.derivations("red blue", toy_world) == []
    assert sw.check("red blue", toy_world) == (False, ["colour: 'red', later 'blue'"])
    assert len(sw.derivations("ab", ambiguous_world)) == 2
    assert sw.check("ab", ambiguous_world)[0] is False


def test_generated_stories_parse_uniquely_with_the_same_log_p(samples):
    for text, logp in samples:
        found = sw.derivations(text)
        assert len(found) == 1, text
        assert found[0][1] == pytest.approx(logp, abs=1e-9)
    assert all(sw.check(text) == (True, []) for text, _ in samples[:200])


def test_story_shape(samples):
    words = [len(text.split()) for text, _ in samples]
    assert 60 <= min(words) and max(words) <= 130
    assert 80 <= sum(words) / len(words) <= 100
    plots = set()
    for text, _ in samples[:300]:
        choices = sw.derivations(text)[0][0]
        plots.add(next(option for label, option in choices if label == "plot"))
    assert plots == set(sw.PLOTS) and len(plots) >= 6


def test_log_prob_matches_generator():
    text, logp = sw.sample_story(random.Random(7))
    assert sw.log_prob(text) == pytest.approx(logp, abs=1e-9)
    assert sw.log_prob(text + " Lily ate a cake.") is None


def test_splits_are_disjoint_and_deterministic():
    valid = sw.valid_stories(500)
    assert len(valid) == 500 and valid == sw.valid_stories(500)
    gen = sw.train_stories(seed=0)
    train = [next(gen) for _ in range(5000)]
    assert not set(valid) & set(train)
    gen2 = sw.train_stories(seed=0)
    assert [next(gen2) for _ in range(50)] == train[:50]
    assert sw.sample_story(random.Random(3)) == sw.sample_story(random.Random(3))


def test_hand_written_story_is_valid():
    assert sw.check(LOST) == (True, [])
    assert sw.check("  " + LOST.replace(". ", ".\n  ") + "\n") == (True, [])  # whitespace is normalised


@pytest.mark.parametrize("bad, reason", [
    (LOST.replace("Lily was so happy", "Mia was so happy"), "hero's name: 'Lily', later 'Mia'"),
    (LOST.replace("She loved", "He loved"), "pronoun for Lily (a girl): 'He'"),
    (LOST.replace("her red ball under", "her red kite under"), "object found (the kite) is not the one lost (the red ball)"),
    (LOST.replace("her red ball under", "her blue ball under"), "colour of the ball: 'red', later 'blue'"),
    (LOST.replace("a little girl", "a owl"), "'a' before a vowel: 'a owl'"),
    (LOST[:-1], "does not end with a full sentence"),
    (LOST.replace("Lily felt very sad.", "The dog runned home."), "sentence 6 does not fit any template: 'The dog runned home.'"),
    (LOST.replace("Lily felt very sad.", "Lily felt very happy."), "sentence 6 does not fit any template"),
    ("", "empty text"),
    (LOST[:LOST.index(" Lily had")], "the story is unfinished: it stops after sentence 2"),
])
def test_corruptions_are_rejected_with_the_right_reason(bad, reason):
    ok, problems = sw.check(bad)
    assert not ok
    assert any(reason in p for p in problems), problems


def test_entropy_is_in_range():
    s = sw.entropy(n=2000, seed=1)
    assert 35 <= s["nats_per_story"] <= 60
    assert s["nats_per_story_se"] < 0.5
    s = sw.entropy(n=50, seed=1, tokenize=str.split)
    assert s["tokens_per_story"] == pytest.approx(s["words_per_story"] + 1)
