"""The story world: a tiny probabilistic program that writes children's stories with an exact log p.

The world
---------
A hero (a girl, a boy, or an animal such as a cat, a fox or an owl, with a name and the right he/she)
lives through one of six little plots: losing a toy and finding it, making a new friend, sharing a
snack, being brave at night, a trip, and helping an animal in trouble. Each plot is a list of
sentences; most sentences have three or four wordings, a few are optional, and some are dialogue.
The stories are 60-130 words long and use a few hundred distinct words, so a ~4M-parameter model
can learn to write *valid* ones from a few million tokens.

The engine
----------
The whole world is one function, `story(r)`. It asks a recorder `r` for every random decision:
  r.choose(label, options)   a fresh choice (the wording of a sentence, whether to add an optional
                             sentence, which plot, ...);
  r.latent(key, label, options)  a fact that must stay the same all story long (the hero's name,
                             the lost toy and its colour, ...). I pick it lazily at its first use and
                             remember it, so every choice is visible in the text right after it.
  r.say(text)                emit text.
Two recorders run the very same function, so the generator and the checker cannot drift apart:
  * `Writer` draws each choice from a random.Random and adds log p(option) -> (text, log p);
  * `Replayer` parses: a depth-first search over choice sequences. Each replay follows a prefix of
    choice indices, takes option 0 at every new choice (remembering the others to try later), and
    gives up (raises `Prune`) as soon as the emitted text stops being a prefix of the target.
    Every complete replay that reproduces the target is a derivation. A valid story has exactly one,
    and its log p is exact. If there is none, a relaxed replay lets latent facts deviate at a later
    use, and each deviation becomes a readable problem ("hero's name: 'Lily', later 'Tom'").

Run `python extra/storyworld.py --stats`, `--sample 3` or `--check "Once upon a time, ..."`.
"""
import argparse
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

KINDS = ("child", "cat", "dog", "bunny", "fox", "owl", "bear", "duck", "mouse", "pig", "lion", "hen")
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
HOBBIES = ("play outside", "sing songs", "draw pictures", "read books", "dance", "run and jump", "play ball", "swim")
GAMES = ("tag", "hide and seek", "catch")
# trouble -> how the hero fixes it (the fix must follow the trouble: a checked constraint)
TROUBLES = {"stuck in a deep hole": "pulled it out with a long stick",
            "stuck up a tall tree": "helped it climb down",
            "lost and far from home": "showed it the way home",
            "caught in a thorny bush": "gently set it free"}


# ----------------------------------------------------------------------------------------------
# The recorders. The story only ever calls choose / latent / say, so it never knows which one runs.

def option_logp(n, weights, k):
    """log p of option k out of n (uniform unless weights are given). Shared so both sides agree to the bit."""
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

    def begin_sentence(self):
        return bool(self.parts)  # True -> a space goes before the new sentence


class Prune(Exception):
    """Raised by a replay whose text stopped matching the target."""


class Replayer:
    """Parses: replays the story along a prefix of choice indices, pruning on the first mismatch.

    In relaxed mode a latent fact that is already known may deviate at a later use; the deviation is
    recorded as a problem, formatted with the text said right after it (the offending word).
    """

    def __init__(self, target, prefix, relaxed=False):
        self.target, self.prefix, self.relaxed = target, prefix, relaxed
        self.path = list(prefix)  # choice indices taken so far
        self.fresh = []  # (choice number, number of options) for choices beyond the prefix
        self.i, self.pos, self.line_start, self.logp = 0, 0, 0, 0.0
        self.memo, self.taken, self.problems, self.pending = {}, [], [], None

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
            raise Prune
        if self.pending:
            label, old = self.pending
            said = text.strip()
            msg = label(self.memo, old, said) if callable(label) else f"{label}: {old!r}, later {said!r}"
            if msg not in self.problems:
                self.problems.append(msg)
            self.pending = None
            if len(self.problems) > MAX_PROBLEMS:
                raise Prune
        self.pos += len(text)

    def begin_sentence(self):
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
    """'{He} saw {a buddy} [today|again].' -> pieces: literal strings, slots (fill, cap, article) and
    inline word choices (a tuple of words): ((he, True, False), ' saw ', (buddy, False, True), ' ', ('today', 'again'), '.')"""
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
    sep = " " if r.begin_sentence() else ""
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
    return f"pronoun for {memo.get('name', 'the hero')} ({an(hero_noun(memo))} {hero_noun(memo)}): {said!r}"


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
        return f"object found (the {said}) is not the one lost (the {memo.get('colour', '')} {old})".replace("  ", " ")
    return r.latent("toy", problem, TOYS)


def colour(r):
    return r.latent("colour", lambda m, old, said: f"colour of the {m.get('toy', 'toy')}: {old!r}, later {said!r}", COLOURS)


def size(r):
    return r.latent("size", lambda m, old, said: f"size of the {m.get('toy', 'toy')}: {old!r}, later {said!r}", SIZES)


def a_toy(r):
    """'a big red ball': said in three pieces so each choice is checked as soon as it is made."""
    r.say("a " + size(r) + " ")
    r.say(colour(r) + " ")
    return toy(r)


def place(r):
    return r.latent("place", "place", tuple(PLACES))


def sight(r):
    return PLACES[r.latent("place", lambda m, old, said: f"at the {old} the hero saw {said!r}", tuple(PLACES))][0]


def activity(r):
    return PLACES[r.latent("place", lambda m, old, said: f"at the {old} the hero {said!r}", tuple(PLACES))][1]


def trouble(r):
    return r.latent("trouble", "the trouble", tuple(TROUBLES))


def fix(r):
    def problem(memo, old, said):
        return f"the help ({said!r}) does not fit the trouble ({old!r})"
    return TROUBLES[r.latent("trouble", problem, tuple(TROUBLES))]


SLOTS = {
    "name": name, "noun": noun,
    "he": pronoun("he"), "his": pronoun("his"), "him": pronoun("him"), "himself": pronoun("himself"),
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
    # a stable hash of the text decides the split, so train and validation are disjoint by construction
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

    Returns (derivations, furthest): each derivation is a dict(choices, logp, problems); furthest is
    (position, start of its sentence, problems) of the replay that matched the most characters.
    """
    found, furthest, stack = [], (0, 0, []), [[]]
    while stack:
        r = Replayer(text, stack.pop(), relaxed)
        try:
            story_fn(r)
            if r.pos == len(text):
                found.append(dict(choices=r.taken, logp=r.logp, problems=r.problems))
            else:
                r.line_start = r.pos  # the story ended but the text goes on
        except Prune:
            pass
        if r.pos > furthest[0] or (r.pos == furthest[0] and len(r.problems) < len(furthest[2])):
            furthest = (r.pos, r.line_start, r.problems)
        for i, n in reversed(r.fresh):  # queue the untried options, keeping depth-first order
            base = r.path[:i]
            stack.extend(base + [k] for k in range(n - 1, 0, -1))
    return found, furthest


def derivations(text, story_fn=story):
    """All strict derivations of text: a list of (choices, log p), choices a list of (label, option)."""
    found, _ = parse(normalize(text), story_fn)
    return [(d["choices"], d["logp"]) for d in found]


def log_prob(text):
    """Exact log p (nats) of a valid story; None if text is not exactly one story."""
    found = derivations(text)
    return found[0][1] if len(found) == 1 else None


def sentence_at(text, start):
    """(number, text) of the sentence starting at character start; sentences end at . ! ? outside quotes."""
    def ends(s):
        quoted, out = False, []
        for i, c in enumerate(s):
            if c == '"':
                quoted = not quoted
            elif c in ".!?" and not quoted and (i + 1 == len(s) or s[i + 1] == " "):
                out.append(i + 1)
        return out
    start = start + (text[start:start + 1] == " ")
    number = 1 + len(ends(text[:start]))
    rest = ends(text[start:])
    return number, text[start:start + rest[0]] if rest else text[start:]


def surface_problems(text):
    """Cheap checks that name a typical slip directly (they add to, not replace, the parse's verdict)."""
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
    if furthest[0] == len(text):  # every sentence fits (up to the relaxed problems) but the story goes on
        number, _ = sentence_at(text, len(text))
        return False, problems + furthest[2] + [f"the story is unfinished: it stops after sentence {number - 1}"]
    number, sentence = sentence_at(text, furthest[1])
    return False, problems + [f"sentence {number} does not fit any template: {sentence!r}"]


# ----------------------------------------------------------------------------------------------
# Statistics.

def entropy(n=10000, seed=1234, tokenize=None):
    """Monte Carlo entropy: H = E[-log p(story)], with its standard error, plus words (and tokens)."""
    rng = random.Random(seed)
    nats, words, tokens = [], [], []
    for _ in range(n):
        text, logp = sample_story(rng)
        nats.append(-logp)
        words.append(len(text.split()))
        if tokenize is not None:
            tokens.append(len(tokenize(text)) + 1)  # +1: the EOS token the model also predicts
    out = dict(n=n, nats_per_story=statistics.fmean(nats), nats_per_story_se=statistics.stdev(nats) / math.sqrt(n),
               words_per_story=statistics.fmean(words), words_min=min(words), words_max=max(words),
               nats_per_word=sum(nats) / sum(words))
    if tokens:
        out.update(tokens_per_story=statistics.fmean(tokens), nats_per_token=sum(nats) / sum(tokens),
                   nats_per_token_se=out["nats_per_story_se"] / statistics.fmean(tokens))
    return out


def vocabulary(texts):
    return {w.strip('.,!?"').lower() for t in texts for w in t.split()} - {""}


def _default_tokenize():
    """The project's tokenizer (train.build_tokenizer), trained on story-world text, if train.py imports."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    if root not in sys.path:
        sys.path.insert(0, root)
    try:
        from train import build_tokenizer
    except Exception as e:  # train.py missing or broken: fall back to words
        print(f"(tokenizer stats need train.build_tokenizer, which did not import: {e!r})")
        return None
    gen = train_stories(seed=99)
    tok = build_tokenizer([next(gen) for _ in range(2000)])
    return lambda s: tok.encode(s, add_special_tokens=False)


def print_stats(n):
    import time
    tokenize = _default_tokenize()
    t0 = time.time()
    s = entropy(n, tokenize=tokenize)
    dt = time.time() - t0
    rng = random.Random(1234)
    texts = [sample_story(rng)[0] for _ in range(n)]
    print(f"stories sampled        {n} ({dt:.1f} s)")
    print(f"nats per story         {s['nats_per_story']:.2f} +- {s['nats_per_story_se']:.2f}")
    print(f"words per story        {s['words_per_story']:.1f} (min {s['words_min']}, max {s['words_max']})")
    print(f"nats per word          {s['nats_per_word']:.3f}")
    if "nats_per_token" in s:
        print(f"tokens per story       {s['tokens_per_story']:.1f} (incl. EOS)")
        print(f"nats per token         {s['nats_per_token']:.4f} +- {s['nats_per_token_se']:.4f}")
    else:
        print("nats per token         (needs train.build_tokenizer; see above)")
    print(f"vocabulary             {len(vocabulary(texts))} distinct words in these {n} stories")
    # Entropy never exceeds log(number of outcomes), so N >= exp(H): a lower bound on the distinct stories.
    lo = s["nats_per_story"] - 3 * s["nats_per_story_se"]
    print(f"distinct stories       >= exp(H) = {math.exp(s['nats_per_story']):.3g} (>= {math.exp(lo):.3g} with H at -3 s.e.); "
          f"{len(set(texts))} of these {n} samples are distinct")
    t0 = time.time()
    ok = sum(check(t)[0] for t in texts[:200])
    print(f"check() throughput     {200 / (time.time() - t0):.0f} stories/s ({ok}/200 valid)")


def main(argv=None):
    p = argparse.ArgumentParser(description="The story world: sample, check, and measure its entropy.")
    p.add_argument("--stats", action="store_true", help="print entropy per story/token and vocabulary size")
    p.add_argument("--n", type=int, default=10000, help="stories for --stats (more = smaller standard error)")
    p.add_argument("--sample", type=int, default=0, help="print this many stories with their log p")
    p.add_argument("--seed", type=int, default=0, help="seed for --sample")
    p.add_argument("--check", default=None, help="a text to check against the story world")
    args = p.parse_args(argv)
    if args.stats:
        print_stats(args.n)
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
