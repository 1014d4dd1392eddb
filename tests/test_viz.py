"""tapegrad.viz: make_dot draws the graph torchviz draws for the same PyTorch program, the DOT renders, and
compiled traces draw themselves."""
import collections
import re
import shutil
import subprocess

import numpy as np
import pytest

import tapegrad as tg
from tapegrad.viz import Dot, GraphvizNotFound, make_dot


# -- reading DOT back: nodes with their final attributes, and edges ------------------------------------------

_TOKEN = re.compile(r'"(?:\\.|[^"\\])*"|->|[\[\]{}=;,]|[^\s\[\]{}=;,"]+', re.S)


def _unquote(token):
    if token.startswith('"'):
        return re.sub(r'\\(.)', r'\1', token[1:-1])
    return token


def parse_dot(text):
    """({node id: {attribute: value}}, [(tail, head, {attribute: value})]) of a flat digraph."""
    tokens = [m.group(0) for m in _TOKEN.finditer(text)]
    start = tokens.index("{") + 1
    nodes, edges = {}, []
    k = start
    while k < len(tokens) and tokens[k] != "}":
        first = _unquote(tokens[k])
        k += 1
        head = None
        if k < len(tokens) and tokens[k] == "->":
            head = _unquote(tokens[k + 1])
            k += 2
        attrs = {}
        if k < len(tokens) and tokens[k] == "[":
            k += 1
            while tokens[k] != "]":
                key, value = _unquote(tokens[k]), _unquote(tokens[k + 2])
                attrs[key] = value
                k += 3
                if tokens[k] in (",", ";"):
                    k += 1
            k += 1
        if k < len(tokens) and tokens[k] == ";":
            k += 1
        if head is not None:
            edges.append((first, head, attrs))
        elif first not in ("graph", "node", "edge"):
            nodes.setdefault(first, {}).update(attrs)
    return nodes, edges


def canonical(text):
    """The graph with node ids replaced by a name built from each node's label, colour and everything that
    flows into it: equal for two DOT texts exactly when they draw the same graph."""
    nodes, edges = parse_dot(text)
    into = collections.defaultdict(list)
    for tail, head, attrs in edges:
        if attrs.get("dir") != "none":
            into[head].append(tail)
    memo = {}

    def name(n):
        if n not in memo:
            memo[n] = None    # (a cycle would show as None; autograd graphs have none)
            attrs = nodes.get(n, {})
            label = attrs.get("label", n).replace("\n", "|")
            memo[n] = f"{label}[{attrs.get('fillcolor', '')}]({', '.join(sorted(name(t) for t in into[n]))})"
        return memo[n]

    labels = collections.Counter(name(n) for n in nodes)
    lines = collections.Counter(f"{name(t)} -> {name(h)} {sorted(a.items())}" for t, h, a in edges)
    return labels, lines


def _torch():
    torch = pytest.importorskip("torch")
    torchviz = pytest.importorskip("torchviz")
    return torch, torchviz


# -- programs written once, run on torch and on tapegrad ----------------------------------------------------

def classic(M):
    x = M.tensor([1.0, 2.0, 3.0], requires_grad=True)
    y = x + 2
    z = y * y * 3
    return z.mean(), {"x": x}


def mlp(M):
    M.manual_seed(0)
    model = M.nn.Sequential(M.nn.Linear(4, 8), M.nn.ReLU(), M.nn.Linear(8, 3))
    return model(M.ones(5, 4)).sum(), dict(model.named_parameters())


def mlp_tanh_mse(M):
    model = M.nn.Sequential(M.nn.Linear(2, 6), M.nn.Tanh(), M.nn.Linear(6, 1), M.nn.Sigmoid())
    x = M.ones(4, 2)
    return M.nn.MSELoss()(model(x), M.zeros(4, 1)), dict(model.named_parameters())


def addmm(M):
    b = M.tensor([1.0, 2.0], requires_grad=True)
    A = M.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
    B = M.tensor([[0.5, -1.0], [2.0, 0.25]], requires_grad=True)
    return M.addmm(b, A, B).tanh().sum(), {"b": b, "A": A, "B": B}


def views(M):
    X = M.tensor([[[1.0, 2.0], [3.0, 4.0]], [[-1.0, 0.5], [2.0, 1.5]]], requires_grad=True)
    y = X.view(2, 4).t()[1:] * X.transpose(0, 2).reshape(4, 2)[0].unsqueeze(0)
    return y.sum() + X[0, 1].exp().sum(), {"X": X}


def view_output(M):
    x = M.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
    return (x * 2)[0], {"x": x}


def inplace_through_view(M):
    x = M.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
    w = M.tensor([5.0, 6.0], requires_grad=True)
    a = x.clone()
    v = a[0]
    v.mul_(2)
    a[:, 1].add_(w)
    b = a.view(4)
    b[1] = 0.0
    return a.sum(), {"x": x, "w": w}


def inplace_setitem(M):
    x = M.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
    w = M.tensor([5.0, 6.0], requires_grad=True)
    a = x * 1
    a[0] = w
    a[1, 1] = 3.0
    a.mul_(w)
    return (a ** 2).sum(), {"x": x, "w": w}


def shared_and_tuple(M):
    v = M.tensor([1.0, 2.0], requires_grad=True)
    w = M.tensor([0.5, -3.0], requires_grad=True)
    h = (v * w).exp()
    return (h.sum(), (h * v).mean(), h), {"v": v, "w": w}


PROGRAMS = [classic, mlp, mlp_tanh_mse, addmm, views, view_output, inplace_through_view, inplace_setitem,
            shared_and_tuple]


@pytest.mark.parametrize("program", PROGRAMS, ids=lambda p: p.__name__)
def test_make_dot_draws_torchvizs_graph(program):
    torch, torchviz = _torch()
    out_t, params_t = program(torch)
    out_g, params_g = program(tg)
    expected = canonical(torchviz.make_dot(out_t, params=params_t).source)
    got = canonical(make_dot(out_g, params=params_g).source)
    assert got == expected


@pytest.mark.parametrize("program", [classic, addmm], ids=lambda p: p.__name__)
def test_make_dot_without_params_names_no_leaf(program):
    torch, torchviz = _torch()
    expected = canonical(torchviz.make_dot(program(torch)[0]).source)
    assert canonical(make_dot(program(tg)[0]).source) == expected
