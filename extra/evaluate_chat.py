"""Score a chat (SFT) model on held-out story-world chat tasks (extra/storychat.py), answered the
way chat.py answers them: instruction satisfaction for "write a story", exact match for questions.

    python extra/evaluate_chat.py --ckpt out_sft --n 90              # ~30 s on 2 CPU cores
    python extra/evaluate_chat.py --ckpt out_sft --threshold 0.9   # any chat.py flag after it
"""
import argparse, json, os, sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import chat
from edits_and_sft import render
from extra import checks, storychat
from extra.loading import SHIPPED_SFT, bos_id


def evaluate(ckpt, n, chat_args=()):
    """Answer n held-out tasks with chat.py and score them: instruction satisfaction (write), exact
    match (ask, follow-up), how many answers ended with EOS before the canvas was full, and answer
    lengths per kind."""
    args = chat.get_args(["--ckpt", ckpt, *chat_args])
    checks.missing_path(ckpt, "model folder")
    checks.storyworld_model(ckpt, "the story-world chat tasks")  # before: is it a chat model
    model, tok, args.context = chat.load_chat(ckpt)
    score = {k: [] for k in ("write", "ask", "follow-up")}
    ended, words, skipped, n_done = 0, {k: [] for k in score}, 0, 0
    for t in storychat.valid_tasks(n):
        prompt, reference = render(tok, t["messages"], [bos_id(tok)])
        if len(prompt) + len(reference) > args.context:  # the task itself does not fit the context
            skipped += 1
            continue
        reply, done = chat.answer(model, tok, t["messages"][:-1], args)
        n_done += 1
        ended += done
        words[t["kind"]].append(len(reply.split()))
        if t["kind"] == "write":
            score["write"].append(storychat.satisfies(reply, t["constraints"])[0])
        else:
            score[t["kind"]].append(reply.strip() == t["answer"])
    out = {k: f"{sum(v)}/{len(v)}" for k, v in score.items()}
    out.update(ended_with_eos=f"{ended}/{n_done}", skipped_too_long=skipped,
               median_words={k: sorted(v)[len(v) // 2] for k, v in words.items() if v})
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--ckpt", default=SHIPPED_SFT,
                   help="an SFT checkpoint (default: the shipped one)")
    p.add_argument("--n", type=int, default=90, help="held-out tasks (a third of each kind)")
    a, rest = p.parse_known_args(argv)
    print(json.dumps(evaluate(a.ckpt, a.n, rest)))


if __name__ == "__main__":
    main()
