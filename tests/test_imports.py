"""cbp's modules import one another without a circle.

An AST scan of every ``import`` in cbp/*.py -- function-local ones included
(a circle hidden in a function is still a circle) -- builds the graph of cbp
modules; it must have no cycle, and a failure names the cycle.
"""

import ast
import os

import importlib.util

import pytest

# The source next to the tests (the installed package has the same files)
SOURCE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "cbp")
if not os.path.isdir(SOURCE):  # pragma: no cover - tests run outside the checkout
    SOURCE = importlib.util.find_spec("cbp").submodule_search_locations[0]


def _imports(path, module):
    """The cbp modules that ``module`` (a name like '_network') imports."""
    with open(path) as f:
        tree = ast.parse(f.read(), path)
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                parts = alias.name.split(".")
                if parts[0] == "cbp" and len(parts) > 1:
                    found.add(parts[1])
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0:
                parts = (node.module or "").split(".")
                if parts[0] != "cbp":
                    continue
                base = parts[1:]
            elif node.level == 1:
                base = (node.module or "").split(".") if node.module else []
            else:  # pragma: no cover - cbp has no subpackages
                continue
            if base:
                found.add(base[0])
            else:  # from . import x, y
                found.update(alias.name for alias in node.names)
    modules = {name[:-3] for name in os.listdir(SOURCE) if name.endswith(".py")}
    return {m for m in found if m in modules and m != module}


def import_graph():
    graph = {}
    for name in sorted(os.listdir(SOURCE)):
        if name.endswith(".py"):
            module = name[:-3]
            graph[module] = _imports(os.path.join(SOURCE, name), module)
    return graph


def find_cycle(graph):
    """A list of modules forming a cycle (first == last), or None."""
    state, stack = {}, []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "open":
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state:
                cycle = visit(nxt)
                if cycle:
                    return cycle
        stack.pop()
        state[node] = "done"
        return None

    for node in sorted(graph):
        if node not in state:
            cycle = visit(node)
            if cycle:
                return cycle
    return None


def test_the_scan_sees_imports_of_every_kind():
    graph = import_graph()
    assert "_dispatch" in graph["_network"]         # from ._dispatch import kernel
    assert "_persistence" in graph["_multilayer_perceptron"]  # from . import _persistence
    assert "_multilayer_perceptron" in graph["__init__"]
    assert "_multilayer_perceptron" in graph["_onnx"]  # inside register()


def test_find_cycle_names_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_cbp_modules_import_one_another_without_a_circle():
    cycle = find_cycle(import_graph())
    assert cycle is None, "import circle: " + " -> ".join(cycle)


@pytest.mark.parametrize("low", ["_options", "_persistence", "_training", "_network",
                                 "_optimizers", "_fitted", "_labels"])
def test_lower_modules_do_not_import_the_estimators(low):
    assert "_multilayer_perceptron" not in import_graph()[low]
