"""Reliability: every bad input of the catalogue (extra/bad_inputs.py) ends in one clear line; a
save killed at any moment leaves a complete checkpoint; Ctrl-C saves a resumable one and --resume
ends where a straight run ends; two processes train like one; the chat REPL survives what people
type."""
import contextlib, glob, json, os, runpy, shutil, signal, subprocess, sys, time

import pytest
import torch
from safetensors.torch import load_file
from transformers import ModernBertConfig, ModernBertForMaskedLM

from conftest import ROOT
from extra import bad_inputs, benchmark_ddp, checks, loading


@pytest.fixture(scope="module")
def fixtures(tmp_path_factory):
    return bad_inputs.fixtures(str(tmp_path_factory.mktemp("bad")))


@pytest.mark.parametrize("case", bad_inputs.CASES, ids=[c[0] for c in bad_inputs.CASES])
def test_bad_input_gets_one_clear_line(case, fixtures, monkeypatch):
    """In-process (fast); `python extra/bad_inputs.py` runs the same cases as new processes, timed,
    for the table."""
    script, *args = bad_inputs.argv(case, fixtures)
    monkeypatch.chdir(ROOT)
    monkeypatch.setattr(sys, "argv", [script, *args])
    with pytest.raises(SystemExit) as e:
        runpy.run_path(os.path.join(ROOT, script), run_name="__main__")
    assert (isinstance(e.value.code, str) and e.value.code.startswith("error: ")
            and case[2] in e.value.code)


def test_hub_dataset_without_the_column_or_any_example():
    stream = [{"story": "Tom had a ball."}]
    with pytest.raises(SystemExit, match="has no \"text\" column \\(it has 'story'\\)"):
        list(checks.column(stream, "text", "someone/stories"))
    with pytest.raises(SystemExit, match="has no examples"):
        list(checks.column([], "text", "someone/stories"))
    assert (list(checks.column([{"text": "a"}, {"text": "b"}], "text", "x"))
            == [{"text": "a"}, {"text": "b"}])


def tiny_model(tok, seed):
    torch.manual_seed(seed)
    return ModernBertForMaskedLM(ModernBertConfig(vocab_size=len(tok), hidden_size=16,
                                                  num_hidden_layers=1, num_attention_heads=2,
                                                  intermediate_size=32, max_position_embeddings=32,
                                                  pad_token_id=tok.pad_token_id,
                                                  eos_token_id=tok.eos_token_id,
                                                  bos_token_id=tok.eos_token_id,
                                                  cls_token_id=tok.eos_token_id,
                                                  sep_token_id=tok.eos_token_id))


class Killed(Exception):
    pass


def test_a_save_killed_at_any_moment_leaves_the_old_or_the_new_checkpoint(tmp_path, monkeypatch,
                                                                          capsys):
    """Every file operation of loading.save is made, in turn, the moment the process dies (an
    exception there, and nothing after it runs); what is left on disk must load as the old
    checkpoint or the new one, whole."""
    tok = loading.build_tokenizer(["Tom had a red ball.", "Sue had a blue kite."])
    old, new, out = tiny_model(tok, 0), tiny_model(tok, 1), str(tmp_path / "out")
    weight = lambda m: m.state_dict()["model.embeddings.tok_embeddings.weight"]
    real = dict(replace=os.replace, rmtree=shutil.rmtree, dump=json.dump, save=torch.save)
    calls, outcomes = [], set()
    for k in range(1, 30):
        loading.save(out, old, tok, {"version": "old"})
        n = [0]

        def dies_at_k(name):
            def op(*a, **kw):
                n[0] += 1
                calls.append(name)
                if n[0] == k:
                    raise Killed
                return real[name](*a, **kw)
            return op
        monkeypatch.setattr(os, "replace", dies_at_k("replace"))
        monkeypatch.setattr(shutil, "rmtree", dies_at_k("rmtree"))
        monkeypatch.setattr(json, "dump", dies_at_k("dump"))
        # training_state.pt (and nothing else: weights are safetensors)
        monkeypatch.setattr(torch, "save", dies_at_k("save"))
        try:
            loading.save(out, new, tok, {"version": "new"}, training_state={"step": 3})
            finished = True
        except Killed:
            finished = False
        monkeypatch.undo()
        # finishes a swap cut between its two renames, like any later load
        model, _, metrics = loading.load(out)
        version = metrics["version"]
        assert torch.equal(weight(model), weight(new if version == "new" else old))
        assert os.path.exists(os.path.join(out, "training_state.pt")) == (version == "new")
        outcomes.add((finished, version))
        if finished:
            break
    assert (False, "old") in outcomes and (False, "new") in outcomes and (True, "new") in outcomes
    assert {"replace", "rmtree", "dump", "save"} <= set(calls)


def launch(args, cwd, processes=1):
    # several processes: real DDP on the CPU, as ENVIRONMENT.md measured. faulthandler on, so that
    # finish() can ask every process of a hung run where it is
    cmd, env = benchmark_ddp.command(processes, args)
    return subprocess.Popen(cmd, cwd=cwd, env=dict(env, PYTHONFAULTHANDLER="1"),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def descendants(pid, parent=None):
    """pid's children, grandchildren...: `accelerate launch` starts each rank in a session of its
    own, so a process group does not reach them."""
    if parent is None:
        parent = {}
        for stat in glob.glob("/proc/[0-9]*/stat"):
            with contextlib.suppress(OSError):  # it ended meanwhile
                fields = open(stat).read().rsplit(")", 1)[1].split()  # after "pid (name)"
                parent[int(stat.split("/")[2])] = int(fields[1])
    kids = [q for q, pp in parent.items() if pp == pid]
    return kids + [q for k in kids for q in descendants(k, parent)]


def finish(p, timeout=300):
    """(stdout, stderr) of a launched run; if it hangs, the test fails with the Python stack of each
    of its processes (SIGABRT makes faulthandler print them), not with a bare timeout."""
    try:
        return p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        for pid in descendants(p.pid)[::-1] + [p.pid]:  # the ranks first, then the launcher
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGABRT)
            time.sleep(1)  # one at a time: they all print to the same pipe
        out, err = p.communicate(timeout=60)
        pytest.fail(f"hung for {timeout} s. stdout:\n{out[-2000:]}\nstderr:\n{err[-12000:]}")


def weights(folder):
    return load_file(os.path.join(folder, "model.safetensors"))


@pytest.mark.slow
def test_ctrl_c_saves_a_resumable_checkpoint_and_resume_ends_where_a_straight_run_ends(
        tmp_path):
    args = ["--max_steps", "40", "--eval_every", "10", "--n_val", "8", "--batch_size", "8",
            "--warmup", "5"]
    straight = launch(args + ["--out_dir", str(tmp_path / "straight")], ROOT)
    _, err = finish(straight)
    assert straight.returncode == 0, err

    run = launch(args + ["--out_dir", str(tmp_path / "run")], ROOT)
    for line in run.stdout:  # wait until training is under way, then press Ctrl-C
        if line.startswith("step 10:"):
            run.send_signal(signal.SIGINT)
            break
    out, err = finish(run, 120)
    assert run.returncode == 0 and "Traceback" not in err, err
    assert "SIGINT: finishing this step" in err and "saved a resumable checkpoint of step" in out
    metrics = json.load(open(tmp_path / "run" / "metrics.json"))
    assert 10 <= metrics["steps"] < 40 and (tmp_path / "run" / "training_state.pt").exists()
    assert not glob.glob(str(tmp_path / "run.*"))  # no .tmp / .old left behind

    resumed = launch(["--out_dir", str(tmp_path / "run"), "--resume"], ROOT)
    out, err = finish(resumed)
    assert resumed.returncode == 0, err
    metrics = json.load(open(tmp_path / "run" / "metrics.json"))
    assert metrics["steps"] == 40 and not (tmp_path / "run" / "training_state.pt").exists()
    a, b = weights(tmp_path / "straight"), weights(tmp_path / "run")
    assert a.keys() == b.keys() and max((a[k] - b[k]).abs().max().item() for k in a) < 1e-6
    straight_log = json.load(open(tmp_path / "straight" / "metrics.json"))["log"]
    assert [e["val_nelbo_per_token"] for e in metrics["log"]] == pytest.approx(
        [e["val_nelbo_per_token"] for e in straight_log])


@pytest.mark.slow
def test_two_processes_train_like_one_and_only_rank_0_writes(tmp_path):
    """The same global batch (1 x 8 rows or 2 x 4): the same data, so the validation curve is the
    same within noise. Every row is the same story, so per-rank losses can only differ if each rank
    draws its own t and masks."""
    (tmp_path / "same.txt").write_text(
        "\n\n".join(["Tom had a red ball. He played with it in the park."] * 40))
    common = ["--dataset", str(tmp_path / "same.txt"), "--seq_len", "32", "--max_steps", "30",
              "--eval_every", "10", "--warmup", "5"]
    for name, processes, batch in (("one", 1, "8"), ("two", 2, "4")):
        (tmp_path / name).mkdir()  # the working directory: nothing but out/ may appear in it
        p = launch(common + ["--batch_size", batch, "--out_dir", "out"], tmp_path / name, processes)
        out, err = finish(p)
        assert p.returncode == 0, err
        # one writer, one folder
        assert out.count("saved ") == 1 and os.listdir(tmp_path / name) == ["out"]
    assert (sorted(os.listdir(tmp_path / "one" / "out"))
            == sorted(os.listdir(tmp_path / "two" / "out")))
    one = json.load(open(tmp_path / "one" / "out" / "metrics.json"))["log"]
    two = json.load(open(tmp_path / "two" / "out" / "metrics.json"))["log"]
    assert (len(two[0]["train_loss_by_rank"]) == 2
            and two[0]["train_loss_by_rank"][0] != two[0]["train_loss_by_rank"][1])
    for a, b in zip(one, two):
        assert a["step"] == b["step"] and b["val_nelbo_per_token"] == pytest.approx(
            a["val_nelbo_per_token"], rel=0.1)


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="the OS cannot pin a process")
def test_a_process_pinned_to_one_core_trains_with_one_thread():
    """`taskset -c 0 python train.py`: the process may run on one core, so it gets one thread (not
    one per core of the machine, which would share that core); unpinned, every core it may use."""
    class CPU:  # what use_the_cores reads of accelerate's Accelerator
        device, num_processes = torch.device("cpu"), 1
    allowed, threads = os.sched_getaffinity(0), torch.get_num_threads()
    try:
        os.sched_setaffinity(0, {min(allowed)})
        loading.use_the_cores(CPU)
        assert loading.cores() == 1 and torch.get_num_threads() == 1
        os.sched_setaffinity(0, allowed)
        loading.use_the_cores(CPU)
        assert loading.cores() == len(allowed) == torch.get_num_threads()
    finally:
        os.sched_setaffinity(0, allowed)
        torch.set_num_threads(threads)


def chat(**kw):
    return subprocess.Popen([sys.executable, "chat.py", "--ckpt", "extra/checkpoint_sft",
                             "--gen_length", "16"], cwd=ROOT,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=dict(os.environ, HF_HUB_OFFLINE="1"),
                            preexec_fn=bad_inputs.default_ctrl_c, **kw)


def test_chat_survives_long_and_non_ascii_input():
    """A message longer than the context gets a message and the chat goes on; non-ASCII text gets an
    answer."""
    p = chat()
    out, err = p.communicate("Tom had a ball. " * 60
                             + "\nÉcris une histoire sur un renard 🦊 nommé Max.\n"
                             "What is the hero's name?\n", timeout=120)
    assert p.returncode == 0 and "Traceback" not in err, err
    assert "no room for an answer" in out and out.count("bot>") == 3


def test_ctrl_c_while_sampling_ends_quietly():
    p = subprocess.Popen([sys.executable, "-u", "sample.py", "--n", "64"], cwd=ROOT,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         env=dict(os.environ, HF_HUB_OFFLINE="1"),
                         preexec_fn=bad_inputs.default_ctrl_c)
    assert p.stdout.readline().startswith("model:")
    time.sleep(5)  # loading (~1 s, more on a cold machine), then 64 stories (~45 s): the signal
    # comes while it denoises
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=60)
    assert p.returncode == 130 and err.strip() == "interrupted", err


def test_ctrl_c_at_the_chat_prompt_leaves_quietly():
    p = chat()
    assert p.stdout.readline().startswith("chatting with")  # flushed when input() shows its prompt
    time.sleep(0.5)
    p.send_signal(signal.SIGINT)
    assert p.wait(timeout=60) == 0  # stdin is still open: only the Ctrl-C can end it
    out, err = p.communicate()
    assert "Traceback" not in err, err


def test_the_ctrl_c_guard_runs_off_the_main_thread_and_catches_sigterm():
    """Python catches signals only on the main thread: elsewhere (a training run started in a
    thread) the guard installs nothing and the loop runs as usual, instead of failing with 'signal
    only works in main thread'."""
    import threading
    one_process = type("Acc", (), {"num_processes": 1})()
    seen = []
    t = threading.Thread(
        target=lambda: seen.append(loading.interruptible().__enter__()(one_process)))
    t.start()
    t.join()
    assert seen == [False]
    # on the main thread: the handler is installed, then put back
    with loading.interruptible() as stop:
        assert signal.getsignal(signal.SIGINT) == stop.handle and not stop(one_process)
        # a cluster taking the machine back: the same flag as Ctrl-C
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(0.1)
        assert stop(one_process)
    assert signal.getsignal(signal.SIGINT) != stop.handle
