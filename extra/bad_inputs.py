"""The catalogue of bad inputs: what a learner who passes the wrong path, the wrong model or flags
that cannot work sees, and how long it takes to see it. Each case runs the real script the way a
user would (a new process, the hub unreachable, HF_HUB_OFFLINE not set) on small models and files
built here; the table is the one in README.md.

    python extra/bad_inputs.py                 # ~3.5 minutes on 2 CPU cores: every case, its
                                               # message and its time
    python extra/bad_inputs.py --markdown      # the same as a Markdown table

tests/test_reliability.py runs the same cases in-process (faster) and asserts each message.
"""
import argparse, json, os, select, shutil, signal, subprocess, sys, tempfile, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
LONG = "Tom had a red ball and a blue kite. " * 40
# (case, command, a piece of the message it must print). {d}: the folder of fixtures() below.
CASES = [
    ("hub model id, offline", "train.py --model distilbert/distilbert-base-cased",
     "could not load"),
    ("hub dataset id, offline", "train.py --dataset roneneldan/TinyStories", "could not load"),
    ("hub checkpoint id, offline (sampling)", "sample.py --ckpt answerdotai/ModernBERT-base",
     "could not load"),
    ("dataset file that does not exist", "train.py --dataset {d}/nope.jsonl",
     "there is no dataset file"),
    ("empty .jsonl dataset", "train.py --dataset {d}/empty.jsonl", "is empty"),
    ("empty .txt dataset", "train.py --dataset {d}/empty.txt", "has no text in it"),
    ("dataset without a text column", "train.py --dataset {d}/notext.jsonl",
     'line 1 has no "text" field'),
    (".jsonl with a malformed line", "train.py --dataset {d}/broken.jsonl",
     "line 3: not valid JSON"),
    ("SFT data without a messages column",
     "train.py --sft --model {d}/mlm --dataset {d}/stories.jsonl --seq_len 64",
     'line 1 has no "messages" field'),
    ("SFT conversation that does not end with the answer",
     "train.py --sft --model {d}/mlm --dataset {d}/noanswer.jsonl --seq_len 64",
     "line 2: the conversation ends with a user turn"),
    ("model folder that does not exist", "train.py --model ./no_such_model",
     "there is no model folder"),
    ("checkpoint folder that does not exist (sampling)", "sample.py --ckpt ./no_such_model",
     "there is no model folder"),
    ("checkpoint folder that does not exist (chat)", "chat.py --ckpt ./no_such_model -p hi",
     "there is no model folder"),
    ("a GPT-2 folder, not a masked LM", "train.py --model {d}/gpt2", "not a masked language model"),
    ("the GPT baseline given to sample.py", "sample.py --ckpt extra/checkpoint_ar",
     "not a masked language model"),
    ("tokenizer without a mask token", "train.py --model {d}/nomask", "has no mask token"),
    ("--seq_len above the position limit",
     "train.py --model {d}/mlm --dataset {d}/stories.jsonl --seq_len 1000", "longer than"),
    ("a batch that does not fit in memory",
     "train.py --model {d}/bigvocab --dataset {d}/stories.jsonl --seq_len 64 --batch_size 512",
     "out of memory"),
    ("--batch_size 0", "train.py --batch_size 0", "--batch_size must be at least 1"),
    ("--eval_every 0", "train.py --eval_every 0", "--eval_every must be at least 1"),
    ("--lr that is not a learning rate", "train.py --lr 3", "is not a learning rate"),
    ("fp16 on a machine without a GPU", "train.py --mixed_precision fp16", "needs a GPU"),
    ("--block_rows outside [0, 1]", "train.py --block_rows 1.5", "--block_rows is a share"),
    ("--block_length longer than a row", "train.py --block_length 500", "--block_length must be"),
    ("--steps 0", "sample.py --steps 0", "--steps must be at least 1"),
    ("gen_length not a multiple of block_length", "sample.py --gen_length 10 --block_length 4",
     "not a multiple"),
    ("steps not divisible by the blocks", "sample.py --steps 7", "cannot be split evenly"),
    ("--threshold outside (0, 1]", "sample.py --threshold 1.5", "--threshold is a probability"),
    ("--threshold outside (0, 1] (chat)", "chat.py --threshold 0 -p hi",
     "--threshold is a probability"),
    ("--joint without --threshold", "sample.py --joint", "--joint changes how --threshold"),
    ("--threshold with random remasking", "sample.py --remasking random --threshold 0.9",
     "random remasking (Alg. 4) commits at random"),
    ("--temperature < 0", "sample.py --temperature -1", "--temperature must be >= 0"),
    ("prompt + gen_length longer than the context", "sample.py --gen_length 300",
     "more than the model reads"),
    ("prompt longer than the context", ["sample.py", "--prompt", LONG], "no room to write"),
    ("prompt longer than the context (chat)", ["chat.py", "-p", LONG], "no room for an answer"),
    ("empty prompt where one is needed (chat -p)", ["chat.py", "-p", " "], "the prompt is empty"),
    ("checkpoint folder with no weights", "sample.py --ckpt {d}/noweights",
     "not a complete model folder"),
    ("a save that was cut off (.tmp)", "sample.py --ckpt {d}/cut.tmp", "a save that was cut off"),
    ("weights file cut short", "sample.py --ckpt {d}/damaged", "damaged or cut short"),
    ("story-world probe on another model", "extra/probe_agreement.py --ckpt {d}/mlm",
     "not a story-world model"),
    ("story-world evaluation on another model", "extra/evaluate.py --ckpt {d}/mlm --n 2",
     "not a story-world model"),
    ("story-world chat tasks on another model", "extra/evaluate_chat.py --ckpt {d}/mlm",
     "not a story-world model"),
    ("--resume with nothing to resume", "train.py --resume --out_dir {d}/empty_run",
     "nothing to resume"),
    # found by tests/test_every_input.py, which walks every numeric flag, every checkpoint kind
    # against every script, and degenerate data
    ("--batch_size 10**12", "train.py --batch_size 1000000000000", "more tokens in one batch"),
    ("--seq_len 10**12", "train.py --seq_len 1000000000000", "more tokens in one batch"),
    ("--grad_accum 10**12", "train.py --grad_accum 1000000000000", "rows per optimizer step"),
    ("--seq_len 2 (no room for BOS + a token + EOS)", "train.py --seq_len 2", "too short"),
    ("--warmup longer than the run", "train.py --max_steps 10 --warmup 50",
     "longer than the run"),
    ("--edit_rate without --edits", "train.py --edit_rate 0.5", "belongs to the edit curriculum"),
    ("--edit_start outside [0, 1]", "train.py --edits --edit_start 2", "fraction of the steps"),
    ("--block_length with --block_rows 0", "train.py --block_rows 0 --block_length 10",
     "is the block of --block_rows"),
    ("--attention with a letter other than L and G", "train.py --attention LGLX",
     "one letter a layer"),
    ("--attention for a pretrained --model", "train.py --attention GLGL --model {d}/empty_run",
     "keeps its own"),
    ("--resume with other flags", "train.py --resume --out_dir {d}/empty_run --lr 1e-3",
     "would be ignored"),
    ("a folder as the dataset", "train.py --dataset {d}/empty_run", "is a folder"),
    ("binary bytes as a .txt dataset", "train.py --dataset {d}/noise.txt", "not a text file"),
    ("a dataset file that is neither .txt nor .jsonl", "train.py --dataset {d}/noise.bin",
     "neither a .txt nor a .jsonl"),
    (".jsonl whose text is not a string", "train.py --dataset {d}/numbers.jsonl",
     '"text" must be a string'),
    (".jsonl whose texts are all empty", "train.py --dataset {d}/blank.jsonl", "has no text in it"),
    ("--n 10**12 (sampling)", "sample.py --n 1000000000000", "more tokens than any device"),
    ("--steps 10**12 (sampling)", "sample.py --steps 1000000000000", "more passes than tokens"),
    ("--block_length longer than gen_length", "sample.py --block_length 200",
     "longer than --gen_length"),
    ("--edit_threshold without --edits", "sample.py --edit_threshold 0.5", "add --edits"),
    ("--steps more than a block (chat)", "chat.py --steps 64 -p hi",
     "more passes than a block has tokens"),
    ("the chat model given to sample.py", "sample.py --ckpt extra/checkpoint_sft",
     "is a chat model"),
    ("the story model given to chat.py", "chat.py --ckpt extra/checkpoint -p hi",
     "never fine-tuned for chat"),
    ("the edit-trained model given to chat.py", "chat.py --ckpt extra/checkpoint_edits -p hi",
     "never fine-tuned for chat"),
    ("a plain masked LM given to chat.py", "chat.py --ckpt {d}/mlm -p hi",
     "never fine-tuned for chat"),
    ("the GPT baseline given to chat.py", "chat.py --ckpt extra/checkpoint_ar -p hi",
     "not a masked language model"),
    ("an empty folder as the checkpoint", "sample.py --ckpt {d}/empty_run",
     "not a complete model folder"),
    ("a folder that is not a model", "sample.py --ckpt {d}/not_a_model",
     "not a complete model folder"),
]


def argv(case, d):
    cmd = case[1] if isinstance(case[1], list) else case[1].split()
    return [a.replace("{d}", d) for a in cmd]


def fixtures(d):
    """Small models and files for the cases, in folder d (about 5 s, 20 MB)."""
    import torch
    from transformers import (DistilBertConfig, DistilBertForMaskedLM, GPT2Config, GPT2LMHeadModel,
                              ModernBertConfig, ModernBertForMaskedLM)
    from extra.loading import build_tokenizer
    texts = [f"Tom had a {c} {o}. He was happy." for c in ("red", "blue", "green")
             for o in ("ball", "kite", "hat")]
    torch.manual_seed(0)
    tok = build_tokenizer(texts)
    ids = dict(pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id,
               bos_token_id=tok.eos_token_id)
    small = dict(vocab_size=len(tok), hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                 intermediate_size=64)
    for name, model in (("mlm", ModernBertForMaskedLM(ModernBertConfig(
                            **small, max_position_embeddings=64, cls_token_id=tok.eos_token_id,
                            sep_token_id=tok.eos_token_id, **ids))),
                        ("gpt2", GPT2LMHeadModel(GPT2Config(
                            vocab_size=len(tok), bos_token_id=tok.eos_token_id,
                            eos_token_id=tok.eos_token_id, n_embd=32, n_layer=1, n_head=2,
                            n_positions=64))),
                        ("bigvocab", DistilBertForMaskedLM(DistilBertConfig(
                            vocab_size=500_000, dim=8, n_layers=1, n_heads=1, hidden_dim=16,
                            max_position_embeddings=64, **ids)))):
        model.save_pretrained(os.path.join(d, name))
        tok.save_pretrained(os.path.join(d, name))
    shutil.copytree(os.path.join(d, "mlm"), os.path.join(d, "nomask"))
    cfg = json.load(open(os.path.join(d, "nomask", "tokenizer_config.json")))
    cfg.pop("mask_token", None)
    json.dump(cfg, open(os.path.join(d, "nomask", "tokenizer_config.json"), "w"))
    for name in ("noweights", "cut.tmp", "damaged"):
        shutil.copytree(os.path.join(d, "mlm"), os.path.join(d, name))
    os.remove(os.path.join(d, "noweights", "model.safetensors"))
    weights = os.path.join(d, "damaged", "model.safetensors")
    data = open(weights, "rb").read()
    open(weights, "wb").write(data[:len(data) // 2])
    os.makedirs(os.path.join(d, "empty_run"))
    files = {"stories.jsonl": "\n".join(json.dumps({"text": t}) for t in texts),
             "empty.jsonl": "\n\n", "empty.txt": " \n",
             "notext.jsonl": json.dumps({"story": texts[0]}),
             "broken.jsonl": "\n".join([json.dumps({"text": texts[0]}),
                                        json.dumps({"text": texts[1]}), '{"text": "Tom had'])}
    chat = [{"role": "user", "content": "Hi."}, {"role": "assistant", "content": "Hello."}]
    files["noanswer.jsonl"] = (json.dumps({"messages": chat}) + "\n"
                               + json.dumps({"messages": chat[:1]}))
    files["numbers.jsonl"] = json.dumps({"text": 5})
    files["blank.jsonl"] = json.dumps({"text": ""}) + "\n" + json.dumps({"text": " "})
    for name, text in files.items():
        open(os.path.join(d, name), "w").write(text)
    for name in ("noise.txt", "noise.bin"):
        open(os.path.join(d, name), "wb").write(bytes(range(256)) * 64)
    os.makedirs(os.path.join(d, "not_a_model"))
    open(os.path.join(d, "not_a_model", "notes.txt"), "w").write("my stories\n")
    return d


def run(case, d):
    """(exit status, the last line the user sees, seconds) of one case, as a new process."""
    env = {k: v for k, v in os.environ.items() if k != "HF_HUB_OFFLINE"}
    t0 = time.time()
    p = subprocess.run([sys.executable, *argv(case, d)], cwd=ROOT, env=env, capture_output=True,
                       text=True, timeout=300)
    lines = [l for l in (p.stderr + p.stdout).splitlines() if l.strip()]
    message = next((l for l in lines if l.startswith("error:")), lines[-1] if lines else "")
    return p.returncode, message, time.time() - t0, "Traceback" in p.stderr


def wait_for(p, text, timeout=120):
    """Read p's stdout until `text` appears; what was read."""
    out, t0 = b"", time.time()
    while text.encode() not in out and time.time() - t0 < timeout:
        if select.select([p.stdout], [], [], 1)[0]:
            chunk = os.read(p.stdout.fileno(), 4096)
            if not chunk:
                break
            out += chunk
    return out.decode(errors="replace")


def default_ctrl_c():
    """For a child's preexec_fn: Ctrl-C handled as from a terminal.
    subtle: a job that a script starts in the background (`.ci/run &`, nohup) ignores SIGINT, its
    children inherit that, and Python then never raises KeyboardInterrupt: Ctrl-C cases would pass
    or fail without testing anything."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def interactive():
    """The cases that need a live process: chat input, Ctrl-D and Ctrl-C, Ctrl-C during training,
    offline mode set. Each: (case, what the user sees, exit status or '-', seconds from the key
    press to it)."""
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    chat = lambda: subprocess.Popen([sys.executable, "chat.py"], cwd=ROOT, env=env,
                                    stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, preexec_fn=default_ctrl_c)
    rows, p = [], chat()
    wait_for(p, "you> ")
    for case, line in (("chat: empty input", ""),
                       ("chat: very long input", "Tom had a ball. " * 60),
                       ("chat: non-ASCII input", "Écris une histoire sur un renard 🦊 nommé Max."),
                       ("chat: a question", "What is the hero's name?")):
        t0 = time.time()
        p.stdin.write((line + "\n").encode())
        p.stdin.flush()
        seen = wait_for(p, "you> ").replace("you> ", "").strip()
        rows.append((case, seen.splitlines()[-1][:150] if seen else "(the prompt again)", "-",
                     time.time() - t0))
    t0 = time.time()
    p.stdin.close()  # Ctrl-D
    rows.append(("chat: EOF (Ctrl-D) at the prompt", "(a new line; the chat ends)", p.wait(60),
                 time.time() - t0))
    p = chat()
    wait_for(p, "you> ")
    t0 = time.time()
    p.send_signal(signal.SIGINT)
    rows.append(("chat: Ctrl-C at the prompt", "(a new line; the chat ends)", p.wait(60),
                 time.time() - t0))
    p = subprocess.Popen([sys.executable, "-u", "sample.py", "--n", "64"], cwd=ROOT, env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, preexec_fn=default_ctrl_c)
    wait_for(p, "model:")
    time.sleep(2)
    t0 = time.time()
    p.send_signal(signal.SIGINT)
    said = p.stderr.read().decode().strip()
    rows.append(("sampling: Ctrl-C", said, p.wait(60), time.time() - t0))
    out = tempfile.mkdtemp()
    p = subprocess.Popen([sys.executable, "train.py", "--out_dir", out], cwd=ROOT, env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    wait_for(p, "step 1:", 300)
    t0 = time.time()
    p.send_signal(signal.SIGINT)
    said = wait_for(p, "--resume`", 120).strip().splitlines()[-1].replace(out, "OUT")
    rows.append(("training: Ctrl-C", said, p.wait(60), time.time() - t0))
    shutil.rmtree(out)
    t0 = time.time()
    r = subprocess.run([sys.executable, "train.py", "--model", "distilbert/distilbert-base-cased"],
                       cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    rows.append(("hub model id, offline, HF_HUB_OFFLINE=1 set", r.stderr.strip().splitlines()[0],
                 r.returncode, time.time() - t0))
    return rows


def main():
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--markdown", action="store_true")
    args = p.parse_args()
    d = fixtures(tempfile.mkdtemp())
    if args.markdown:
        print("| case | what the user sees (stderr) | exit | seconds |\n|---|---|---|---|")
    for case in CASES:
        rc, message, seconds, traceback = run(case, d)
        ok = rc != 0 and case[2] in message and not traceback
        message = message.replace(d, "DIR").replace("|", "\\|")
        print(f"| {case[0]} | `` {message} `` | {rc} | {seconds:.1f} |" if args.markdown else
              f"{'ok  ' if ok else 'FAIL'} {seconds:5.1f}s rc={rc} {case[0]}\n       {message}")
    shutil.rmtree(d)
    for case, message, rc, seconds in interactive():
        message = message.replace("|", "\\|")
        print(f"| {case} | `` {message} `` | {rc} | {seconds:.1f} |" if args.markdown else
              f"     {seconds:5.1f}s rc={rc} {case}\n       {message}")


if __name__ == "__main__":
    main()
