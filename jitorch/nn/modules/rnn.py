"""RNN, LSTM, GRU and their cells, composed of matmul and elementwise ops (torch's gate order and
parameter names: ``weight_ih_l{k}{_reverse}``, ``weight_hh_l{k}``, ``bias_ih_l{k}``, ``bias_hh_l{k}``,
``weight_hr_l{k}`` for LSTM projections).

A layer projects the whole input sequence at once (one matmul), then steps through time with one
``h @ W_hh^T`` product per step; the outputs are stacked. Packed sequences are supported by
unpacking to a padded batch plus per-sequence lengths: a sequence's state stops updating after its
last step, so ``h_n`` holds the state at each sequence's true end.
"""
from __future__ import annotations

import math
import numbers
import warnings

import numpy as np

from ... import _creation as C
from ...tensor import Tensor
from .. import functional as F
from .. import init
from ..parameter import Parameter
from .module import Module

__all__ = ["RNNBase", "RNN", "LSTM", "GRU", "RNNCellBase", "RNNCell", "LSTMCell", "GRUCell"]


def _t():
    import jitorch
    return jitorch


def _zero_state(x, batch_dim, shape):
    """Zeros of ``shape`` (the batch at ``shape[batch_dim]``) for ``x``'s dtype. While a trace records ops
    they are made from a view of ``x`` (``zeros_like`` of an expand: a ``fill`` node of the graph), so a
    traced graph follows the batch size (``jit.save(..., dynamic_batch=True)``); eagerly plain zeros on
    ``x``'s device."""
    from ... import _dispatch
    if _dispatch.hooks.tracer is not None and x.numel() > 0 and x.dim() == len(shape):
        v = x
        for d in range(x.dim()):
            if d != batch_dim:
                v = v.narrow(d, 0, 1)
        return C.zeros_like(v.expand(*shape))
    return C.zeros(shape, dtype=x.dtype, device=x.device)


def _gate_linear(x, w, b):
    y = x.matmul(w.t())
    return y + b if b is not None else y


class RNNBase(Module):
    """Shared construction of RNN, LSTM and GRU."""

    def __init__(self, mode, input_size, hidden_size, num_layers=1, bias=True, batch_first=False, dropout=0.0,
                 bidirectional=False, proj_size=0, device=None, dtype=None):
        fk = {"device": device, "dtype": dtype}
        super().__init__()
        self.mode = mode
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.bias = bias
        self.batch_first = batch_first
        self.dropout = float(dropout)
        self.bidirectional = bidirectional
        self.proj_size = proj_size
        num_directions = 2 if bidirectional else 1
        if not isinstance(dropout, numbers.Number) or not 0 <= dropout <= 1 or isinstance(dropout, bool):
            raise ValueError("dropout should be a number in range [0, 1] representing the probability of an element "
                             "being zeroed")
        if dropout > 0 and num_layers == 1:
            warnings.warn("dropout option adds dropout after all but last recurrent layer, so non-zero dropout "
                          f"expects num_layers greater than 1, but got dropout={dropout} and num_layers={num_layers}",
                          stacklevel=2)
        if not isinstance(hidden_size, int) or hidden_size <= 0:
            raise ValueError("hidden_size must be an integer greater than zero")
        if num_layers <= 0:
            raise ValueError("num_layers must be an integer greater than zero")
        if proj_size < 0:
            raise ValueError("proj_size should be a positive integer or zero to disable projections")
        if proj_size >= hidden_size:
            raise ValueError("proj_size has to be smaller than hidden_size")
        if mode == "LSTM":
            gate_size = 4 * hidden_size
        elif mode == "GRU":
            gate_size = 3 * hidden_size
        elif mode in ("RNN_TANH", "RNN_RELU"):
            gate_size = hidden_size
        else:
            raise ValueError("Unrecognized RNN mode: " + mode)
        self._flat_weights_names = []
        self._all_weights = []
        for layer in range(num_layers):
            for direction in range(num_directions):
                real_hidden_size = proj_size if proj_size > 0 else hidden_size
                layer_input_size = input_size if layer == 0 else real_hidden_size * num_directions
                w_ih = Parameter(C.empty((gate_size, layer_input_size), **fk))
                w_hh = Parameter(C.empty((gate_size, real_hidden_size), **fk))
                b_ih = Parameter(C.empty((gate_size,), **fk))
                b_hh = Parameter(C.empty((gate_size,), **fk))
                layer_params = (w_ih, w_hh, b_ih, b_hh) if bias else (w_ih, w_hh)
                if proj_size > 0:
                    w_hr = Parameter(C.empty((proj_size, hidden_size), **fk))
                    layer_params = layer_params + (w_hr,)
                suffix = "_reverse" if direction == 1 else ""
                param_names = ["weight_ih_l{}{}", "weight_hh_l{}{}"]
                if bias:
                    param_names += ["bias_ih_l{}{}", "bias_hh_l{}{}"]
                if proj_size > 0:
                    param_names += ["weight_hr_l{}{}"]
                param_names = [x.format(layer, suffix) for x in param_names]
                for name, param in zip(param_names, layer_params):
                    setattr(self, name, param)
                self._flat_weights_names.extend(param_names)
                self._all_weights.append(param_names)
        self.reset_parameters()

    @property
    def _flat_weights(self):
        return [getattr(self, wn) if hasattr(self, wn) else None for wn in self._flat_weights_names]

    @property
    def all_weights(self):
        return [[getattr(self, weight) for weight in weights] for weights in self._all_weights]

    def flatten_parameters(self):
        """No-op (cuDNN weight packing has no meaning here)."""

    def reset_parameters(self):
        stdv = 1.0 / math.sqrt(self.hidden_size) if self.hidden_size > 0 else 0
        for weight in self.parameters():
            init.uniform_(weight, -stdv, stdv)

    def extra_repr(self):
        s = "{input_size}, {hidden_size}"
        if self.proj_size != 0:
            s += ", proj_size={proj_size}"
        if self.num_layers != 1:
            s += ", num_layers={num_layers}"
        if self.bias is not True:
            s += ", bias={bias}"
        if self.batch_first is not False:
            s += ", batch_first={batch_first}"
        if self.dropout != 0:
            s += ", dropout={dropout}"
        if self.bidirectional is not False:
            s += ", bidirectional={bidirectional}"
        return s.format(**self.__dict__)

    # ------------------------------------------------------------------ running
    def _layer_params(self, layer, direction):
        suffix = "_reverse" if direction == 1 else ""
        g = lambda n: getattr(self, f"{n}_l{layer}{suffix}", None)  # noqa: E731
        return g("weight_ih"), g("weight_hh"), g("bias_ih"), g("bias_hh"), g("weight_hr")

    def _check_input(self, input, batch_sizes):
        expected_input_dim = 2 if batch_sizes is not None else 3
        if input.dim() != expected_input_dim and not (batch_sizes is None and input.dim() == 2):
            raise ValueError(f"{self._get_name()}({self.extra_repr()}): Expected input to be 2D or 3D, got "
                             f"{input.dim()}D instead")
        if self.input_size != input.size(-1):
            raise RuntimeError(f"{self._get_name()}({self.extra_repr()}): input.size(-1) must be equal to input_size. "
                               f"Expected {self.input_size}, got {input.size(-1)}")

    def _check_hidden(self, hx, expected, msg="Expected hidden size {}, got {}"):
        if tuple(hx.shape) != tuple(expected):
            raise RuntimeError(f"{self._get_name()}({self.extra_repr()}): " +
                               msg.format(tuple(expected), list(hx.size())))

    def _step(self, x_proj, h, c, w_hh, b_hh, w_hr):
        """One time step: x_proj = x W_ih^T + b_ih (precomputed); returns new (h, c)."""
        t = _t()
        hh = _gate_linear(h, w_hh, b_hh)
        if self.mode == "LSTM":
            gates = x_proj + hh
            i, f, g, o = gates.chunk(4, -1)
            i, f, g, o = t.sigmoid(i), t.sigmoid(f), t.tanh(g), t.sigmoid(o)
            c = f * c + i * g
            h = o * t.tanh(c)
            if w_hr is not None:
                h = h.matmul(w_hr.t())
            return h, c
        if self.mode == "GRU":
            xr, xz, xn = x_proj.chunk(3, -1)
            hr, hz, hn = hh.chunk(3, -1)
            r = t.sigmoid(xr + hr)
            z = t.sigmoid(xz + hz)
            n = t.tanh(xn + r * hn)
            return n + z * (h - n), None
        pre = x_proj + hh
        return (t.tanh(pre) if self.mode == "RNN_TANH" else t.relu(pre)), None

    def _run_direction(self, x, h, c, params, reverse, lengths):
        """x (T, B, I) -> outputs (T, B, H'), final (h, c)."""
        t = _t()
        w_ih, w_hh, b_ih, b_hh, w_hr = params
        T = x.shape[0]
        xp = _gate_linear(x, w_ih, b_ih)
        steps = range(T - 1, -1, -1) if reverse else range(T)
        outs = [None] * T
        for s in steps:
            h_new, c_new = self._step(xp[s], h, c, w_hh, b_hh, w_hr)
            if lengths is not None:
                active = t.from_numpy((lengths > s).reshape(-1, 1))
                h_new = t.where(active, h_new, h)
                if c_new is not None:
                    c_new = t.where(active, c_new, c)
                outs[s] = t.where(active, h_new, t.zeros_like(h_new))
            else:
                outs[s] = h_new
            h, c = h_new, c_new
        return t.stack(outs, 0), h, c

    def forward(self, input, hx=None):
        t = _t()
        from ..utils.rnn import PackedSequence, pack_padded_sequence, pad_packed_sequence
        packed = isinstance(input, PackedSequence)
        lengths = None
        if packed:
            padded, lens = pad_packed_sequence(input, batch_first=False)
            lengths = np.asarray(lens._data, np.int64)
            x = padded
            batch_first = False
            is_batched = True
            self._check_input(x, None)
        else:
            x = input
            batch_first = self.batch_first
            self._check_input(x, None)
            is_batched = x.dim() == 3
            if not is_batched:
                x = x.unsqueeze(1)
            elif batch_first:
                x = x.transpose(0, 1)
        T, B = x.shape[0], x.shape[1]
        num_directions = 2 if self.bidirectional else 1
        real_hidden = self.proj_size if self.proj_size > 0 else self.hidden_size
        h_shape = (self.num_layers * num_directions, B, real_hidden)
        c_shape = (self.num_layers * num_directions, B, self.hidden_size)
        if hx is None:
            h0 = _zero_state(x, 1, h_shape)
            c0 = _zero_state(x, 1, c_shape) if self.mode == "LSTM" else None
        else:
            if self.mode == "LSTM":
                if not isinstance(hx, (tuple, list)) or len(hx) != 2:
                    raise RuntimeError("LSTM: hx must be a tuple (h_0, c_0)")
                h0, c0 = hx
                if not is_batched:
                    if h0.dim() != 2 or c0.dim() != 2:
                        raise RuntimeError(f"For unbatched 2-D input, hx and cx should also be 2-D but got "
                                           f"({h0.dim()}-D, {c0.dim()}-D) tensors")
                    h0, c0 = h0.unsqueeze(1), c0.unsqueeze(1)
                self._check_hidden(h0, h_shape)
                self._check_hidden(c0, c_shape, "Expected hidden[1] size {}, got {}")
            else:
                h0, c0 = hx, None
                if not is_batched:
                    if h0.dim() != 2:
                        raise RuntimeError(f"For unbatched 2-D input, hx should also be 2-D but got {h0.dim()}-D "
                                           "tensor")
                    h0 = h0.unsqueeze(1)
                self._check_hidden(h0, h_shape)
        layer_input = x
        h_n, c_n = [], []
        for layer in range(self.num_layers):
            outs = []
            for d in range(num_directions):
                k = layer * num_directions + d
                params = self._layer_params(layer, d)
                out, h, c = self._run_direction(layer_input, h0[k], c0[k] if c0 is not None else None, params,
                                                d == 1, lengths)
                outs.append(out)
                h_n.append(h)
                if c is not None:
                    c_n.append(c)
            layer_input = outs[0] if num_directions == 1 else t.cat(outs, -1)
            if self.dropout > 0 and self.training and layer < self.num_layers - 1:
                layer_input = F.dropout(layer_input, self.dropout, True)
        output = layer_input
        h_n = t.stack(h_n, 0)
        c_n = t.stack(c_n, 0) if c_n else None
        if packed:
            output = pack_padded_sequence(output, t.from_numpy(lengths), batch_first=False,
                                          enforce_sorted=False)
            if input.sorted_indices is not None:
                output = PackedSequence(output.data, output.batch_sizes, input.sorted_indices, input.unsorted_indices)
        else:
            if not is_batched:
                output = output.squeeze(1)
                h_n = h_n.squeeze(1)
                c_n = c_n.squeeze(1) if c_n is not None else None
            elif batch_first:
                output = output.transpose(0, 1)
        if self.mode == "LSTM":
            return output, (h_n, c_n)
        return output, h_n


class RNN(RNNBase):
    """Elman RNN: h_t = tanh(x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh) (or relu)."""

    def __init__(self, *args, **kwargs):
        if "proj_size" in kwargs:
            raise ValueError("proj_size argument is only supported for LSTM, not RNN or GRU")
        if len(args) > 3:
            self.nonlinearity = args[3]
            args = args[:3] + args[4:]
        else:
            self.nonlinearity = kwargs.pop("nonlinearity", "tanh")
        if self.nonlinearity == "tanh":
            mode = "RNN_TANH"
        elif self.nonlinearity == "relu":
            mode = "RNN_RELU"
        else:
            raise ValueError(f"Unknown nonlinearity '{self.nonlinearity}'. Select from 'tanh' or 'relu'.")
        super().__init__(mode, *args, **kwargs)



class LSTM(RNNBase):
    """LSTM with torch's gates (i, f, g, o), optional projections (proj_size)."""

    def __init__(self, *args, **kwargs):
        super().__init__("LSTM", *args, **kwargs)


class GRU(RNNBase):
    """GRU with torch's gates (r, z, n): n = tanh(W_in x + b_in + r * (W_hn h + b_hn))."""

    def __init__(self, *args, **kwargs):
        if "proj_size" in kwargs:
            raise ValueError("proj_size argument is only supported for LSTM, not RNN or GRU")
        super().__init__("GRU", *args, **kwargs)


class RNNCellBase(Module):
    def __init__(self, input_size, hidden_size, bias, num_chunks, device=None, dtype=None):
        fk = {"device": device, "dtype": dtype}
        super().__init__()
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.bias = bias
        self.weight_ih = Parameter(C.empty((num_chunks * hidden_size, input_size), **fk))
        self.weight_hh = Parameter(C.empty((num_chunks * hidden_size, hidden_size), **fk))
        if bias:
            self.bias_ih = Parameter(C.empty((num_chunks * hidden_size,), **fk))
            self.bias_hh = Parameter(C.empty((num_chunks * hidden_size,), **fk))
        else:
            self.register_parameter("bias_ih", None)
            self.register_parameter("bias_hh", None)
        self.reset_parameters()

    def extra_repr(self):
        s = "{input_size}, {hidden_size}"
        if "bias" in self.__dict__ and self.bias is not True:
            s += ", bias={bias}"
        if "nonlinearity" in self.__dict__ and self.nonlinearity != "tanh":
            s += ", nonlinearity={nonlinearity}"
        return s.format(**self.__dict__)

    def reset_parameters(self):
        stdv = 1.0 / math.sqrt(self.hidden_size) if self.hidden_size > 0 else 0
        for weight in self.parameters():
            init.uniform_(weight, -stdv, stdv)

    def _prep(self, input, hx, n_state=1):
        if input.dim() not in (1, 2):
            raise ValueError(f"{self._get_name()}: Expected input to be 1D or 2D, got {input.dim()}D instead")
        if input.shape[-1] != self.input_size:
            raise RuntimeError(f"{self._get_name()}: input has inconsistent input_size: got {input.shape[-1]} "
                               f"expected {self.input_size}")
        is_batched = input.dim() == 2
        x = input if is_batched else input.unsqueeze(0)
        return x, is_batched


class RNNCell(RNNCellBase):
    def __init__(self, input_size, hidden_size, bias=True, nonlinearity="tanh", device=None, dtype=None):
        super().__init__(input_size, hidden_size, bias, num_chunks=1, device=device, dtype=dtype)
        self.nonlinearity = nonlinearity

    def forward(self, input, hx=None):
        t = _t()
        x, is_batched = self._prep(input, hx)
        if hx is None:
            hx = _zero_state(x, 0, (x.shape[0], self.hidden_size))
        elif not is_batched:
            hx = hx.unsqueeze(0)
        pre = _gate_linear(x, self.weight_ih, self.bias_ih) + _gate_linear(hx, self.weight_hh, self.bias_hh)
        if self.nonlinearity == "tanh":
            h = t.tanh(pre)
        elif self.nonlinearity == "relu":
            h = t.relu(pre)
        else:
            raise RuntimeError(f"Unknown nonlinearity: {self.nonlinearity}")
        return h if is_batched else h.squeeze(0)


class LSTMCell(RNNCellBase):
    def __init__(self, input_size, hidden_size, bias=True, device=None, dtype=None):
        super().__init__(input_size, hidden_size, bias, num_chunks=4, device=device, dtype=dtype)

    def forward(self, input, hx=None):
        t = _t()
        x, is_batched = self._prep(input, hx)
        if hx is None:
            z = _zero_state(x, 0, (x.shape[0], self.hidden_size))
            hx = (z, z)
        elif not is_batched:
            hx = (hx[0].unsqueeze(0), hx[1].unsqueeze(0))
        h, c = hx
        gates = _gate_linear(x, self.weight_ih, self.bias_ih) + _gate_linear(h, self.weight_hh, self.bias_hh)
        i, f, g, o = gates.chunk(4, 1)
        c = t.sigmoid(f) * c + t.sigmoid(i) * t.tanh(g)
        h = t.sigmoid(o) * t.tanh(c)
        return (h, c) if is_batched else (h.squeeze(0), c.squeeze(0))


class GRUCell(RNNCellBase):
    def __init__(self, input_size, hidden_size, bias=True, device=None, dtype=None):
        super().__init__(input_size, hidden_size, bias, num_chunks=3, device=device, dtype=dtype)

    def forward(self, input, hx=None):
        t = _t()
        x, is_batched = self._prep(input, hx)
        if hx is None:
            hx = _zero_state(x, 0, (x.shape[0], self.hidden_size))
        elif not is_batched:
            hx = hx.unsqueeze(0)
        xr, xz, xn = _gate_linear(x, self.weight_ih, self.bias_ih).chunk(3, 1)
        hr, hz, hn = _gate_linear(hx, self.weight_hh, self.bias_hh).chunk(3, 1)
        r = t.sigmoid(xr + hr)
        z = t.sigmoid(xz + hz)
        n = t.tanh(xn + r * hn)
        h = n + z * (hx - n)
        return h if is_batched else h.squeeze(0)


_ = Tensor
