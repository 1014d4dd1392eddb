"""RNN, GRU, LSTM (multi-layer, batch_first, bidirectional) and their cells, composed from recorded ops.

Outputs are assembled with tapegrad.stack / tapegrad.cat when those exist, else by differentiable writes into a
zero tensor (recorded as CopySlices), so the graph and gradients are right either way.
"""
import math

import tapegrad as _tg
from ... import creation
from ...ops.elementwise import relu, sigmoid, tanh
from .. import functional as F
from .. import init
from ..parameter import Parameter
from .module import Module

_GATES = {"RNN_TANH": 1, "RNN_RELU": 1, "LSTM": 4, "GRU": 3}


def _stack(tensors, dim=0):
    """stack along a new leading dim (0) of equally shaped tensors."""
    if hasattr(_tg, "stack"):
        return _tg.stack(tensors, dim)
    first = tensors[0]
    out = creation.zeros(len(tensors), *first.shape, dtype=first.dtype)
    for i, t in enumerate(tensors):
        out[i] = t
    return out


def _cat_last(tensors):
    """Concatenate along the last dim."""
    if hasattr(_tg, "cat"):
        return _tg.cat(tensors, -1)
    first = tensors[0]
    width = sum(t.shape[-1] for t in tensors)
    out = creation.zeros(*first.shape[:-1], width, dtype=first.dtype)
    start = 0
    for t in tensors:
        out[..., start:start + t.shape[-1]] = t
        start += t.shape[-1]
    return out


def _project(x, weight, bias):
    """x @ weight.T (+ bias) for x of shape (N, in)."""
    return F.linear(x, weight, bias)


def _gate(g, k, hidden):
    return g.narrow(-1, k * hidden, hidden)


def rnn_cell(x_proj, h, w_hh, b_hh, nonlinearity):
    pre = x_proj + _project(h, w_hh, b_hh)
    return tanh(pre) if nonlinearity == "tanh" else relu(pre)


def lstm_cell(x_proj, h, c, w_hh, b_hh):
    """One LSTM step given the input projection W_ih x + b_ih; gates in PyTorch's order i, f, g, o."""
    hidden = h.shape[-1]
    gates = x_proj + _project(h, w_hh, b_hh)
    i = sigmoid(_gate(gates, 0, hidden))
    f = sigmoid(_gate(gates, 1, hidden))
    g = tanh(_gate(gates, 2, hidden))
    o = sigmoid(_gate(gates, 3, hidden))
    c_new = f * c + i * g
    return o * tanh(c_new), c_new


def gru_cell(x_proj, h, w_hh, b_hh):
    """One GRU step given the input projection; gates in PyTorch's order r, z, n."""
    hidden = h.shape[-1]
    hp = _project(h, w_hh, b_hh)
    r = sigmoid(_gate(x_proj, 0, hidden) + _gate(hp, 0, hidden))
    z = sigmoid(_gate(x_proj, 1, hidden) + _gate(hp, 1, hidden))
    n = tanh(_gate(x_proj, 2, hidden) + r * _gate(hp, 2, hidden))
    return (1 - z) * n + z * h


class RNNBase(Module):
    def __init__(self, mode, input_size, hidden_size, num_layers=1, bias=True, batch_first=False, dropout=0.0,
                 bidirectional=False, proj_size=0, device=None, dtype=None):
        super().__init__()
        if not 0 <= dropout <= 1 or isinstance(dropout, bool):
            raise ValueError("dropout should be a number in range [0, 1] representing the probability of an "
                             "element being zeroed")
        if not isinstance(hidden_size, int) or hidden_size <= 0:
            raise ValueError("hidden_size must be an integer greater than zero")
        if not isinstance(num_layers, int) or num_layers <= 0:
            raise ValueError("num_layers must be an integer greater than zero")
        if proj_size != 0:
            raise NotImplementedError("tapegrad's LSTM does not support proj_size yet")
        self.mode = mode
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.bias = bias
        self.batch_first = batch_first
        self.dropout = float(dropout)
        self.bidirectional = bidirectional
        self.proj_size = proj_size
        directions = 2 if bidirectional else 1
        gate_size = _GATES[mode] * hidden_size
        self._flat_weights_names = []
        for layer in range(num_layers):
            layer_input = input_size if layer == 0 else hidden_size * directions
            for direction in range(directions):
                suffix = f"_l{layer}" + ("_reverse" if direction == 1 else "")
                shapes = [("weight_ih", (gate_size, layer_input)), ("weight_hh", (gate_size, hidden_size))]
                if bias:
                    shapes += [("bias_ih", (gate_size,)), ("bias_hh", (gate_size,))]
                for name, shape in shapes:
                    setattr(self, name + suffix, Parameter(creation.empty(*shape, dtype=dtype)))
                    self._flat_weights_names.append(name + suffix)
        self.reset_parameters()

    def reset_parameters(self):
        """Every weight and bias ~ U(-1/sqrt(hidden_size), 1/sqrt(hidden_size)), in registration order."""
        stdv = 1.0 / math.sqrt(self.hidden_size) if self.hidden_size > 0 else 0
        for weight in self.parameters():
            init.uniform_(weight, -stdv, stdv)

    def _layer_params(self, layer, direction):
        suffix = f"_l{layer}" + ("_reverse" if direction == 1 else "")
        get = lambda name: getattr(self, name + suffix) if self.bias or name.startswith("weight") else None  # noqa
        return get("weight_ih"), get("weight_hh"), get("bias_ih"), get("bias_hh")

    def _run_direction(self, x, h, c, params, reverse):
        """Run one layer in one direction over x (L, N, in); returns outputs (list by time) and final state."""
        w_ih, w_hh, b_ih, b_hh = params
        length, batch = x.shape[0], x.shape[1]
        proj = _project(x.reshape(length * batch, x.shape[2]), w_ih, b_ih).reshape(length, batch, w_ih.shape[0])
        outputs = [None] * length
        for t in (range(length - 1, -1, -1) if reverse else range(length)):
            xp = proj.select(0, t)
            if self.mode == "LSTM":
                h, c = lstm_cell(xp, h, c, w_hh, b_hh)
            elif self.mode == "GRU":
                h = gru_cell(xp, h, w_hh, b_hh)
            else:
                h = rnn_cell(xp, h, w_hh, b_hh, "tanh" if self.mode == "RNN_TANH" else "relu")
            outputs[t] = h
        return outputs, h, c

    def _check_input(self, input, hx):
        expected_dim = (2, 3)
        if input.dim() not in expected_dim:
            raise ValueError(f"{type(self).__name__}: Expected input to be 2D or 3D, got {input.dim()}D instead")
        if input.shape[-1] != self.input_size:
            raise RuntimeError(f"input.size(-1) must be equal to input_size. Expected {self.input_size}, "
                               f"got {input.shape[-1]}")

    def forward(self, input, hx=None):
        self._check_input(input, hx)
        unbatched = input.dim() == 2
        if unbatched:
            input = input.unsqueeze(1)
            if hx is not None:
                hx = tuple(h.unsqueeze(1) for h in hx) if self.mode == "LSTM" else hx.unsqueeze(1)
        elif self.batch_first:
            input = input.transpose(0, 1)
        directions = 2 if self.bidirectional else 1
        batch = input.shape[1]
        state_shape = (self.num_layers * directions, batch, self.hidden_size)
        if hx is None:
            zeros = creation.zeros(*state_shape, dtype=input.dtype)
            h0, c0 = zeros, zeros
        elif self.mode == "LSTM":
            h0, c0 = hx
        else:
            h0, c0 = hx, None
        for name, state in (("hidden", h0), ("cell", c0)):
            if state is not None and tuple(state.shape) != state_shape:
                raise RuntimeError(f"Expected {name} size {state_shape}, got {list(state.shape)}")
        layer_input = input
        h_n, c_n = [], []
        for layer in range(self.num_layers):
            direction_outputs = []
            for direction in range(directions):
                k = layer * directions + direction
                outputs, h, c = self._run_direction(
                    layer_input, h0.select(0, k), c0.select(0, k) if self.mode == "LSTM" else None,
                    self._layer_params(layer, direction), reverse=direction == 1)
                direction_outputs.append(_stack(outputs))
                h_n.append(h)
                c_n.append(c)
            layer_output = direction_outputs[0] if directions == 1 else _cat_last(direction_outputs)
            if self.dropout and self.training and layer < self.num_layers - 1:
                layer_output = F.dropout(layer_output, self.dropout, True)
            layer_input = layer_output
        output = layer_input
        hidden = _stack(h_n)
        if self.mode == "LSTM":
            hidden = (hidden, _stack(c_n))
        if unbatched:
            output = output.squeeze(1)
            hidden = tuple(h.squeeze(1) for h in hidden) if self.mode == "LSTM" else hidden.squeeze(1)
        elif self.batch_first:
            output = output.transpose(0, 1)
        return output, hidden

    def extra_repr(self):
        s = f"{self.input_size}, {self.hidden_size}"
        if self.proj_size != 0:
            s += f", proj_size={self.proj_size}"
        if self.num_layers != 1:
            s += f", num_layers={self.num_layers}"
        if self.bias is not True:
            s += f", bias={self.bias}"
        if self.batch_first is not False:
            s += f", batch_first={self.batch_first}"
        if self.dropout != 0:
            s += f", dropout={self.dropout}"
        if self.bidirectional is not False:
            s += f", bidirectional={self.bidirectional}"
        return s


class RNN(RNNBase):
    """Elman RNN: h' = tanh(W_ih x + b_ih + W_hh h + b_hh) (or relu; PyTorch's repr does not show it)."""

    def __init__(self, input_size, hidden_size, num_layers=1, nonlinearity="tanh", bias=True, batch_first=False,
                 dropout=0.0, bidirectional=False, device=None, dtype=None):
        if nonlinearity == "tanh":
            mode = "RNN_TANH"
        elif nonlinearity == "relu":
            mode = "RNN_RELU"
        else:
            raise ValueError(f"Unknown nonlinearity '{nonlinearity}'. Select from 'tanh' or 'relu'.")
        self.nonlinearity = nonlinearity
        super().__init__(mode, input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional,
                         dtype=dtype)


class LSTM(RNNBase):
    """Long short-term memory; forward(input, (h0, c0)) returns output, (h_n, c_n)."""

    def __init__(self, *args, **kwargs):
        super().__init__("LSTM", *args, **kwargs)


class GRU(RNNBase):
    """Gated recurrent unit."""

    def __init__(self, *args, **kwargs):
        super().__init__("GRU", *args, **kwargs)


class RNNCellBase(Module):
    def __init__(self, input_size, hidden_size, bias, num_chunks, device=None, dtype=None):
        super().__init__()
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.bias = bias
        self.weight_ih = Parameter(creation.empty(num_chunks * hidden_size, input_size, dtype=dtype))
        self.weight_hh = Parameter(creation.empty(num_chunks * hidden_size, hidden_size, dtype=dtype))
        if bias:
            self.bias_ih = Parameter(creation.empty(num_chunks * hidden_size, dtype=dtype))
            self.bias_hh = Parameter(creation.empty(num_chunks * hidden_size, dtype=dtype))
        else:
            self.register_parameter("bias_ih", None)
            self.register_parameter("bias_hh", None)
        self.reset_parameters()

    reset_parameters = RNNBase.reset_parameters

    def _zeros(self, input):
        shape = (input.shape[0], self.hidden_size) if input.dim() == 2 else (self.hidden_size,)
        return creation.zeros(*shape, dtype=input.dtype)

    def _batched(self, input, states):
        """Run the cell on a batch (unsqueezing an unbatched input and states, squeezing the results)."""
        if input.dim() == 1:
            out = self._step(input.unsqueeze(0), *(s.unsqueeze(0) for s in states))
            return tuple(o.squeeze(0) for o in out) if isinstance(out, tuple) else out.squeeze(0)
        return self._step(input, *states)

    def extra_repr(self):
        s = f"{self.input_size}, {self.hidden_size}"
        if self.bias is not True:
            s += f", bias={self.bias}"
        return s


class RNNCell(RNNCellBase):
    def __init__(self, input_size, hidden_size, bias=True, nonlinearity="tanh", device=None, dtype=None):
        super().__init__(input_size, hidden_size, bias, 1, dtype=dtype)
        self.nonlinearity = nonlinearity

    def _step(self, x, h):
        return rnn_cell(_project(x, self.weight_ih, self.bias_ih), h, self.weight_hh, self.bias_hh,
                        self.nonlinearity)

    def forward(self, input, hx=None):
        return self._batched(input, (self._zeros(input) if hx is None else hx,))

    def extra_repr(self):
        s = super().extra_repr()
        return s + (f", nonlinearity={self.nonlinearity}" if self.nonlinearity != "tanh" else "")


class LSTMCell(RNNCellBase):
    def __init__(self, input_size, hidden_size, bias=True, device=None, dtype=None):
        super().__init__(input_size, hidden_size, bias, 4, dtype=dtype)

    def _step(self, x, h, c):
        return lstm_cell(_project(x, self.weight_ih, self.bias_ih), h, c, self.weight_hh, self.bias_hh)

    def forward(self, input, hx=None):
        states = (self._zeros(input), self._zeros(input)) if hx is None else hx
        return self._batched(input, states)


class GRUCell(RNNCellBase):
    def __init__(self, input_size, hidden_size, bias=True, device=None, dtype=None):
        super().__init__(input_size, hidden_size, bias, 3, dtype=dtype)

    def _step(self, x, h):
        return gru_cell(_project(x, self.weight_ih, self.bias_ih), h, self.weight_hh, self.bias_hh)

    def forward(self, input, hx=None):
        return self._batched(input, (self._zeros(input) if hx is None else hx,))
