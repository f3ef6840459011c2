"""How the house is laid out: imports run one way, down a fixed stack of floors, and no line is
longer than 100 characters. `python tests/test_layout.py` prints the floors.

The floors of the core are declared here, bottom first; every other module (chat.py, the tools in
extra/) sits on the floor above the highest one it imports. A module may import only from floors
below its own, function-local imports included; a circle of imports fails whatever the floors."""
import ast, glob, json, os, sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FLOORS = [
    # nothing of the project
    ["extra/checks.py", "extra/storyworld.py", "extra/render.py", "extra/recipes.py"],
    ["extra/loading.py", "extra/storychat.py"],  # data, models, checkpoints; the chat tasks
    ["extra/flags.py", "edits_and_sft.py"],  # the flags; edits and SFT (tensors and SFT data)
    ["sample.py"],  # Alg. 4 and 5
    ["train.py"],  # Alg. 1, which samples from the model as it learns
]


def modules():
    """Every Python module of the project (not the tests), as paths relative to the root."""
    found = glob.glob(os.path.join(ROOT, "*.py")) + glob.glob(os.path.join(ROOT, "extra", "*.py"))
    return sorted(os.path.relpath(p, ROOT) for p in found if not p.endswith("__init__.py"))


def imports(path, known):
    """The project modules that `path` imports anywhere in it (inside functions too)."""
    tree = ast.parse(open(os.path.join(ROOT, path)).read())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names |= {f"{node.module}.{a.name}" for a in node.names}  # from extra import storyworld
    files = {name.replace(".", "/") + ".py" for name in names}
    return sorted(files & known - {path})


def graph():
    known = set(modules())
    return {m: imports(m, known) for m in known}


def circle(g):
    """An import (a, b) that closes a circle, or None."""
    state = {}

    def visit(m):
        state[m] = "open"
        for d in g[m]:
            if state.get(d) == "open":
                return m, d
            if d not in state and (found := visit(d)):
                return found
        state[m] = "done"
    for m in sorted(g):
        if m not in state and (found := visit(m)):
            return found


def floors(g):
    """{module: floor}: the declared ones, then each other module one above its highest import."""
    floor = {m: i for i, ms in enumerate(FLOORS) for m in ms}
    def of(m):
        if m not in floor:
            floor[m] = 1 + max((of(d) for d in g[m]), default=-1)
        return floor[m]
    for m in g:
        of(m)
    return floor


def test_imports_run_one_way_down_the_floors():
    g = graph()
    assert set(m for ms in FLOORS for m in ms) <= set(g), "a declared module is missing"
    found = circle(g)
    assert found is None, f"circle of imports: {found[0]} imports {found[1]}, which leads back"
    floor = floors(g)
    for m, deps in sorted(g.items()):
        for d in deps:
            assert floor[d] < floor[m], (f"{m} (floor {floor[m]}) imports {d} (floor {floor[d]}): "
                                         "a module may import only from the floors below it")
    for i in range(max(floor.values()) + 1):
        print(f"floor {i}: " + ", ".join(m for m in sorted(floor) if floor[m] == i))


def test_the_check_sees_an_upward_import_and_a_circle():
    """The two ways the layout can break, on a made-up graph."""
    g = {"a.py": ["b.py"], "b.py": ["a.py"]}
    assert circle(g) in (("a.py", "b.py"), ("b.py", "a.py"))
    assert circle({"a.py": ["b.py"], "b.py": []}) is None
    g = graph()
    g["extra/storyworld.py"] = g["extra/storyworld.py"] + ["train.py"]  # the bug of issue 12
    floor = floors(g)
    assert floor["train.py"] > floor["extra/storyworld.py"]
    assert circle(g) is not None  # train.py reaches storyworld.py, which now reaches train.py


def test_imports_inside_functions_count():
    src = "def f():\n    from train import forward_process\n"
    path = os.path.join(ROOT, "extra", "_layout_probe.py")
    try:
        open(path, "w").write(src)
        assert imports("extra/_layout_probe.py", set(modules())) == ["train.py"]
    finally:
        os.remove(path)


def long_lines():
    """(file, line number, length) of every line over 100 characters: the project's Python files
    (tests too) and the code cells of the notebooks."""
    out = []
    for path in modules() + sorted(glob.glob("tests/*.py", root_dir=ROOT)):
        for n, line in enumerate(open(os.path.join(ROOT, path)).read().splitlines(), 1):
            if len(line) > 100:
                out.append((path, n, len(line)))
    for path in sorted(glob.glob("notebooks/*.ipynb", root_dir=ROOT)):
        cells = json.load(open(os.path.join(ROOT, path)))["cells"]
        for i, cell in enumerate(cells):
            lines = "".join(cell["source"]).splitlines() if cell["cell_type"] == "code" else []
            out += [(f"{path} cell {i}", n, len(l)) for n, l in enumerate(lines, 1) if len(l) > 100]
    return out


def test_no_line_is_longer_than_100_characters():
    assert long_lines() == []


if __name__ == "__main__":
    sys.path.insert(0, ROOT)
    test_imports_run_one_way_down_the_floors()
    print(f"{len(long_lines())} lines over 100 characters")
