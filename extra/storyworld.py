"""The story world: a tiny probabilistic program that writes children's stories with exact log p.

The world
---------
A hero (a girl, a boy, or an animal such as a cat, a fox or an owl, with a name and the right
he/she) lives through one of six little plots: losing a toy and finding it, making a new friend,
sharing a snack, being brave at night, a trip, and helping an animal in trouble. Each plot is a list
of sentences; most sentences have three or four wordings, a few are optional, and some are dialogue.
The stories are 60-130 words long and use a few hundred distinct words, so a ~4M-parameter model
can learn to write *valid* ones from a few million tokens.

The engine
----------
The whole world is one function, `story(r)`. It asks a recorder `r` for every random decision:
  r.choose(label, options)   a fresh choice (the wording of a sentence, whether to add an optional
                             sentence, which plot, ...);
  r.latent(key, label, options)  a fact that must stay the same all story long (the hero's name,
                             the lost toy and its colour, ...). I pick it lazily at its first use
                             and remember it, so every choice shows in the text right after it.
  r.say(text)                emit text.
Two recorders run the very same function, so the generator and the checker cannot drift apart:
  * `Writer` draws each choice from a random.Random and adds log p(option) -> (text, log p);
  * `Replayer` parses: a depth-first search over choice sequences. Each replay follows a prefix of
    choice indices, takes option 0 at every new choice (remembering the others to try later), and
    gives up (raises `Prune`) as soon as the emitted text stops being a prefix of the target.
    Every complete replay that reproduces the target is a derivation. A valid story has exactly one,
    and its log p is exact. If there is none, a relaxed replay lets latent facts deviate at a later
    use, and each deviation becomes a readable problem ("hero's name: 'Lily', later 'Tom'").

Grading
-------
`check` says valid or not; `grade(text)` gives the same parse's verdict in numbers (how many
sentences fit the grammar in their place, and the problems counted by kind), and `grade_all(texts)`
sums them up for a batch of model samples ("share of sentences that fit").

Run `python extra/storyworld.py --stats`, `--sample 3` or `--check "Once upon a time, ..."`.
The per-token figures of --stats are for the tokenizer of `--tokenizer DIR`, a model's folder
(default: the shipped model, extra/checkpoint). This file imports nothing of the project.
"""
import argparse
import bisect
import json
import math
import os
import random
import re
import statistics
import sys
import zlib
from functools import lru_cache

# ----------------------------------------------------------------------------------------------
# The data tables. Small on purpose: every extra option costs the model vocabulary and entropy.

KINDS = ("child", "cat", "dog", "bunny", "fox", "owl", "bear", "duck", "mouse", "pig", "lion",
         "hen")
NAMES = {"girl": ("Lily", "Mia", "Sue", "Anna", "Lucy", "Emma", "Zoe", "Amy", "Ella", "Rose"),
         "boy": ("Tom", "Ben", "Max", "Sam", "Leo", "Tim", "Jack", "Finn", "Bob", "Dan")}
ALL_NAMES = NAMES["girl"] + NAMES["boy"]
GENDER_OF = {name: g for g, names in NAMES.items() for name in names}
PRONOUNS = {"girl": {"he": "she", "his": "her", "him": "her", "himself": "herself"},
            "boy": {"he": "he", "his": "his", "him": "him", "himself": "himself"}}
PALS = ("mom", "dad", "grandma", "grandpa", "big sister", "big brother", "aunt", "uncle")
TOYS = ("ball", "kite", "doll", "teddy bear", "boat", "car", "hat", "drum", "robot", "puzzle")
COLOURS = ("red", "blue", "green", "yellow", "orange", "pink", "purple", "white")
SIZES = ("little", "big")
WEATHER = ("sunny", "windy", "cold", "warm", "cloudy")
# place -> (what you see there, what you do there)
PLACES = {"park": ("a big slide and tall trees", "went down the slide"),
          "beach": ("the big blue sea", "built a sand castle"),
          "farm": ("cows, pigs and hens", "fed the hens"),
          "lake": ("ducks on the water", "threw stones into the water"),
          "forest": ("tall trees and pretty flowers", "picked up pine cones"),
          "garden": ("bees and pretty flowers", "watered the flowers")}
BUDDIES = ("puppy", "kitten", "bird", "frog", "squirrel", "lamb", "turtle", "owl", "goat", "ant")
BUDDY_NAMES = ("Pip", "Dot", "Bo", "Kiki", "Nuts", "Sunny")
TREATS = ("apple", "orange", "cookie", "cupcake", "banana", "pear")
HIDINGS = ("bush", "bench", "big leaf", "box", "tree", "rock")
HOBBIES = ("play outside", "sing songs", "draw pictures", "read books", "dance", "run and jump",
           "play ball", "swim")
GAMES = ("tag", "hide and seek", "catch")
# trouble -> how the hero fixes it (the fix must follow the trouble: a checked constraint)
TROUBLES = {"stuck in a deep hole": "pulled it out with a long stick",
            "stuck up a tall tree": "helped it climb down",
            "lost and far from home": "showed it the way home",
            "caught in a thorny bush": "gently set it free"}


# ----------------------------------------------------------------------------------------------
# The recorders. The story only ever calls choose / latent / say / begin_sentence, so it never
# knows which one runs.

def option_logp(n, weights, k):
    """log p of option k out of n (uniform unless weights are given).

    Shared so both sides agree to the bit."""
    if weights is None:
        return -math.log(n)
    return math.log(weights[k] / sum(weights))


class Writer:
    """Generates: draws every choice from rng and adds up log p."""

    def __init__(self, rng):
        self.rng, self.memo, self.parts, self.logp = rng, {}, [], 0.0

    def choose(self, label, options, weights=None):
        n = len(options)
        k = self.rng.randrange(n) if weights is None else self.rng.choices(range(n), weights)[0]
        self.logp += option_logp(n, weights, k)
        return options[k]

    def latent(self, key, label, options, alternatives=None):
        if key not in self.memo:
            self.memo[key] = self.choose(key, options)
        return self.memo[key]

    def say(self, text):
        self.parts.append(text)

    def begin_sentence(self, template=None):
        return bool(self.parts)  # True -> a space goes before the new sentence


class Prune(Exception):
    """Raised by a replay whose text stopped matching the target."""


class Replayer:
    """Parses: replays the story along a prefix of choice indices, pruning on the first mismatch.

    In relaxed mode a latent fact that is already known may deviate at a later use; the deviation is
    recorded as a problem, formatted with the text said right after it (the offending word). Each
    deviation is also recorded in events as (problem, position of the offending word), even when
    the same problem was already seen (problems holds each message once, for check's report).
    If the target ends inside a piece of text the story says, pos is set to the target's end before
    the replay gives up: pos == len(target) then means the target is a prefix of a story.
    """

    def __init__(self, target, prefix, relaxed=False):
        self.target, self.prefix, self.relaxed = target, prefix, relaxed
        self.path = list(prefix)  # choice indices taken so far
        self.fresh = []  # (choice number, number of options) for choices beyond the prefix
        self.i, self.pos, self.line_start, self.logp = 0, 0, 0, 0.0
        self.memo, self.taken, self.problems, self.pending = {}, [], [], None
        self.events, self.plot_at = [], None  # plot_at: pos when the plot was chosen

    def branch(self, n):
        i = self.i
        self.i += 1
        if i < len(self.prefix):
            return self.prefix[i]
        if n > 1:
            self.fresh.append((i, n))  # options 1..n-1 are tried by later replays
        self.path.append(0)
        return 0

    def choose(self, label, options, weights=None):
        k = self.branch(len(options))
        self.logp += option_logp(len(options), weights, k)
        self.taken.append((label, options[k]))
        if label == "plot":
            self.plot_at = self.pos
        return options[k]

    def latent(self, key, label, options, alternatives=None):
        if key not in self.memo:
            self.memo[key] = self.choose(key, options)
            return self.memo[key]
        old = self.memo[key]
        if not self.relaxed:
            return old
        # relaxed: the known value first (no problem), then every other value (one problem each)
        others = [o for o in (alternatives or options) if o != old]
        k = self.branch(1 + len(others))
        if k == 0:
            return old
        self.pending = (label, old)
        return others[k - 1]

    def say(self, text):
        if not self.target.startswith(text, self.pos):
            rest = len(self.target) - self.pos
            if rest < len(text) and text.startswith(self.target[self.pos:]):
                self.pos = len(self.target)  # the target stops inside this text: a story's prefix
            raise Prune
        if self.pending:
            label, old = self.pending
            said = text.strip()
            if callable(label):
                msg = label(self.memo, old, said)
            else:
                msg = f"{label}: {old!r}, later {said!r}"
            self.events.append((msg, self.pos + len(text) - len(text.lstrip())))
            if msg not in self.problems:
                self.problems.append(msg)
            self.pending = None
            if len(self.problems) > MAX_PROBLEMS:
                raise Prune
        self.pos += len(text)

    def begin_sentence(self, template=None):
        self.line_start = self.pos
        return self.pos > 0


MAX_PROBLEMS = 6  # a relaxed parse needing more deviations than this is hopeless; prune it


# ----------------------------------------------------------------------------------------------
# Templates. "{He} found {his} {toy}." : each {slot} is filled by a slot function below and said
# at once, so a wrong guess is pruned right away. "{He}" capitalises, "{a buddy}" adds a/an.

def an(word):
    """The indefinite article for word: an("owl") -> "an", an("big owl") -> "a"."""
    return "an" if word[0] in "aeiouAEIOU" else "a"


@lru_cache(maxsize=None)
def compile_template(template):
    """'{He} saw {a buddy} [today|again].' -> pieces: literal strings, slots (fill, cap, article)
    and inline word choices (a tuple of words):
    ((he, True, False), ' saw ', (buddy, False, True), ' ', ('today', 'again'), '.')"""
    pieces = []
    for i, part in enumerate(re.split(r"\{([^}]*)\}|\[([^\]]*)\]", template)):
        if part is None or (i % 3 == 0 and not part):
            continue
        if i % 3 == 0:
            pieces.append(part)
        elif i % 3 == 2:
            pieces.append(tuple(part.split("|")))
        else:
            article = part.lower().startswith("a ")
            name = part[2:] if article else part
            pieces.append((SLOTS[name.lower()], name[0].isupper() or part[0] == "A", article))
    return tuple(pieces)


def line(r, *variants):
    """Say one sentence (or a short group of them), in one of the given wordings."""
    template = variants[0] if len(variants) == 1 else r.choose("wording", variants)
    sep = " " if r.begin_sentence(template) else ""
    for piece in compile_template(template):
        if piece.__class__ is str:
            text = piece
        elif len(piece) != 3 or piece[0].__class__ is str:  # an inline [word|word] choice
            text = r.choose("word", piece)
        else:
            fill, cap, article = piece
            text = fill(r)
            if article:
                text = an(text) + " " + text
            if cap:
                text = text[0].upper() + text[1:]
        r.say(sep + text)
        sep = ""


def maybe(r, *variants):
    """An optional sentence: said with probability 1/2."""
    if r.choose("optional", (True, False)):
        line(r, *variants)


# ----------------------------------------------------------------------------------------------
# Slots: the latent facts of a story and the words that show them.

def gender(r, label="hero's gender"):
    return r.latent("gender", label, ("girl", "boy"))


def kind(r):
    return r.latent("kind", "hero's kind", KINDS)


def hero_noun(memo):
    return memo["gender"] if memo["kind"] == "child" else memo["kind"]


def pronoun_problem(memo, old, said):
    noun = hero_noun(memo)
    return f"pronoun for {memo.get('name', 'the hero')} ({an(noun)} {noun}): {said!r}"


def noun_problem(memo, old, said):
    return f"{memo.get('name', 'the hero')} is {an(old)} {old}, later {said!r}"


def name(r):
    if "gender" in r.memo:
        return r.latent("name", "hero's name", NAMES[r.memo["gender"]], ALL_NAMES)
    # subtle: the name shows the gender, so when the name comes first I pick it from all names and
    # read the gender off it: p = 1/16 = p(gender) * p(name | gender), the same as the other order.
    chosen = r.latent("name", "hero's name", ALL_NAMES)
    r.memo["gender"] = GENDER_OF[chosen]
    return chosen


def noun(r):
    k = kind(r)
    return gender(r, noun_problem) if k == "child" else k


def pronoun(form):
    return lambda r: PRONOUNS[gender(r, pronoun_problem)][form]


def toy(r):
    return r.latent("toy", "the lost toy", TOYS)


def found_toy(r):
    def problem(memo, old, said):
        lost = f"{memo.get('colour', '')} {old}".strip()
        return f"object found (the {said}) is not the one lost (the {lost})"
    return r.latent("toy", problem, TOYS)


def colour(r):
    def problem(m, old, said):
        return f"colour of the {m.get('toy', 'toy')}: {old!r}, later {said!r}"
    return r.latent("colour", problem, COLOURS)


def size(r):
    def problem(m, old, said):
        return f"size of the {m.get('toy', 'toy')}: {old!r}, later {said!r}"
    return r.latent("size", problem, SIZES)


def a_toy(r):
    """'a big red ball': said in three pieces so each choice is checked as soon as it is made."""
    r.say("a " + size(r) + " ")
    r.say(colour(r) + " ")
    return toy(r)


def place(r):
    return r.latent("place", "place", tuple(PLACES))


def sight(r):
    def problem(m, old, said):
        return f"at the {old} the hero saw {said!r}"
    return PLACES[r.latent("place", problem, tuple(PLACES))][0]


def activity(r):
    def problem(m, old, said):
        return f"at the {old} the hero {said!r}"
    return PLACES[r.latent("place", problem, tuple(PLACES))][1]


def trouble(r):
    return r.latent("trouble", "the trouble", tuple(TROUBLES))


def fix(r):
    def problem(memo, old, said):
        return f"the help ({said!r}) does not fit the trouble ({old!r})"
    return TROUBLES[r.latent("trouble", problem, tuple(TROUBLES))]


SLOTS = {
    "name": name, "noun": noun,
    "he": pronoun("he"), "his": pronoun("his"), "him": pronoun("him"),
    "himself": pronoun("himself"),
    "pal": lambda r: r.latent("pal", "companion", PALS),
    "toy": toy, "found_toy": found_toy, "colour": colour, "size": size, "a_toy": a_toy,
    "place": place, "sight": sight, "activity": activity,
    "weather": lambda r: r.latent("weather", "weather", WEATHER),
    "hobby": lambda r: r.latent("hobby", "hobby", HOBBIES),
    "buddy": lambda r: r.latent("buddy", "the other animal", BUDDIES),
    "buddy_name": lambda r: r.latent("buddy_name", "the new friend's name", BUDDY_NAMES),
    "treat": lambda r: r.latent("treat", "the snack", TREATS),
    "hiding": lambda r: r.latent("hiding", "hiding place", HIDINGS),
    "game": lambda r: r.latent("game", "game", GAMES),
    "trouble": trouble, "fix": fix,
}


# ----------------------------------------------------------------------------------------------
# The book: an introduction, then one plot per function.

def introduce(r):
    line(r, "Once upon a time, there was a [little|young] {noun} named {name}.",
         "Once upon a time, there was {a noun} called {name}.",
         "There once was a [little|kind|happy] {noun} named {name}.",
         "{Name} was a little {noun} who lived in a [small|big|cozy] house.",
         "Long ago, there lived a [little|young] {noun} named {name}.")
    line(r, "{He} [loved|liked] to {hobby}.",
         "Every day, {he} liked to {hobby}.",
         "{Name} liked to {hobby} with {his} {pal}.",
         "More than anything, {name} loved to {hobby}.")
    maybe(r, "{He} lived with {his} {pal} [near|by] the {place}.",
          "{Name} had a lot of friends.",
          "{He} was always [kind|happy|curious].")


def lost_and_found(r):
    line(r, "{Name} had {a_toy} that {he} loved [very|so] much.",
         "{His} favorite toy was {a_toy}.",
         "{Name} had {a_toy}. It was {his} best toy.",
         "{His} {pal} gave {him} {a_toy}.")
    line(r, "One [day|afternoon], {he} took it to the {place}.",
         "One {weather} day, {name} went to play in the {place}.",
         "One morning, {name} and {his} {toy} went to the {place}.")
    maybe(r, "{He} played there [all morning|for hours|all day].")
    line(r, "Then the {toy} was gone!",
         "But then {he} could not find {his} {toy}.",
         "Soon, {his} {toy} was missing.",
         "After a while, {his} {toy} was not there anymore!")
    line(r, "{Name} felt [very|so] sad.",
         "{Name} was so sad that {he} began to cry.",
         "{He} felt sad and wanted to cry.")
    line(r, "\"Where is my {toy}?\" {name} [asked|cried].",
         "\"Oh no, where did my {toy} go?\" {he} cried.",
         "\"I lost my {colour} {toy}!\" {name} said.")
    line(r, "{His} {pal} came to help.",
         "\"Do not worry, we will find it,\" said {his} {pal}.",
         "Then {his} {pal} came over.")
    line(r, "They looked [everywhere|high and low].",
         "They looked all over the {place}.",
         "They looked under every bush.",
         "They searched and searched.",
         "They looked for a long time.")
    line(r, "[At last|Finally], {name} saw {his} {colour} {found_toy} under {a hiding}.",
         "Then {he} found the {size} {colour} {found_toy} under {a hiding}!",
         "There it was! The {colour} {found_toy} was under {a hiding}.")
    line(r, "{Name} was [so|very] happy.",
         "{Name} hugged {his} {toy} and smiled.",
         "\"Thank you!\" {name} said to {his} {pal}.",
         "{Name} jumped up and down with joy.")
    maybe(r, "{He} kept {his} {toy} close after that.",
          "The little {noun} never lost it again.")


def new_friend(r):
    line(r, "One [day|afternoon], {name} went to the {place}.",
         "One {weather} morning, {name} went to play at the {place}.",
         "One day, {name} was playing at the {place}.")
    line(r, "There, {he} saw a little {buddy} sitting all alone.",
         "Under a tree, {he} met {a buddy}.",
         "{He} saw a little {buddy} who looked [sad|lonely|shy].")
    line(r, "\"Hello, I am {name},\" {he} said. \"What is your name?\"",
         "\"Hi! Do you want to play with me?\" {name} asked.",
         "\"Hello! Will you be my friend?\" {name} asked.")
    line(r, "\"My name is {buddy_name},\" the {buddy} said [shyly|softly].",
         "The {buddy} smiled. \"I am {buddy_name}. Yes, let us play!\"",
         "\"Yes! My name is {buddy_name},\" said the {buddy}.")
    line(r, "{Name} and {buddy_name} played {game} all [day|afternoon].",
         "They [ran|raced], jumped and laughed together.",
         "The two friends played {game} until the sun went down.")
    maybe(r, "They had so much fun.",
          "{Buddy_name} was very good at hiding.",
          "{Name} showed {buddy_name} how to {hobby}.")
    line(r, "When it was time to go home, {name} felt a little sad.",
         "Soon it was time to go home.",
         "At the end of the day, the sun began to set.")
    line(r, "\"Can we play again tomorrow?\" {name} asked.",
         "\"See you tomorrow, {buddy_name}!\" {name} said.",
         "\"You are my best friend,\" {name} told {buddy_name}.")
    maybe(r, "{Buddy_name} waved goodbye.", "The {buddy} nodded and smiled.")
    line(r, "{Name} was happy to have a new friend.",
         "{Name} went home with a [big|happy] smile.",
         "That night, the little {noun} dreamed of {his} new friend.",
         "{Name} told {his} {pal} all about {his} new friend.")


def sharing(r):
    line(r, "One day, {his} {pal} gave {him} {a treat}.",
         "One morning, {name} had {a treat} for a snack.",
         "After lunch, {his} {pal} gave {name} {a treat}.",
         "{Name} found {a treat} on the kitchen table.")
    line(r, "{Name} sat down to eat it [slowly|happily].",
         "It looked so [good|yummy]!",
         "{He} was about to eat it.")
    line(r, "Just then, a little {buddy} came by.",
         "Then {he} saw a little {buddy} who looked very hungry.",
         "A little {buddy} sat nearby and looked at the {treat}.")
    line(r, "\"I am so hungry,\" [said|cried] the {buddy}.",
         "The {buddy} had nothing to eat.",
         "\"Can I have some?\" the {buddy} asked.")
    maybe(r, "{Name} thought for a moment.",
          "{Name} wanted to eat it all, but {he} felt bad for the {buddy}.")
    line(r, "Then {he} broke the {treat} in two and gave half to the {buddy}.",
         "{He} gave half of {his} {treat} to the {buddy}.",
         "\"Here, you can have half,\" {name} said.")
    line(r, "The {buddy} was [very|so] happy.",
         "\"Thank you!\" said the {buddy}.",
         "The {buddy} smiled and said thank you.")
    line(r, "They ate the {treat} together [in the sun|on the grass].",
         "They sat side by side and ate.",
         "Now they both had something to eat.")
    maybe(r, "It tasted even better that way.", "Soon they were good friends.")
    line(r, "{Name} felt [warm|happy|good] inside.",
         "Sharing made {name} feel good.",
         "{Name} learned that sharing is fun.",
         "{His} {pal} was proud of {him} for sharing.")


def being_brave(r):
    line(r, "One night, {name} heard a strange noise outside.",
         "One dark night, {name} heard a loud noise.",
         "One night, {name} woke up and heard a noise.",
         "Late one night, something went bump outside {his} window.")
    line(r, "{He} was [very|so] scared.",
         "{Name} felt scared and hid under the blanket.",
         "{Name} was so scared that {he} [shook|could not move].")
    line(r, "\"What is that?\" {he} whispered.",
         "\"Who is there?\" {name} asked in a small voice.",
         "\"Is it a monster?\" {name} asked.")
    maybe(r, "{He} wanted to call {his} {pal}.", "{He} held {his} blanket tight.")
    line(r, "But then {name} took a deep breath.",
         "Then {he} decided to be brave.",
         "{Name} wanted to be brave.")
    line(r, "{He} went to the window and looked [out|outside].",
         "{He} opened the door [slowly|very slowly].",
         "{He} took a small light and went to look.")
    line(r, "It was just a little {buddy} looking for a home!",
         "It was only a little {buddy} playing in the dark.",
         "There sat a little {buddy}, as scared as {he} was.")
    line(r, "{Name} laughed.",
         "\"You scared me!\" {name} said with a smile.",
         "{Name} was not scared anymore.")
    maybe(r, "{He} gave the {buddy} a warm place to sleep.",
          "The {buddy} said sorry and went home.")
    line(r, "{Name} felt very proud of {himself}.",
         "{He} was proud that {he} had been brave.",
         "The next day, {he} told {his} {pal} how brave {he} had been.",
         "{Name} was a brave little {noun} after all.")


def a_trip(r):
    line(r, "One {weather} day, {name} went to the {place} with {his} {pal}.",
         "One day, {his} {pal} took {him} to the {place}.",
         "{Name} and {his} {pal} went on a trip to the {place}.")
    line(r, "{Name} was [so|very] excited.",
         "{He} had never been there before.",
         "\"I can not wait!\" {name} said.")
    line(r, "At the {place}, {he} saw {sight}.",
         "There, {he} saw {sight}.",
         "{Name} looked [around|up] and saw {sight}.")
    maybe(r, "\"Look!\" {name} said. \"It is so [pretty|big]!\"")
    line(r, "{He} {activity}.",
         "{Name} and {his} {pal} {activity} together.",
         "First, {he} {activity} with {his} {pal}.")
    maybe(r, "It was a lot of fun.", "{Name} laughed and laughed.")
    line(r, "Then they ate {a treat} under a [big|shady] tree.",
         "Later, they sat down and ate {a treat}.",
         "After that, {his} {pal} gave {him} {a treat}.")
    line(r, "When the sun went down, it was time to go home.",
         "Soon it was time to go home.",
         "At the end of the day, they went home.")
    line(r, "\"I love the {place}!\" {name} said.",
         "\"Can we come back soon?\" {name} asked.",
         "\"Thank you for taking me,\" {name} said to {his} {pal}.")
    line(r, "That night, {name} fell asleep with a happy smile.",
         "{Name} had a very happy day.",
         "The little {noun} would always remember the trip.",
         "It was the best day ever.")


def helping(r):
    line(r, "One day, {name} was walking in the {place}.",
         "One {weather} day, {name} went for a walk in the {place}.",
         "One morning, {name} went to the {place} to play.")
    line(r, "{He} heard someone [crying|calling for help|calling out].",
         "Then {he} heard a small voice.",
         "Suddenly, {he} heard a sad cry.")
    line(r, "It was a little {buddy} {trouble}.",
         "{He} saw {a buddy} {trouble}.",
         "A little {buddy} was {trouble}.")
    line(r, "\"Please help me!\" said the {buddy}.",
         "\"Help! Help!\" cried the {buddy}.",
         "\"Can you help me?\" the {buddy} asked.")
    line(r, "{Name} wanted to help.",
         "{Name} knew {he} had to help.",
         "\"Do not worry, I will help you,\" {name} said.",
         "{Name} was a little scared, but {he} wanted to help.")
    line(r, "{Name} {fix}.",
         "With a lot of care, {he} {fix}.",
         "{He} thought hard, and then {he} {fix}.")
    line(r, "The {buddy} was safe!",
         "\"Thank you, {name}!\" said the {buddy}.",
         "The {buddy} [jumped|danced] with joy.")
    maybe(r, "{Name} told {his} {pal} all about it.",
          "The {buddy} gave {name} a big hug.")
    line(r, "{Name} felt happy that {he} could help.",
         "Helping others made {name} feel good.",
         "{Name} [smiled|sang] all the way home.",
         "The little {noun} was glad to be a good friend.")


PLOTS = (lost_and_found, new_friend, sharing, being_brave, a_trip, helping)


def story(r):
    """The whole world. r is a Writer (to generate) or a Replayer (to parse)."""
    introduce(r)
    r.choose("plot", PLOTS)(r)
    maybe(r, "The end.", "And that is the end.")


# ----------------------------------------------------------------------------------------------
# Generating.

def sample_story(rng):
    """One story and its exact log p (nats)."""
    w = Writer(rng)
    story(w)
    return "".join(w.parts), w.logp


def is_valid_split(text):
    # a stable hash of the text decides the split, so train and validation are disjoint by
    # construction
    return zlib.crc32(text.encode()) % 100 == 0


def train_stories(seed=0):
    """Infinite iterator of training stories (never one from the validation split)."""
    rng = random.Random(seed)
    while True:
        text, _ = sample_story(rng)
        if not is_valid_split(text):
            yield text


@lru_cache(maxsize=4)
def _valid_stories(n):
    rng, out = random.Random(10_000_019), []
    while len(out) < n:
        text, _ = sample_story(rng)
        if is_valid_split(text):
            out.append(text)
    return tuple(out)


def valid_stories(n=500):
    """The first n validation stories, always the same ones."""
    return list(_valid_stories(n))


# ----------------------------------------------------------------------------------------------
# Parsing and checking.

def normalize(text):
    return " ".join(text.split())


def parse(text, story_fn=story, relaxed=False):
    """Depth-first search over choice sequences of story_fn that print exactly text.

    Returns (derivations, furthest): each derivation is a dict(choices, logp, problems, events);
    furthest is (position, start of its sentence, problems, replayer) of the replay that matched the
    most characters (position == len(text): the text is a prefix of a story, or a whole one).
    """
    found, furthest, stack = [], (0, 0, [], None), [[]]
    while stack:
        r = Replayer(text, stack.pop(), relaxed)
        try:
            story_fn(r)
            if r.pos == len(text):
                found.append(dict(choices=r.taken, logp=r.logp, problems=r.problems,
                                  events=r.events))
            else:
                r.line_start = r.pos  # the story ended but the text goes on
        except Prune:
            pass
        if (furthest[3] is None or r.pos > furthest[0]
                or (r.pos == furthest[0] and len(r.problems) < len(furthest[2]))):
            furthest = (r.pos, r.line_start, r.problems, r)
        for i, n in reversed(r.fresh):  # queue the untried options, keeping depth-first order
            base = r.path[:i]
            stack.extend(base + [k] for k in range(n - 1, 0, -1))
    return found, furthest


def derivations(text, story_fn=story):
    """All strict derivations of text: a list of (choices, log p).

    choices is a list of (label, option)."""
    found, _ = parse(normalize(text), story_fn)
    return [(d["choices"], d["logp"]) for d in found]


def log_prob(text):
    """Exact log p (nats) of a valid story; None if text is not exactly one story."""
    found = derivations(text)
    return found[0][1] if len(found) == 1 else None


def sentence_ends(s):
    """Where the sentences of s end: after each . ! ? that is outside quotes and ends a word.

    >>> sentence_ends('Tom ran. "Hi. Yes!" he said. Fine')
    [8, 28]
    """
    quoted, out = False, []
    for i, c in enumerate(s):
        if c == '"':
            quoted = not quoted
        elif c in ".!?" and not quoted and (i + 1 == len(s) or s[i + 1] == " "):
            out.append(i + 1)
    return out


_SPEECH = re.compile(r"\b(said|asked|cried|whispered|told|shouted|replied)\b")


def split_sentences(text):
    """The sentences of a normalised text; an unfinished tail counts as one.

    " ".join(split_sentences(text)) == text. A sentence ends where sentence_ends says, and also
    after a quote that ends in . ! ? unless the words after it, up to the next end, say who spoke
    (and do not open a new quote): '"Where is my ball?" Lily asked.' is one sentence,
    '"What is your name?" The cat smiled.' two. (check() numbers sentences by sentence_ends.)

    >>> split_sentences('Tom ran. "Hi. Yes!" he said. Fine')
    ['Tom ran.', '"Hi. Yes!" he said.', 'Fine']
    >>> split_sentences('"Look!" Tom said. "Wow!" "Hi!" said Sue. He ran.')
    ['"Look!" Tom said.', '"Wow!"', '"Hi!" said Sue.', 'He ran.']
    """
    ends = sentence_ends(text)
    quoted, extra = False, []
    for i, c in enumerate(text):
        if c != '"':
            continue
        quoted = not quoted
        if not quoted and text[i - 1] in ".!?" and text[i + 1:i + 2] == " ":
            upto = next((e for e in ends if e > i), len(text))
            if text[i + 2:i + 3] == '"' or not _SPEECH.search(text, i + 1, upto):
                extra.append(i + 1)
    out, start = [], 0
    for end in sorted(ends + extra):
        out.append(text[start:end])
        start = end + 1
    if start < len(text):
        out.append(text[start:])
    return out


def sentence_at(text, start):
    """(number, text) of the sentence starting at character start (sentences: sentence_ends)."""
    start = start + (text[start:start + 1] == " ")
    number = 1 + len(sentence_ends(text[:start]))
    rest = sentence_ends(text[start:])
    return number, text[start:start + rest[0]] if rest else text[start:]


def surface_problems(text):
    """Cheap checks that name a typical slip directly.

    They add to, not replace, the parse's verdict."""
    problems = []
    if not re.search(r"[.!?]\"?$", text):
        problems.append("the text does not end with a full sentence (missing final period?)")
    for m in re.finditer(r"\b([Aa]) ([aeiouAEIOU]\w*)", text):
        problems.append(f"'a' before a vowel: '{m.group(0)}'")
    for m in re.finditer(r"\b([Aa]n) ([^aeiouAEIOU\W]\w*)", text):
        problems.append(f"'an' before a consonant: '{m.group(0)}'")
    return problems


def check(text, story_fn=story):
    """(valid, problems): valid iff the text has exactly one strict derivation."""
    text = normalize(text)
    if not text:
        return False, ["empty text"]
    found, furthest = parse(text, story_fn)
    if len(found) == 1:
        return True, []
    if len(found) > 1:
        return False, [f"ambiguous: {len(found)} derivations"]
    problems = surface_problems(text) if story_fn is story else []  # English-only checks
    relaxed, furthest = parse(text, story_fn, relaxed=True)
    if relaxed:
        best = min(relaxed, key=lambda d: len(d["problems"]))
        return False, problems + best["problems"]
    if furthest[0] == len(text):  # all fits (up to the relaxed problems) but the story goes on
        number, _ = sentence_at(text, len(text))
        unfinished = f"the story is unfinished: it stops after sentence {number - 1}"
        return False, problems + furthest[2] + [unfinished]
    number, sentence = sentence_at(text, furthest[1])
    return False, problems + [f"sentence {number} does not fit any template: {sentence!r}"]


# ----------------------------------------------------------------------------------------------
# Grading: the checker's verdict in numbers, so that samples that are almost valid show progress.

# Problem kinds, in the order grade() lists them. What each one counts:
#   repeat        a sentence said again right after itself (counted on the text: each extra copy)
#   a_an          'a' before a vowel or 'an' before a consonant (counted on the text: each slip)
#   name          the hero's name changed                      ("hero's name: 'Lily', later 'Mia'")
#   pronoun       a he/she/his/her/him/himself that does not fit the hero
#   hero          the hero's species or boy/girl word changed   ("Lily is a girl, later 'boy'")
#   object        the lost toy, its colour or size, or the snack changed; found a different toy
#   place         the place changed, or what the hero saw or did there belongs to another place
#   character     the companion (mom, dad...), the other animal or its name changed
#   out_of_place  a sentence of this story's plot (or of the beginning or the end) in the wrong
#                 place: a sentence skipped, two swapped, or one said again later
#   plot_mix      a sentence of another plot
#   no_template   a sentence that fits no template at all
#   unfinished    the text stops before the story ends (or in the middle of a sentence); empty text
#   other         anything else (the help does not fit the trouble, the hobby changed, ambiguous)
PROBLEM_KINDS = ("repeat", "a_an", "name", "pronoun", "hero", "object", "place", "character",
                 "out_of_place", "plot_mix", "no_template", "unfinished", "other")

# How check()'s problem strings start (see the labels and *_problem functions above): first match
_KIND_OF_PROBLEM = tuple((re.compile(pattern), kind) for pattern, kind in (
    (r"hero's name:", "name"),
    (r"pronoun for ", "pronoun"),
    (r"object found |the lost toy:|colour of the |size of the |the snack:", "object"),
    (r"hero's (kind|gender):|.* is an? [\w ]+, later '", "hero"),
    (r"place:|at the \w+ the hero ", "place"),
    (r"companion:|the other animal:|the new friend's name:", "character"),
    (r"'an?' before a ", "a_an"),
    (r"the text does not end with a full sentence|the story is unfinished|empty text",
     "unfinished"),
    (r"sentence \d+ does not fit any template", "no_template"),
))


def problem_kind(problem):
    """The kind (one of PROBLEM_KINDS) of one of check()'s problem strings.

    >>> problem_kind("hero's name: 'Lily', later 'Mia'")
    'name'
    >>> problem_kind("Lily is a girl, later 'boy'"), problem_kind("pronoun for Lily (a girl): 'He'")
    ('hero', 'pronoun')
    >>> problem_kind("colour of the ball: 'red', later 'blue'"), problem_kind("ambiguous: 2 ...")
    ('object', 'other')
    """
    for pattern, kind in _KIND_OF_PROBLEM:
        if pattern.match(problem):
            return kind
    return "other"


def fix_articles(sentence):
    """(sentence with 'a'/'an' put right, number of fixes): the a_an slips of surface_problems.

    >>> fix_articles("A owl ate an cake and a apple.")
    ('An owl ate a cake and an apple.', 3)
    """
    sentence, n = re.subn(r"\b([Aa]) (?=[aeiouAEIOU])", r"\1n ", sentence)
    sentence, m = re.subn(r"\b([Aa])n (?=[^aeiouAEIOU\W])", r"\1 ", sentence)
    return sentence, n + m


class _TemplateCollector:
    """A recorder that walks one plot (with the beginning and the end) taking every optional line
    and writes down every template it passes, all wordings of each line (via begin_sentence)."""

    def __init__(self, plot):
        self.plot, self.memo, self.templates = plot, {}, []

    def choose(self, label, options, weights=None):
        if label == "plot":
            return self.plot
        if label == "wording":
            self.templates.extend(options)
        return options[0]

    def latent(self, key, label, options, alternatives=None):
        return self.memo.setdefault(key, options[0])

    def say(self, text):
        pass

    def begin_sentence(self, template=None):
        self.templates.append(template)
        return False


@lru_cache(maxsize=None)
def _sentence_templates():
    """{plot: its templates cut into single sentences} (each with the beginning and the end)."""
    out = {}
    for plot in PLOTS:
        c = _TemplateCollector(plot)
        story(c)
        out[plot] = tuple(dict.fromkeys(s for t in dict.fromkeys(c.templates)
                                        for s in split_sentences(t)))
    return out


@lru_cache(maxsize=None)
def _literals(template):
    return tuple(p.strip() for p in compile_template(template) if p.__class__ is str and p.strip())


@lru_cache(maxsize=4096)
def plots_fitting(sentence):
    """The plots with a template sentence that says sentence, latent facts aside (a frozenset).

    A template that says two sentences counts as two; the beginning and the end of the story
    belong to every plot.

    >>> sorted(p.__name__ for p in plots_fitting("Soon it was time to go home."))
    ['a_trip', 'new_friend']
    >>> len(plots_fitting("Tom was a little cat who lived in a big house.")), plots_fitting("Hi.")
    (6, frozenset())
    """
    def fits(template):
        if not all(piece in sentence for piece in _literals(template)):
            return False  # a quick filter: the literal words must all be there
        return bool(parse(sentence, lambda r: line(r, template))[0])
    return frozenset(plot for plot, templates in _sentence_templates().items()
                     if any(fits(t) for t in templates))


def grade(text):
    """The checker's verdict in numbers: dict(valid, sentences, fitting, problems).

    sentences  the number of sentences in the normalised text (split_sentences: a sentence ends at
               . ! ? outside quotes, or after a quote that no 'said' follows; an unfinished tail
               counts as one).
    fitting    how many of them the parse accepts in their place, counted from the start:
               - a sentence that repeats the one before it (back to back) is a "repeat" and does
                 not fit; the copies are dropped and the rest is parsed without them (so one
                 repeat costs one sentence, not the rest of the story). 'a'/'an' slips are put
                 right before parsing; their sentences are "a_an" and do not fit.
               - if the (relaxed) parse accepts the whole text, every sentence fits except those
                 with a problem attached (a changed name, a wrong pronoun, ...: the relaxed
                 parse's deviations, each placed in the sentence of its offending word).
               - if the text is a story's beginning but stops early, the same, and the story is
                 "unfinished" (a last sentence cut off in the middle does not fit).
               - otherwise the parse breaks off at the first sentence that does not fit any
                 template in its place (the parser's furthest match); the sentences before it fit
                 unless they have a problem attached, and it and every sentence after it do not
                 (the parser cannot tell where the story would pick up again). The breaking
                 sentence is "out_of_place" if it fits a template of the story's own plot (or of
                 the beginning or the end; or of any plot, if the story broke off before its plot
                 showed), "plot_mix" if it fits one of another plot only, else "no_template".
    problems   {kind: count} for the kinds in PROBLEM_KINDS (only those that occur, in that order).
               Each occurrence counts: two wrong pronouns are 2. Repeats and a_an slips are
               counted on the whole text, the parse's problems only before the breaking sentence.
    A valid story is dict(valid=True, sentences=n, fitting=n, problems={}).

    >>> text = valid_stories(1)[0]
    >>> g = grade(text)
    >>> g["valid"], g["fitting"] == g["sentences"] == len(split_sentences(text)), g["problems"]
    (True, True, {})
    >>> s = split_sentences(text)
    >>> grade(" ".join(s[:2] + s[1:]))["problems"]  # the second sentence twice
    {'repeat': 1}
    >>> grade(" ".join(s[:3] + ["The moon ate a sock."] + s[4:]))
    {'valid': False, 'sentences': 13, 'fitting': 3, 'problems': {'no_template': 1}}
    >>> grade(" ".join(s[:3]))
    {'valid': False, 'sentences': 3, 'fitting': 3, 'problems': {'unfinished': 1}}
    """
    text = normalize(text)
    sentences = split_sentences(text)
    out = dict(valid=False, sentences=len(sentences), fitting=0, problems={})
    if not text:
        out["problems"] = {"unfinished": 1}
        return out
    found, _ = parse(text)
    if found:
        out.update(valid=len(found) == 1, fitting=len(sentences))
        out["problems"] = {} if len(found) == 1 else {"other": 1}  # ambiguous
        return out
    counts = dict.fromkeys(PROBLEM_KINDS, 0)
    # kept: the sentences parsed (repeats dropped, articles fixed); faulty: numbers of those with
    # a problem attached
    kept, faulty = [], set()
    for i, s in enumerate(sentences):
        if i and s == sentences[i - 1]:
            counts["repeat"] += 1
            continue
        s, slips = fix_articles(s)
        if slips:
            counts["a_an"] += slips
            faulty.add(len(kept))
        kept.append(s)
    body = " ".join(kept)
    starts, ends = [], []
    for s in kept:
        starts.append(ends[-1] + 1 if ends else 0)
        ends.append(starts[-1] + len(s))
    complete = bool(re.search(r"[.!?]\"?$", body))  # the last sentence is a whole one
    found = parse(body)[0] if body != text else []
    if found:
        upto, events = len(kept), []
    else:
        found, furthest = parse(body, relaxed=True)
        if found:
            upto, events = len(kept), min(found, key=lambda d: len(d["events"]))["events"]
        else:
            upto = next((j for j, end in enumerate(ends) if end > furthest[0]), len(kept))
            if upto < len(kept) - 1 and furthest[0] >= starts[upto]:
                # a template that says two sentences may break in the second: did this one fit?
                prefix = parse(body[:ends[upto]], relaxed=True)[1]
                if prefix[0] == ends[upto]:
                    furthest, upto = prefix, upto + 1
            if upto >= len(kept) - (not complete):
                counts["unfinished"] = 1
            else:
                r = furthest[3]
                plot = None  # the story's plot, if one of its sentences fits before the break
                if r.plot_at is not None and any(r.plot_at < st for st in starts[:upto]):
                    plot = next(option for label, option in r.taken if label == "plot")
                plots = plots_fitting(kept[upto])
                kind = ("no_template" if not plots else
                        "out_of_place" if plot is None or plot in plots else "plot_mix")
                counts[kind] += 1
            events = furthest[3].events if furthest[3] is not None else []
    for problem, pos in events:
        j = bisect.bisect_right(starts, pos) - 1
        if j < upto:
            counts[problem_kind(problem)] += 1
            faulty.add(j)
    if not complete:
        counts["unfinished"] = 1
        faulty.add(len(kept) - 1)
    out["fitting"] = sum(1 for j in range(min(upto, len(kept))) if j not in faulty)
    out["problems"] = {kind: n for kind, n in counts.items() if n}
    return out


def grade_all(texts):
    """grade() summed over texts: dict(n, valid, sentences, fitting, fitting_share,
    problems_per_story, by_kind).

    fitting_share = fitting / sentences over all texts (0.0 for no sentences) is the one number
    to print next to validity; by_kind adds up the problems of every text.

    >>> s = split_sentences(valid_stories(1)[0])
    >>> grade_all([" ".join(s), " ".join(s[:2] + s[1:]), " ".join(s[:3])])
    ... # doctest: +NORMALIZE_WHITESPACE
    {'n': 3, 'valid': 1, 'sentences': 30, 'fitting': 29, 'fitting_share': 0.9666666666666667,
     'problems_per_story': 0.6666666666666666, 'by_kind': {'repeat': 1, 'unfinished': 1}}
    """
    grades = [grade(t) for t in texts]
    sentences = sum(g["sentences"] for g in grades)
    fitting = sum(g["fitting"] for g in grades)
    by_kind = {kind: sum(g["problems"].get(kind, 0) for g in grades) for kind in PROBLEM_KINDS}
    by_kind = {kind: n for kind, n in by_kind.items() if n}
    return dict(n=len(grades), valid=sum(g["valid"] for g in grades), sentences=sentences,
                fitting=fitting, fitting_share=fitting / sentences if sentences else 0.0,
                problems_per_story=sum(by_kind.values()) / len(grades) if grades else 0.0,
                by_kind=by_kind)


def plot_counts(texts):
    """How many of the valid stories among texts tell each plot (read off the derivation), in
    PLOTS order. The world draws its plot uniformly: each is 1/6 of its stories. Validity cannot
    see a sampler that writes the same plot again and again; this can.

    >>> stories = valid_stories(12)
    >>> counts = plot_counts(stories + ["Hi."])
    >>> list(counts) == [p.__name__ for p in PLOTS], sum(counts.values())
    (True, 12)
    """
    counts = {p.__name__: 0 for p in PLOTS}
    for text in texts:
        found = derivations(text)
        if found:
            counts[dict(found[0][0])["plot"].__name__] += 1
    return counts


# ----------------------------------------------------------------------------------------------
# Statistics.


def report(texts, as_json=False):
    """sample.py's verdicts: each text with whether it is a valid story and, if not, why; then the
    validity rate and the graded measure (grade_all). as_json: one JSON object per text, and no
    summary."""
    n_valid = 0
    for text in texts:
        valid, problems = check(text)
        n_valid += valid
        if as_json:
            print(json.dumps(dict(text=text, valid=valid, problems=problems, grade=grade(text))))
        else:
            print(f"{text}\n  -> {'valid' if valid else 'INVALID: ' + '; '.join(problems)}\n")
    if not as_json and texts:
        g = grade_all(texts)
        kinds = ", ".join(f"{k} {v}" for k, v in g["by_kind"].items()) or "none"
        plots = ", ".join(f"{k} {v}" for k, v in plot_counts(texts).items())
        print(f"valid stories: {n_valid}/{len(texts)} ({100 * n_valid / len(texts):.0f}%)\n"
              f"sentences that fit their place: {g['fitting']}/{g['sentences']} "
              f"({100 * g['fitting_share']:.0f}%); problems: {kinds}\n"
              f"plots of the valid stories (1/6 each in the data): {plots}")


def true_entropy(texts, n_tokens, dataset="storyworld"):
    """The exact entropy of these stories in nats per token, -sum log p(text) / n_tokens; None for
    texts that are not the story world's (another dataset, or no texts)."""
    if dataset != "storyworld" or not texts:
        return None
    return -sum(map(log_prob, texts)) / n_tokens

def entropy(n=10000, seed=1234, tokenize=None):
    """Monte Carlo entropy: H = E[-log p(story)], with its standard error, plus words per story.

    tokenize (text -> list of token ids; None: no token figures) adds tokens per story (with the
    EOS the model also predicts) and nats per token."""
    rng = random.Random(seed)
    nats, words, tokens = [], [], []
    for _ in range(n):
        text, logp = sample_story(rng)
        nats.append(-logp)
        words.append(len(text.split()))
        if tokenize is not None:
            tokens.append(len(tokenize(text)) + 1)  # +1: the EOS token the model also predicts
    out = dict(n=n, nats_per_story=statistics.fmean(nats),
               nats_per_story_se=statistics.stdev(nats) / math.sqrt(n),
               words_per_story=statistics.fmean(words), words_min=min(words), words_max=max(words),
               nats_per_word=sum(nats) / sum(words))
    if tokens:
        out.update(tokens_per_story=statistics.fmean(tokens),
                   nats_per_token=sum(nats) / sum(tokens),
                   nats_per_token_se=out["nats_per_story_se"] / statistics.fmean(tokens))
    return out


def vocabulary(texts):
    return {w.strip('.,!?"').lower() for t in texts for w in t.split()} - {""}


# The shipped model's folder: its tokenizer is the one the per-token figures are for by default.
DEFAULT_TOKENIZER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "checkpoint")


def load_tokenize(folder):
    """text -> token ids (no special tokens) with the tokenizer.json in folder (a model's folder).

    Raises FileNotFoundError if there is none. Only the tokenizers library: this file imports
    nothing of the project."""
    path = os.path.join(folder, "tokenizer.json")
    if not os.path.isfile(path):
        raise FileNotFoundError(path)
    import tokenizers
    tok = tokenizers.Tokenizer.from_file(path)
    return lambda s: tok.encode(s, add_special_tokens=False).ids


def print_stats(n, tokenize=None):
    """Print the world's statistics over n stories; tokenize (text -> token ids, e.g. from
    load_tokenize) adds tokens per story and nats per token."""
    import time
    t0 = time.time()
    s = entropy(n, tokenize=tokenize)
    dt = time.time() - t0
    rng = random.Random(1234)
    texts = [sample_story(rng)[0] for _ in range(n)]
    print(f"stories sampled        {n} ({dt:.1f} s)")
    print(f"nats per story         {s['nats_per_story']:.2f} +- {s['nats_per_story_se']:.2f}")
    print(f"words per story        {s['words_per_story']:.1f} "
          f"(min {s['words_min']}, max {s['words_max']})")
    print(f"nats per word          {s['nats_per_word']:.3f}")
    if "nats_per_token" in s:
        print(f"tokens per story       {s['tokens_per_story']:.1f} (incl. EOS)")
        print(f"nats per token         {s['nats_per_token']:.4f} +- {s['nats_per_token_se']:.4f}")
    else:
        print("nats per token         (needs a tokenizer: --tokenizer DIR)")
    print(f"vocabulary             {len(vocabulary(texts))} distinct words in these {n} stories")
    # Entropy never exceeds log(number of outcomes), so N >= exp(H): a lower bound on the
    # number of distinct stories.
    lo = s["nats_per_story"] - 3 * s["nats_per_story_se"]
    print(f"distinct stories       >= exp(H) = {math.exp(s['nats_per_story']):.3g} "
          f"(>= {math.exp(lo):.3g} with H at -3 s.e.); "
          f"{len(set(texts))} of these {n} samples are distinct")
    m = min(n, 200)
    t0 = time.time()
    ok = sum(check(t)[0] for t in texts[:m])
    print(f"check() throughput     {m / (time.time() - t0):.0f} stories/s ({ok}/{m} valid)")


def main(argv=None):
    p = argparse.ArgumentParser(
        description="The story world: sample, check, and measure its entropy.")
    p.add_argument("--stats", action="store_true",
                   help="print entropy per story/token and vocabulary size")
    p.add_argument("--n", type=int, default=10000,
                   help="stories for --stats (more = smaller standard error)")
    p.add_argument("--tokenizer", default=DEFAULT_TOKENIZER, metavar="DIR",
                   help="a model folder with tokenizer.json, for the per-token figures of --stats "
                        "(default: the shipped model, extra/checkpoint)")
    p.add_argument("--sample", type=int, default=0, help="print this many stories with their log p")
    p.add_argument("--seed", type=int, default=0, help="seed for --sample")
    p.add_argument("--check", default=None, help="a text to check against the story world")
    args = p.parse_args(argv)
    if args.stats:
        try:
            tokenize = load_tokenize(args.tokenizer)
        except FileNotFoundError as e:
            sys.exit(f"error: --stats needs a tokenizer, and {e} is not there: pass "
                     "--tokenizer DIR, the folder of a model (with its tokenizer.json)")
        except ImportError as e:
            sys.exit(f"error: --stats needs the tokenizers library ({e}): pip install tokenizers")
        print_stats(args.n, tokenize)
    rng = random.Random(args.seed)
    for _ in range(args.sample):
        text, logp = sample_story(rng)
        print(f"[log p = {logp:.2f} nats]\n{text}\n")
    if args.check is not None:
        ok, problems = check(args.check)
        print("valid" if ok else "invalid")
        for problem in problems:
            print(" -", problem)
        if ok:
            print(f"log p = {log_prob(args.check):.4f} nats")
    if not (args.stats or args.sample or args.check is not None):
        p.print_help()


if __name__ == "__main__":
    main()
