"""The modules of ``coe`` import each other without cycles.

The graph counts every import statement of a module, those inside functions too: a function-level import is
how a cycle is usually hidden, and it still ties the two modules together. Imports under
``if TYPE_CHECKING:`` are left out (they never run).
"""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"


def module_name(path: Path) -> str:
    parts = path.relative_to(SRC).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def imported_modules(tree: ast.Module, module: str, is_package: bool, known: set[str]) -> set[str]:
    """The coe modules that ``module`` imports: ``from coe.a import b`` is ``coe.a.b`` when that is a module,
    else ``coe.a``; relative imports are resolved against ``module``."""
    found: set[str] = set()
    package = module if is_package else module.rpartition(".")[0]

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and is_type_checking(node):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            for alias in node.names:
                found.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return {name for name in found if name in known and name != module}


def import_graph() -> dict[str, set[str]]:
    files = {module_name(p): p for p in (SRC / "coe").rglob("*.py")}
    known = set(files)
    return {
        name: imported_modules(ast.parse(path.read_text()), name, path.name == "__init__.py", known)
        for name, path in files.items()
    }


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle as a list of modules (the first repeated at the end), or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_the_graph_sees_imports_everywhere():
    graph = import_graph()
    assert {"coe.config", "coe.modeling"} <= graph["coe"]  # (its lazy names load by importlib: not seen)
    assert "coe.nn.chain" in graph["coe.modeling"]
    assert "coe.modeling" in graph["coe.convert"]
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None
    tree = ast.parse("def f():\n    from coe.modeling import CoEForCausalLM\n")
    assert imported_modules(tree, "coe.config", False, {"coe.config", "coe.modeling"}) == {"coe.modeling"}


def test_no_import_cycles():
    cycle = find_cycle(import_graph())
    assert cycle is None, " -> ".join(cycle)


def test_presets_and_nn_are_below_what_uses_them():
    graph = import_graph()
    assert graph["coe.presets"] == set()  # pure data
    assert "coe.convert" not in graph["coe.modeling"]


def test_each_module_imports_first():
    # A cycle that the graph missed would show when one of its modules is the first coe module imported: each
    # of these is imported into an interpreter that holds no coe module (one process, torch loaded once).
    modules = [
        "coe",
        "coe.presets",
        "coe.config",
        "coe.nn.chain",
        "coe.modeling",
        "coe.convert",
        "coe.cli",
        "coe.commands",
    ]
    code = (
        "import importlib, sys\n"
        f"for name in {modules!r}:\n"
        "    for loaded in [m for m in sys.modules if m == 'coe' or m.startswith('coe.')]:\n"
        "        del sys.modules[loaded]\n"
        "    importlib.import_module(name)\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def run_python(code: str) -> str:
    return subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout


@pytest.mark.parametrize("args", [["--help"], ["presets"]])
def test_help_and_presets_do_not_import_torch(args):
    # Start-up time: torch and transformers take seconds to import, and these commands need neither.
    out = run_python(
        "import contextlib, io, sys\n"
        "from coe.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()) as out, contextlib.suppress(SystemExit):\n"
        f"    main({args!r})\n"
        "assert 'moe-8-64' in out.getvalue() or 'presets' in out.getvalue(), out.getvalue()\n"
        "print(sorted(m for m in ('torch', 'transformers', 'coe.commands') if m in sys.modules))\n"
    )
    assert out.strip() == "[]"


def test_import_coe_is_light_and_keeps_its_names_and_the_auto_classes():
    out = run_python(
        "import sys\n"
        "import coe\n"
        "print('torch' in sys.modules, 'transformers' in sys.modules)\n"
        "from transformers import AutoConfig, AutoModelForCausalLM\n"  # registered without a coe name used
        "config = AutoConfig.for_model('coe', num_hidden_layers=1, hidden_size=32, num_attention_heads=2, "
        "n_routed_experts=4, num_experts_per_tok=2, moe_intermediate_size=16, vocab_size=64)\n"
        "model = AutoModelForCausalLM.from_config(config)\n"
        "print(type(config).__name__, type(model).__name__)\n"
        "print(coe.CoEForCausalLM is type(model), set(coe.__all__) <= set(dir(coe)))\n"
        "print(callable(coe.list_presets), coe.CoECausalLMOutput.__name__, coe.CoEModel.__name__)\n"
    )
    assert out.split("\n")[:4] == [
        "False False",
        "CoEConfig CoEForCausalLM",
        "True True",
        "True CoECausalLMOutput CoEModel",
    ]
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        import coe

        coe.nope  # noqa: B018


def test_coe_after_transformers_registers_at_once():
    out = run_python(
        "from transformers import AutoModelForCausalLM\n"
        "import coe\n"
        "from coe.config import CoEConfig\n"
        "from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING\n"
        "print(MODEL_FOR_CAUSAL_LM_MAPPING[CoEConfig].__name__)\n"
    )
    assert out.strip() == "CoEForCausalLM"
