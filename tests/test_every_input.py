"""Bad input, generated rather than listed (extra/bad_inputs.py is the hand-written catalogue):
every numeric flag of train.py, sample.py and chat.py, read from their argparse parsers (a flag
added tomorrow is covered too), at 0, -1 and 10**12; every kind of checkpoint against every script;
degenerate data. Each case runs the script's main() in this process and must end in a normal run or
in one `error: ...` line (a SystemExit with that text): never a traceback, never a hang (a
watchdog presses Ctrl-C after LIMIT seconds), and a run that goes ahead uses the value it was given
(0 is not "unset": unset is None).

    python -m pytest tests/test_every_input.py -p no:nbmake -o addopts="" -q   # ~N minutes
"""
import contextlib, json, os, signal, sys, threading, time

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from conftest import ROOT, reset_accelerate  # noqa: E402 (puts the project on the path)
import chat, sample, train  # noqa: E402
from extra import bad_inputs, flags  # noqa: E402
from extra.loading import SHIPPED, SHIPPED_AR, SHIPPED_EDITS, SHIPPED_SFT  # noqa: E402

LIMIT = float(os.environ.get("EVERY_INPUT_LIMIT", 60))  # seconds: the most one case may take
LOG = os.environ.get("EVERY_INPUT_LOG")
VALUES = {int: (0, -1, 10**12), float: (0.0, -1.0, 1e12)}
PARSERS = {"train.py": lambda: flags.train_parser(train.__doc__),
           "sample.py": lambda: flags.sample_parser(sample.__doc__), "chat.py": chat.parser}
MAINS = {"train.py": train.main, "sample.py": sample.main, "chat.py": chat.main}
# flags that only mean something next to another one get it
NEEDS = {"edit_start": ["--edits"], "edit_rate": ["--edits"], "edit_threshold": ["--edits", "1"]}
# a huge value of these is a long run by design: it must start, and stop cleanly at Ctrl-C
LONG = {("train.py", "max_steps")}


def numeric_flags():
    """(script, --flag, dest, type) of every int or float flag of the three scripts."""
    return [(script, max(a.option_strings, key=len), a.dest, a.type)
            for script, make in PARSERS.items() for a in make()._actions
            if a.type in (int, float)]


def flag_cases():
    return [(script, flag, dest, value) for script, flag, dest, kind in numeric_flags()
            for value in VALUES[kind]]


def small(script, d, out):
    """The arguments that make each script's run small: a tiny model, a few steps or tokens."""
    if script == "train.py":
        return ["--model", f"{d}/mlm", "--dataset", f"{d}/stories.jsonl", "--seq_len", "32",
                "--batch_size", "2", "--max_steps", "2", "--eval_every", "1", "--n_val", "2",
                "--out_dir", out]
    if script == "sample.py":
        return ["--ckpt", f"{d}/mlm", "--n", "2", "--gen_length", "8"]
    return ["--ckpt", f"{d}/sft", "-p", "Hi.", "--gen_length", "8", "--block_length", "4",
            "--steps", "4", "--no_show"]


@contextlib.contextmanager
def watchdog(seconds):
    """Presses Ctrl-C (SIGINT to this process) after `seconds`, and again 5 s later (train.py
    finishes its step at the first); yields a list that is not empty if it did."""
    fired = []

    def press():
        fired.append(1)
        os.kill(os.getpid(), signal.SIGINT)
    timers = [threading.Timer(seconds, press), threading.Timer(seconds + 5, press)]
    for timer in timers:
        timer.start()
    try:
        yield fired
    finally:
        for timer in timers:
            timer.cancel()


def outcome(script, argv, limit=LIMIT):
    """('ran' | 'refused' | 'stopped', the error line, seconds) of script's main(argv) in this
    process; any other exception propagates (and fails the test)."""
    reset_accelerate()  # each run sets accelerate up anew, as a new process
    t0, code = time.time(), None
    with watchdog(limit) as fired:
        try:
            MAINS[script](argv)
        except SystemExit as e:
            code = e.code
    seconds = time.time() - t0
    if LOG:  # EVERY_INPUT_LOG=FILE: one JSON line per case, for the catalogue
        with open(LOG, "a") as f:
            f.write(json.dumps(dict(script=script, argv=argv, code=str(code), fired=bool(fired),
                                    seconds=round(seconds, 1))) + "\n")
    if fired:
        return "stopped", str(code or ""), seconds
    if code in (None, 0):
        return "ran", "", seconds
    assert isinstance(code, str) and code.startswith("error: ") and "\n" not in code, (
        f"not one error line: {code!r}")
    return "refused", code, seconds


class Spy:
    """Wraps module.name and records the arguments of each call."""
    def __init__(self, monkeypatch, module, name):
        self.calls, real = [], getattr(module, name)

        def spy(*a, **k):
            self.calls.append((a, k))
            return real(*a, **k)
        monkeypatch.setattr(module, name, spy)


def used_value(script, dest, out, spies):
    """The value of flag `dest` the run went ahead with, where it can be seen: train.py saves its
    flags in metrics.json; sample.py passes them to generate; chat.py to answer."""
    if script == "train.py":
        return json.load(open(os.path.join(out, "metrics.json")))["args"][dest]
    a, k = spies[script].calls[-1]
    if script == "chat.py":
        return getattr(a[3], dest)
    if dest == "n":
        return len(a[1])
    return k.get(dest, "(not passed)") if dest != "seed" else "(not seen)"


@pytest.fixture(scope="module")
def d(tmp_path_factory):
    """bad_inputs.fixtures (tiny models and files), plus a tiny chat model (two SFT steps)."""
    d = bad_inputs.fixtures(str(tmp_path_factory.mktemp("every")))
    chat_rows = [{"messages": [{"role": "user", "content": f"What does Tom have? {i}"},
                               {"role": "assistant", "content": "A red ball."}]}
                 for i in range(8)]
    with open(f"{d}/chat.jsonl", "w") as f:
        f.write("\n".join(json.dumps(r) for r in chat_rows))
    assert outcome("train.py", ["--sft", "--model", f"{d}/mlm", "--dataset", f"{d}/chat.jsonl",
                                "--seq_len", "48", "--batch_size", "2", "--max_steps", "2",
                                "--n_val", "2", "--out_dir", f"{d}/sft"])[0] == "ran"
    return d


@pytest.mark.parametrize("script,flag,dest,value", flag_cases(),
                         ids=[f"{s} {f} {v}" for s, f, _, v in flag_cases()])
def test_every_numeric_flag_at_0_negative_and_huge(script, flag, dest, value, d, tmp_path,
                                                   monkeypatch, capsys):
    out = str(tmp_path / "out")
    spies = {"sample.py": Spy(monkeypatch, sample, "generate"),
             "chat.py": Spy(monkeypatch, chat, "answer")}
    argv = small(script, d, out) + NEEDS.get(dest, []) + [flag, str(value)]
    long = (script, dest) in LONG and value == VALUES[type(value)][2]
    kind, message, seconds = outcome(script, argv, limit=15 if long else LIMIT)
    if long:  # started, and Ctrl-C saved a resumable checkpoint
        assert kind == "stopped" and os.path.exists(os.path.join(out, "training_state.pt"))
        return
    assert kind in ("ran", "refused"), f"{script} {flag} {value}: still running after {LIMIT} s"
    if kind == "ran":
        assert used_value(script, dest, out, spies) in (value, "(not seen)"), (
            f"{flag} {value} was quietly replaced")


def test_the_generated_cases_cover_every_numeric_flag():
    """Known answer: flags a reader finds in --help, so that a parser change cannot empty the
    test."""
    found = {(s, f) for s, f, _, _ in numeric_flags()}
    for expected in [("train.py", "--seq_len"), ("train.py", "--block_rows"),
                     ("train.py", "--edit_rate"), ("sample.py", "--threshold"),
                     ("sample.py", "--n"), ("chat.py", "--steps")]:
        assert expected in found
    assert len(flag_cases()) == 3 * len(found) >= 3 * 25


# every kind of checkpoint a learner has at hand, against every script. "ran", or a piece of the one
# line that says why not and what to use instead.
KINDS = {"story model": SHIPPED, "chat model": SHIPPED_SFT, "edit-trained model": SHIPPED_EDITS,
         "GPT baseline": SHIPPED_AR, "plain masked LM": "{d}/mlm", "empty folder": "{d}/empty_run",
         "not a model": "{d}/not_a_model"}
USES = {"train.py": ["--max_steps", "2", "--batch_size", "2", "--n_val", "2", "--seq_len", "64",
                     "--eval_every", "1", "--model"],
        "train.py --sft": ["--sft", "--max_steps", "2", "--batch_size", "2", "--n_val", "2",
                           "--eval_every", "1", "--model"],
        "sample.py": ["--n", "2", "--steps", "8", "--gen_length", "32", "--ckpt"],
        "chat.py": ["-p", "Write a story about a fox named Max.", "--gen_length", "16",
                    "--no_show", "--ckpt"]}
GPT = "not a masked language model"
INCOMPLETE = "not a complete model folder"
NOT_CHAT = "never fine-tuned for chat"
EXPECT = {
    "story model": dict(chat=NOT_CHAT),
    "chat model": {"sample": "a chat model"},
    "edit-trained model": dict(chat=NOT_CHAT),
    "GPT baseline": dict(train=GPT, sft=GPT, sample=GPT, chat=GPT),
    "plain masked LM": dict(chat=NOT_CHAT),
    "empty folder": dict(train=INCOMPLETE, sft=INCOMPLETE, sample=INCOMPLETE, chat=INCOMPLETE),
    "not a model": dict(train=INCOMPLETE, sft=INCOMPLETE, sample=INCOMPLETE, chat=INCOMPLETE)}


def use_key(use):
    return {"train.py": "train", "train.py --sft": "sft", "sample.py": "sample",
            "chat.py": "chat"}[use]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("use", USES)
def test_every_checkpoint_kind_against_every_script(kind, use, d, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(ROOT)
    script = use.split()[0]
    argv = USES[use] + [KINDS[kind].replace("{d}", d)]
    if script == "train.py":
        argv += ["--out_dir", str(tmp_path / "out")]
        if kind == "plain masked LM":  # its own little data: the tokenizer knows only those words
            argv += ["--dataset", f"{d}/chat.jsonl" if "--sft" in use else f"{d}/stories.jsonl",
                     "--seq_len", "48"]
    result, message, _ = outcome(script, argv)
    expected = EXPECT[kind].get(use_key(use), "ran")
    if expected == "ran":
        assert result == "ran", message
    else:
        assert result == "refused" and expected in message, message


# degenerate data: (name, file contents (bytes), extra flags, a piece of the message or "ran")
DATA = [("documents of one token", b'{"text": "a"}\n{"text": "b"}\n', [], "ran"),
        ("empty text fields", b'{"text": ""}\n{"text": " "}\n', [], "has no text in it"),
        ("text that is not a string", b'{"text": 5}\n', [], '"text" must be a string'),
        ("binary bytes (.txt)", bytes(range(256)) * 64, [], "not a text file"),
        ("binary bytes (.jsonl)", bytes(range(256)) * 64, [], "not a text file"),
        ("binary bytes (.bin)", bytes(range(256)) * 64, [], "neither a .txt nor a .jsonl"),
        ("a folder", "folder", [], "is a folder"),
        ("seq_len 2 (no room for BOS + a token + EOS)", b'{"text": "Tom had a ball."}\n',
         ["--seq_len", "2"], "--seq_len 2 is too short"),
        ("seq_len 2 on the story world", None, ["--seq_len", "2"], "--seq_len 2 is too short")]


@pytest.mark.parametrize("name,content,extra,expected", DATA, ids=[c[0] for c in DATA])
def test_degenerate_data(name, content, extra, expected, d, tmp_path, capsys):
    ext = name.split("(.")[-1].rstrip(")") if "(." in name else "jsonl"
    path = tmp_path / f"data.{ext}"
    if content == "folder":
        path.mkdir()
    elif content is not None:
        path.write_bytes(content)
    model = [] if content is None else ["--model", f"{d}/mlm", "--dataset", str(path)]
    argv = model + ["--max_steps", "2", "--batch_size", "2", "--n_val", "2", "--eval_every", "1",
                    "--out_dir", str(tmp_path / "out")] + (extra or ["--seq_len", "32"])
    result, message, _ = outcome("train.py", argv)
    if expected == "ran":
        assert result == "ran", message
    else:
        assert result == "refused" and expected in message, message
