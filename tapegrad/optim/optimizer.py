"""Optimizer: parameter groups, torch-shaped state and state_dict, and the flat-buffer update of each group.

Each group keeps its parameters' state (momentum buffers, moment estimates, ...) in flat float64 buffers with an
offset table (`_Layout`); a step gathers the group's parameters and gradients into flat arrays, runs ONE numba
kernel over them and writes the parameters back in place, bumping their version counters like PyTorch's in-place
updates. Nothing is recorded on the tape.
"""
import copy

import numpy as np

from ..autograd.grad_mode import enable_grad, no_grad
from ..ops.inplace import invalidate_all
from ..tensor import Tensor, _wrap


class _Required:
    def __repr__(self):
        return "<required parameter>"


required = _Required()


class _Layout:
    """Flat float64 state of one parameter group: segments per parameter, named buffers, steps, init flags."""

    def __init__(self, params):
        self.params = list(params)
        sizes = [int(p._data.size) for p in self.params]
        self.shapes = [tuple(p._data.shape) for p in self.params]
        self.offsets = np.zeros(len(sizes) + 1, np.int64)
        np.cumsum(sizes, out=self.offsets[1:])
        self.total = int(self.offsets[-1])
        self.buffers = {}
        self.steps = np.zeros(len(sizes), np.float64)
        self.has_state = np.zeros(len(sizes), np.bool_)
        self.empty = np.zeros(0, np.float64)
        self.all_active = np.ones(len(sizes), np.bool_)
        # reused every step: the gathered parameters and gradients, and each parameter's segment of them
        self.flat_p = np.zeros(self.total, np.float64)
        self.flat_g = np.zeros(self.total, np.float64)
        self.p_segments = [self.flat_p[a:b].reshape(shape)
                           for a, b, shape in zip(self.offsets[:-1], self.offsets[1:], self.shapes)]

    def matches(self, params):
        return len(params) == len(self.params) and all(a is b for a, b in zip(params, self.params))

    def buffer(self, name, fill=0.0):
        """The flat buffer `name`, created filled with `fill` on first use."""
        buf = self.buffers.get(name)
        if buf is None:
            buf = self.buffers[name] = np.full(self.total, fill, np.float64)
        return buf

    def segment(self, name, k):
        return self.buffers[name][self.offsets[k]:self.offsets[k + 1]].reshape(self.shapes[k])

    def adopt(self, old):
        """Carry over the state of parameters that were also in the old layout."""
        index = {id(p): k for k, p in enumerate(old.params)}
        for k, p in enumerate(self.params):
            j = index.get(id(p))
            if j is None or self.shapes[k] != old.shapes[j]:
                continue
            self.steps[k] = old.steps[j]
            self.has_state[k] = old.has_state[j]
            for name, buf in old.buffers.items():
                self.buffer(name)[self.offsets[k]:self.offsets[k + 1]] = buf[old.offsets[j]:old.offsets[j + 1]]


def _as_array(value):
    if isinstance(value, Tensor):
        return np.asarray(value._data)
    return np.asarray(value)


class Optimizer:
    """Base class: subclasses name their state buffers and run their kernel in `_update`."""

    has_step = True   # whether the per-parameter state includes PyTorch's 'step'

    def __init__(self, params, defaults):
        self.defaults = defaults
        self.param_groups = []
        self._layouts = []
        if isinstance(params, Tensor):
            raise TypeError("params argument given to the optimizer should be an iterable of Tensors or dicts, "
                            f"but got {_type_name(params)}")
        param_groups = list(params)
        if len(param_groups) == 0:
            raise ValueError("optimizer got an empty parameter list")
        if not isinstance(param_groups[0], dict):
            param_groups = [{"params": param_groups}]
        for group in param_groups:
            self.add_param_group(group)

    # -- groups -----------------------------------------------------------------------------------------------

    def add_param_group(self, param_group):
        """Add a dict with 'params' and optional per-group hyper-parameters (the rest come from defaults)."""
        if not isinstance(param_group, dict):
            raise TypeError(f"param_group must be a dict, but got {type(param_group).__name__}")
        params = param_group["params"]
        if isinstance(params, Tensor):
            param_group["params"] = [params]
        elif isinstance(params, set):
            raise TypeError("optimizer parameters need to be organized in ordered collections, but the ordering "
                            "of tensors in sets will change between runs. Please use a list instead.")
        else:
            param_group["params"] = list(params)
        for p in param_group["params"]:
            if not isinstance(p, Tensor):
                raise TypeError(f"optimizer can only optimize Tensors, but one of the params is {_type_name(p)}")
            if not p.is_leaf:
                raise ValueError("can't optimize a non-leaf Tensor")
        for name, default in self.defaults.items():
            if default is required and name not in param_group:
                raise ValueError(f"parameter group didn't specify a value of required optimization parameter {name}")
            param_group.setdefault(name, default)
        if len({id(p) for p in param_group["params"]}) != len(param_group["params"]):
            import warnings
            warnings.warn("optimizer contains a parameter group with duplicate parameters; in future, this will "
                          "cause an error; see github.com/pytorch/pytorch/issues/40967 for more information",
                          stacklevel=3)
        seen = {id(p) for group in self.param_groups for p in group["params"]}
        if any(id(p) in seen for p in param_group["params"]):
            raise ValueError("some parameters appear in more than one parameter group")
        self.param_groups.append(param_group)
        layout = _Layout(param_group["params"])
        self._layouts.append(layout)
        self._init_group_state(layout, param_group)

    def _init_group_state(self, layout, group):
        """State created when a group is added (Adagrad fills its sums here); default none."""

    def _layout(self, i):
        """Group i's layout, rebuilt (keeping state) if its parameter list changed."""
        layout = self._layouts[i]
        params = self.param_groups[i]["params"]
        if not layout.matches(params) or any(p._data.shape != shape for p, shape in zip(params, layout.shapes)):
            new = _Layout(params)
            new.adopt(layout)
            self._layouts[i] = layout = new
        return layout

    # -- stepping ---------------------------------------------------------------------------------------------

    def zero_grad(self, set_to_none=True):
        """Reset every parameter's gradient (to None by default)."""
        for group in self.param_groups:
            for p in group["params"]:
                if p._grad is None:
                    continue
                if set_to_none:
                    p._grad = None
                else:
                    with no_grad():
                        p._grad.zero_()

    def step(self, closure=None):
        """Update every parameter that has a gradient; closure (re-evaluating the loss) is called with grad on."""
        loss = None
        if closure is not None:
            with enable_grad():
                loss = closure()
        with no_grad():
            for i, group in enumerate(self.param_groups):
                self._step_group(self._layout(i), group)
        return loss

    def _step_group(self, layout, group):
        params = layout.params
        if not params:
            return
        grads = [p._grad for p in params]
        if any(g is None for g in grads):
            active = np.array([g is not None for g in grads], np.bool_)
            if not active.any():
                return
        else:
            active = layout.all_active
        flat_p, flat_g = layout.flat_p, layout.flat_g
        if layout.total:
            for g in grads:
                if g is not None and g._data.dtype.kind == "c":
                    raise NotImplementedError("tapegrad optimizers do not support complex parameters yet")
            np.concatenate([p._data.reshape(-1) for p in params], out=flat_p, casting="same_kind")
            np.concatenate([g._data.reshape(-1) if g is not None else np.zeros(p._data.size)
                            for p, g in zip(params, grads)], out=flat_g, casting="same_kind")
        self._update(layout, group, flat_p, flat_g, active)
        updated = params if active is layout.all_active else [p for p, a in zip(params, active) if a]
        invalidate_all(updated)
        for p, segment, a in zip(params, layout.p_segments, active):
            if a:
                np.copyto(p._ensure_array(), segment, casting="same_kind")
        if self.has_step:   # (SGD's kernel marks the parameters that got a momentum buffer itself)
            layout.has_state |= active

    def _update(self, layout, group, flat_p, flat_g, active):
        raise NotImplementedError

    # -- state ------------------------------------------------------------------------------------------------

    def _buffer_names(self, group):
        """Names of the per-parameter state tensors, in PyTorch's order ('step' is added first if has_step)."""
        return []

    def _param_state(self, layout, group, k):
        if not layout.has_state[k]:
            return None
        state = {}
        if self.has_step:
            state["step"] = _wrap(np.array(layout.steps[k], np.float32))
        for name in self._buffer_names(group):
            if name in layout.buffers:
                state[name] = _wrap(layout.segment(name, k))
        return state or None

    @property
    def state(self):
        """{parameter: {name: tensor}}; the tensors share memory with the optimizer's buffers (not 'step')."""
        out = {}
        for i, group in enumerate(self.param_groups):
            layout = self._layout(i)
            for k, p in enumerate(layout.params):
                s = self._param_state(layout, group, k)
                if s is not None:
                    out[p] = s
        return out

    def state_dict(self):
        """{'state': {index: {...}}, 'param_groups': [{..., 'params': [index, ...]}]} as in PyTorch."""
        state = {}
        groups = []
        index = 0
        for i, group in enumerate(self.param_groups):
            layout = self._layout(i)
            packed = {k: v for k, v in group.items() if k != "params"}
            packed["params"] = list(range(index, index + len(layout.params)))
            for k in range(len(layout.params)):
                s = self._param_state(layout, group, k)
                if s is not None:
                    state[index + k] = s
            index += len(layout.params)
            groups.append(packed)
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict):
        """Restore hyper-parameters and state saved by state_dict(); everything is checked before anything changes."""
        if not isinstance(state_dict, dict) or "param_groups" not in state_dict or "state" not in state_dict:
            raise ValueError("optimizer state_dict must be a dict with 'state' and 'param_groups'")
        saved_groups = state_dict["param_groups"]
        if len(saved_groups) != len(self.param_groups):
            raise ValueError("loaded state dict has a different number of parameter groups")
        if any(len(g["params"]) != len(s["params"]) for g, s in zip(self.param_groups, saved_groups)):
            raise ValueError("loaded state dict contains a parameter group that doesn't match the size of "
                             "optimizer's group")
        where = {}
        for i, saved in enumerate(saved_groups):
            for k, idx in enumerate(saved["params"]):
                where[int(idx)] = (i, k)
        updates = []
        for idx, pstate in state_dict["state"].items():
            if int(idx) not in where:
                continue
            i, k = where[int(idx)]
            layout = self._layout(i)
            size = int(layout.offsets[k + 1] - layout.offsets[k])
            values = {}
            for name, value in pstate.items():
                arr = _as_array(value)
                if name != "step" and arr.size != size:
                    raise ValueError(f"loaded state for parameter {idx} has '{name}' of shape {list(arr.shape)}, "
                                     f"but the parameter has shape {list(layout.shapes[k])}")
                values[name] = arr
            updates.append((i, k, values))
        for group, saved in zip(self.param_groups, saved_groups):
            params = group["params"]
            group.clear()
            group.update({key: copy.deepcopy(v) for key, v in saved.items() if key != "params"})
            if "betas" in group and isinstance(group["betas"], list):
                group["betas"] = tuple(group["betas"])
            group["params"] = params
        for i, k, values in updates:
            layout = self._layout(i)
            a, b = layout.offsets[k], layout.offsets[k + 1]
            for name, arr in values.items():
                if name == "step":
                    layout.steps[k] = float(arr)
                else:
                    layout.buffer(name)[a:b] = arr.reshape(-1)
            layout.has_state[k] = True

    def __repr__(self):
        text = self.__class__.__name__ + " ("
        for i, group in enumerate(self.param_groups):
            text += f"\nParameter Group {i}"
            for key in sorted(group):
                if key != "params":
                    text += f"\n    {key}: {group[key]}"
        return text + "\n)"


def _type_name(obj):
    if isinstance(obj, Tensor):
        from ..nn.modules.module import _typename
        return _typename(obj)
    return type(obj).__name__
