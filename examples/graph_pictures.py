"""Pictures of autograd graphs with tapegrad.viz.make_dot, which draws what torchviz's make_dot draws for PyTorch.

Writes SVG files into the directory given on the command line (default: the current one); needs Graphviz's
`dot` program (apt-get install graphviz, brew install graphviz). docs/graph_mlp.svg was drawn by this script.
"""
import pathlib
import sys

import tapegrad as tg
from tapegrad.viz import make_dot


def draw_all(directory):
    directory = pathlib.Path(directory)
    written = []

    # the classic: x + 2, y * y * 3, mean
    x = tg.tensor([1.0, 2.0, 3.0], requires_grad=True)
    y = x + 2
    z = y * y * 3
    out = z.mean()
    written.append(make_dot(out, params={"x": x}).render(directory / "graph_classic"))
    # the same with what each backward saves (orange) and its attributes
    picture = make_dot(out, params={"x": x}, show_attrs=True, show_saved=True)
    written.append(picture.render(directory / "graph_classic_saved"))

    # a small MLP, its parameters named as model.named_parameters() names them
    tg.manual_seed(0)
    model = tg.nn.Sequential(tg.nn.Linear(4, 8), tg.nn.ReLU(), tg.nn.Linear(8, 2))
    loss = tg.nn.functional.mse_loss(model(tg.randn(16, 4)), tg.zeros(16, 2))
    written.append(make_dot(loss, params=dict(model.named_parameters())).render(directory / "graph_mlp"))

    # addmm: input + mat1 @ mat2
    bias = tg.tensor([1.0, 2.0], requires_grad=True)
    mat1 = tg.eye(2, requires_grad=True)
    mat2 = tg.tensor([[5.0, 6.0], [7.0, 8.0]], requires_grad=True)
    out = tg.addmm(bias, mat1, mat2).tanh().sum()
    params = {"bias": bias, "mat1": mat1, "mat2": mat2}
    written.append(make_dot(out, params=params).render(directory / "graph_addmm"))
    return written


if __name__ == "__main__":
    for path in draw_all(sys.argv[1] if len(sys.argv) > 1 else "."):
        print(path)
