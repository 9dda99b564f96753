"""Who may import whom (docs/ARCHITECTURE.md, "Who may import whom"), checked on the code.

Every module under src/uvox is parsed (nothing is imported), and every import of ours
is counted, at the top of a module or inside a function alike: an import moved into
a function still ties the two packages together, it only hides the cycle until run
time. The imports make a graph of packages (``api`` is one, ``api/v1`` included);
``sms/states.py``, the message vocabulary, is a node of its own, as the document
says, and must import nothing of ours.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

SRC = Path(__file__).resolve().parent.parent / "src" / "uvox"

#: docs/ARCHITECTURE.md's layers, from the bottom up. A package imports only from
#: its own layer or below; inside a layer, the graph has no cycle.
LAYERS: list[set[str]] = [
    {
        "config",
        "clock",
        "errors",
        "strings",
        "limits",
        "secretbox",
        "markup",
        "prompt",
        "process",
        "counters",
        "sms.states",
        "db",
        "platform",
        "mail",
    },
    {"accounts", "otp"},
    {"billing"},
    {"sms"},
    {"smpp", "dispatch", "voice", "softphone", "ops"},
    {"api", "portal", "client", "client_cli"},
    {"app", "background", "server", "supervised"},
    {"cli", "__main__"},
]
LAYER = {name: i for i, names in enumerate(LAYERS) for name in names}


def _module_name(path: Path) -> str:
    parts = ["uvox", *path.relative_to(SRC).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(p): p for p in sorted(SRC.rglob("*.py"))}


def node(module: str) -> str:
    """The graph's node of a module of ours: its package, or the module itself at the top."""
    parts = module.split(".")[1:]
    if parts[:2] == ["sms", "states"]:
        return "sms.states"
    return parts[0] if parts else "uvox"


def imported(module: str, path: Path) -> Iterator[tuple[str, int]]:
    """The modules of ours that ``module`` imports anywhere in its file, with the line."""
    is_package = path.name == "__init__.py"
    for n in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(n, ast.Import):
            for alias in n.names:
                if alias.name == "uvox" or alias.name.startswith("uvox."):
                    yield alias.name, n.lineno
        elif isinstance(n, ast.ImportFrom):
            if n.level:
                base = module.split(".") if is_package else module.split(".")[:-1]
                base = base[: len(base) - (n.level - 1)]
                source = ".".join(base + ([n.module] if n.module else []))
            else:
                source = n.module or ""
            if source != "uvox" and not source.startswith("uvox."):
                continue
            for alias in n.names:
                # ``from uvox.sms import states`` imports the module uvox.sms.states.
                sub = f"{source}.{alias.name}"
                yield (sub if sub in MODULES else source), n.lineno


def graph() -> dict[str, dict[str, list[str]]]:
    """package -> imported package -> where (``path:line module``)."""
    edges: dict[str, dict[str, list[str]]] = {}
    for module, path in MODULES.items():
        src = node(module)
        for target, line in imported(module, path):
            dst = node(target)
            if dst not in (src, "uvox"):
                edges.setdefault(src, {}).setdefault(dst, []).append(f"{path.relative_to(SRC.parent)}:{line} {target}")
    return edges


def cycles(edges: dict[str, dict[str, list[str]]]) -> list[list[str]]:
    """The graph's strongly connected components of more than one package (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in edges.get(v, {}):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(set(edges) | {w for ws in edges.values() for w in ws}):
        if v not in index:
            visit(v)
    return found


def test_the_graph_sees_imports_at_the_top_and_inside_functions():
    # Guards the parser itself: a test that found no edges would pass on anything.
    edges = graph()
    assert any(w.startswith("uvox/dispatch/dispatcher.py:") for w in edges["dispatch"]["counters"])  # at the top
    assert any(w.startswith("uvox/ops/health.py:") for w in edges["ops"]["dispatch"])  # inside a function
    assert any("uvox.sms.states" in w for w in edges["billing"]["sms.states"])


def test_every_module_is_in_a_layer():
    missing = sorted({node(m) for m in MODULES} - set(LAYER) - {"uvox"})
    assert not missing, f"add {missing} to LAYERS here and to docs/ARCHITECTURE.md"


def test_no_import_cycle_between_packages():
    edges = graph()
    found = cycles(edges)
    where = [f"{a} -> {b}: {edges[a][b]}" for c in found for a in c for b in c if b in edges.get(a, {})]
    assert not found, f"import cycles {found}:\n" + "\n".join(where)


def test_packages_import_only_their_layer_or_below():
    wrong = [
        f"{src} (layer {LAYER[src] + 1}) imports {dst} (layer {LAYER[dst] + 1}): {where}"
        for src, targets in graph().items()
        if src in LAYER
        for dst, where in targets.items()
        if dst in LAYER and LAYER[dst] > LAYER[src]
    ]
    assert not wrong, "\n".join(wrong)


def test_the_message_vocabulary_imports_nothing_of_ours():
    assert "sms.states" not in graph()
    assert not list(imported("uvox.sms", MODULES["uvox.sms"]))  # importing uvox.sms.states runs it


#: Methods of ``os.environ`` that read it (``update`` and item assignment only write).
_READS = {"get", "items", "keys", "values", "copy", "setdefault", "pop", "popitem", "__getitem__", "__contains__"}


def environment_reads(tree: ast.AST) -> Iterator[int]:
    """Lines that read the environment: ``os.getenv``, ``os.environ.get(...)`` and its
    other reading methods, ``os.environ[...]`` as a value, ``... in os.environ``, a loop
    over it, and ``from os import environ/getenv``. Writing it for a child process
    (``os.environ[k] = v``, ``os.environ.update``) and handing all of it on
    (``dict(os.environ, X=...)``) are not reads of a setting."""
    parents = {child: parent for parent in ast.walk(tree) for child in ast.iter_child_nodes(parent)}
    for n in ast.walk(tree):
        if isinstance(n, ast.ImportFrom) and n.module == "os" and not n.level:
            if {a.name for a in n.names} & {"environ", "environb", "getenv", "getenvb"}:
                yield n.lineno
        if not (isinstance(n, ast.Attribute) and isinstance(n.value, ast.Name) and n.value.id == "os"):
            continue
        if n.attr in ("getenv", "getenvb"):
            yield n.lineno
        if n.attr not in ("environ", "environb"):
            continue
        parent = parents.get(n)
        if isinstance(parent, ast.Attribute) and parent.attr in _READS:
            yield n.lineno
        elif isinstance(parent, ast.Subscript) and parent.value is n and isinstance(parent.ctx, ast.Load):
            yield n.lineno
        elif (
            isinstance(parent, ast.Compare)
            and n in parent.comparators
            and any(isinstance(op, (ast.In, ast.NotIn)) for op in parent.ops)
        ):
            yield n.lineno
        elif isinstance(parent, (ast.For, ast.comprehension)) and parent.iter is n:
            yield n.lineno


def test_environment_reads_are_seen():
    # Guards the detector: each of these is a read, the last two lines are not.
    source = (
        "import os\nfrom os import getenv\nos.getenv('A')\nos.environ.get('A')\nos.environ['A']\n"
        "'A' in os.environ\n[k for k in os.environ]\nos.environ['A'] = '1'\nenv = dict(os.environ, A='1')\n"
    )
    assert sorted(set(environment_reads(ast.parse(source)))) == [2, 3, 4, 5, 6, 7]


def test_only_config_reads_the_environment():
    found = [
        f"{path.relative_to(SRC.parent)}:{line}"
        for module, path in MODULES.items()
        if module != "uvox.config"
        for line in environment_reads(ast.parse(path.read_text(), str(path)))
    ]
    assert not found, "settings are read in uvox/config.py only (Settings, ClientSettings): " + ", ".join(found)
