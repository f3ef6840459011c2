"""Chat tasks on the story world: instructions and questions whose answers a program can check
exactly.

Every task is a conversation in the standard `messages` format, built from one story of the world
and the facts of its derivation (the hero's name and kind, the plot, the lost toy and its colour,
the place, ...):
  write:     "Write a story about a fox named Max. It should be about a trip."
             -> a story of the world that satisfies every constraint (1 to 3 of them). Checked
             by storyworld.check and the story's own facts.
  ask:       a story and a question about it ("What did Max lose?")
             -> one short answer with one exact form ("His kite."). Checked by exact match.
  follow-up: a write task, the story, then a question about that story
             -> the answer.
Splits: a task is in the validation split iff its story is (storyworld.is_valid_split), so they are
disjoint.

    python extra/storychat.py --sample 3                 # print some tasks
    python extra/evaluate_chat.py --ckpt out_sft --n 90  # answer held-out tasks with chat.py,
                                                         # score them
"""
import argparse, os, random, sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from extra import storyworld

PLOT_WORDS = {"lost_and_found": "losing a toy and finding it", "new_friend": "making a new friend",
              "sharing": "sharing a snack", "being_brave": "being brave at night",
              "a_trip": "a trip", "helping": "helping an animal in trouble"}


def facts(text):
    """The facts of a valid story's derivation, e.g.
    {'name': 'Max', 'kind': 'fox', 'plot': 'a_trip', ...}; None if the text is not a valid story."""
    found = storyworld.derivations(text)
    if len(found) != 1:
        return None
    out = {}
    for label, option in found[0][0]:
        if label == "plot":
            out["plot"] = option.__name__
        elif (label in ("kind", "name", "gender", "toy", "colour", "place", "buddy", "treat", "pal")
              and label not in out):
            out[label] = option
    if "name" in out:
        out["gender"] = storyworld.GENDER_OF[out["name"]]
    return out


def hero(f):
    """'a fox', or 'a girl' for a child."""
    noun = f["gender"] if f["kind"] == "child" else f["kind"]
    return f"{storyworld.an(noun)} {noun}"


def instruction(f, keys):
    """'Write a story about a fox named Max. It should be about a trip. It should happen at the
    beach.'"""
    about = hero(f) if "kind" in keys else "someone"
    text = "Write a story" + (f" about {about}" if "kind" in keys or "name" in keys else "")
    text += f" named {f['name']}." if "name" in keys else "."
    if "plot" in keys:
        text += f" It should be about {PLOT_WORDS[f['plot']]}."
    if "place" in keys:
        text += f" It should happen at the {f['place']}."
    if "toy" in keys:
        text += f" It should have a {f['toy']} in it."
    return text


def satisfies(text, constraints):
    """(ok, problems): text is a valid story and has every constrained fact."""
    valid, problems = storyworld.check(text)
    if not valid:
        return False, problems
    f = facts(text)
    wrong = [f"{k}: wanted {v!r}, got {f.get(k)!r}" for k, v in constraints.items()
             if f.get(k) != v]
    return not wrong, wrong


def questions(f):
    """(question, answer) pairs this story can answer, each answer in its one exact form."""
    name, his = f["name"], "Her" if f["gender"] == "girl" else "His"
    qs = [("What is the hero's name?", f"{name}.")]
    if f["kind"] == "child":
        qs.append((f"Is {name} a girl or a boy?", f"A {f['gender']}."))
    else:
        qs.append((f"What kind of animal is {name}?",
                   f"{storyworld.an(f['kind']).capitalize()} {f['kind']}."))
    if f["plot"] == "lost_and_found":
        qs += [(f"What did {name} lose?", f"{his} {f['toy']}."),
               (f"What colour was the {f['toy']}?", f"{f['colour'].capitalize()}.")]
    if "place" in f:
        qs.append((f"Where did {name} go?", f"To the {f['place']}."))
    if "buddy" in f:
        qs.append((f"Which animal did {name} meet?",
                   f"{storyworld.an(f['buddy']).capitalize()} {f['buddy']}."))
    if "treat" in f:
        qs.append(("What was the snack?",
                   f"{storyworld.an(f['treat']).capitalize()} {f['treat']}."))
    return qs


def task(rng, story, kind=None):
    """One task from one story: dict(messages=[...], kind=..., constraints=... or answer=...)."""
    f = facts(story)
    kind = kind or rng.choice(["write", "ask", "follow-up"])
    if kind in ("write", "follow-up"):
        keys = rng.sample([k for k in ("name", "kind", "plot", "place", "toy") if k in f],
                          rng.randint(1, 3))
        constraints = {k: f[k] for k in keys}
        if "kind" in keys and f["kind"] == "child":
            constraints["gender"] = f["gender"]  # "a girl" constrains the gender as well
        messages = [{"role": "user", "content": instruction(f, keys)},
                    {"role": "assistant", "content": story}]
        if kind == "write":
            return dict(kind=kind, messages=messages, constraints=constraints)
        q, a = rng.choice(questions(f))
        messages += [{"role": "user", "content": q}, {"role": "assistant", "content": a}]
        return dict(kind=kind, messages=messages, answer=a)
    q, a = rng.choice(questions(f))
    messages = [{"role": "user", "content": f"{story}\n\n{q}"}, {"role": "assistant", "content": a}]
    return dict(kind=kind, messages=messages, answer=a)


def train_tasks(seed=0):
    """Endless training tasks (their stories are never validation stories)."""
    rng, stories = random.Random(seed), storyworld.train_stories(seed)
    while True:
        yield task(rng, next(stories))


def valid_tasks(n=300):
    """n fixed validation tasks, the kinds in turn."""
    rng = random.Random(1)
    kinds = ["write", "ask", "follow-up"]
    return [task(rng, s, kinds[i % 3]) for i, s in enumerate(storyworld.valid_stories(n))]


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sample", type=int, default=3, help="print this many validation tasks")
    a = p.parse_args()
    for t in valid_tasks(a.sample):
        for m in t["messages"]:
            print(f"[{m['role']}] {m['content']}")
        print(f"  -> {t.get('constraints') or t.get('answer')}\n")
