"""The opcode table: the one place every recorded operation is declared.

Each entry gives the opcode's number (family * 64 + index), the PyTorch ``grad_fn`` name shown for it,
how many ``next_functions`` slots PyTorch shows, and which saved values its backward reads
(``a``/``b``: the first/second input, ``y``: the output), which drives the in-place version check.
The numba reverse sweep dispatches on ``op >> 6`` (the family) and each family kernel on the opcode.
"""
import numpy as np

# families
SOURCE, UNARY, BINARY, REDUCE, STRIDED, GATHER, INDEX_PUT, MATMUL, PYFUNC, CUSTOM = range(10)
# families of the operation-coverage work, one per kernel module; each declares its opcodes in its own section
TERNARY, ORDER, LAYOUT, LINALG, NN, GUARD = range(10, 16)

NAMES = {}      # opcode -> grad_fn name
N_NEXT = {}     # opcode -> number of next_functions entries PyTorch shows
READS = {}      # opcode -> subset of "aby"
EXTRA = {}      # opcode -> True when params begin with [n_extra, gid, ...]: inputs beyond a and b
_counters = {}


def _op(family, grad_fn, n_next=1, reads="", extra=False):
    index = _counters.get(family, 0)
    _counters[family] = index + 1
    code = family * 64 + index
    NAMES[code] = grad_fn
    N_NEXT[code] = n_next
    READS[code] = reads
    EXTRA[code] = extra
    return code


# sources: no backward of their own
LEAF = _op(SOURCE, "AccumulateGrad", 0)
CONST = _op(SOURCE, None, 0)
FREED = _op(SOURCE, None, 0)          # stands for a record released by an earlier backward

# unary elementwise, y = f(x) (or f(x, c) with the scalar constant c)
NEG = _op(UNARY, "NegBackward0")
EXP = _op(UNARY, "ExpBackward0", reads="y")
LOG = _op(UNARY, "LogBackward0", reads="a")
SQRT = _op(UNARY, "SqrtBackward0", reads="y")
ABS = _op(UNARY, "AbsBackward0", reads="a")
SIN = _op(UNARY, "SinBackward0", reads="a")
COS = _op(UNARY, "CosBackward0", reads="a")
TANH = _op(UNARY, "TanhBackward0", reads="y")
SIGMOID = _op(UNARY, "SigmoidBackward0", reads="y")
RELU = _op(UNARY, "ReluBackward0", reads="y")
RECIPROCAL = _op(UNARY, "ReciprocalBackward0", reads="y")
CLONE = _op(UNARY, "CloneBackward0")
TO_COPY = _op(UNARY, "ToCopyBackward0")
ADD_SCALAR = _op(UNARY, "AddBackward0", 2)
SUB_SCALAR = _op(UNARY, "SubBackward0", 2)
RSUB_SCALAR = _op(UNARY, "RsubBackward1")
MUL_SCALAR = _op(UNARY, "MulBackward0", 2)
DIV_SCALAR = _op(UNARY, "DivBackward0", 2)
POW_SCALAR = _op(UNARY, "PowBackward0", reads="a")
RPOW_SCALAR = _op(UNARY, "PowBackward2", reads="y")

# binary elementwise with broadcasting
ADD = _op(BINARY, "AddBackward0", 2)
SUB = _op(BINARY, "SubBackward0", 2)
RSUB = _op(BINARY, "RsubBackward0", 2)      # y = b - a
MUL = _op(BINARY, "MulBackward0", 2, reads="ab")
DIV = _op(BINARY, "DivBackward0", 2, reads="ab")
POW = _op(BINARY, "PowBackward1", 2, reads="aby")

# reductions: y = sum(x * scale) over the axes whose keepdim extent is 1
SUM_ALL = _op(REDUCE, "SumBackward0")
SUM_DIM = _op(REDUCE, "SumBackward1")
MEAN_ALL = _op(REDUCE, "MeanBackward0")
MEAN_DIM = _op(REDUCE, "MeanBackward1")

# strided views: y[i] = x[offset + sum(i_k * stride_k)]; one backward kernel for all of them
VIEW = _op(STRIDED, "ViewBackward0")
UNSAFE_VIEW = _op(STRIDED, "UnsafeViewBackward0")
SELECT = _op(STRIDED, "SelectBackward0")
SLICE = _op(STRIDED, "SliceBackward0")
UNSQUEEZE = _op(STRIDED, "UnsqueezeBackward0")
SQUEEZE = _op(STRIDED, "SqueezeBackward0")
SQUEEZE_DIM = _op(STRIDED, "SqueezeBackward1")
SQUEEZE_DIMS = _op(STRIDED, "SqueezeBackward2")
SQUEEZE_INPLACE = _op(STRIDED, "SqueezeBackward4")     # what PyTorch's matmul of a vector records
TRANSPOSE = _op(STRIDED, "TransposeBackward0")
T = _op(STRIDED, "TBackward0")
PERMUTE = _op(STRIDED, "PermuteBackward0")
EXPAND = _op(STRIDED, "ExpandBackward0")
ALIAS = _op(STRIDED, "AliasBackward0")

# gathers by explicit flat index: y[i] = x[index[i]]
INDEX = _op(GATHER, "IndexBackward0")

# functional form of an in-place write: y = x, then y[index[i]] = v[source[i]]
COPY_SLICES = _op(INDEX_PUT, "torch::autograd::CopySlices", 2)   # a write through a view of the base
INDEX_PUT_OP = _op(INDEX_PUT, "IndexPutBackward0", 2)              # x[advanced index] = v
FILL = _op(INDEX_PUT, "FillBackward3", 2)                          # x[...] = scalar
COPY = _op(INDEX_PUT, "torch::autograd::CopyBackwards", 2)                          # x[...] = tensor

# matrix products
MM = _op(MATMUL, "MmBackward0", 2, reads="ab")
MV = _op(MATMUL, "MvBackward0", 2, reads="ab")
DOT = _op(MATMUL, "DotBackward0", 2, reads="ab")
ADDMM = _op(MATMUL, "AddmmBackward0", 3, reads="ab", extra=True)  # params: [1, input gid, beta bits]
BMM = _op(MATMUL, "BmmBackward0", 2, reads="ab")

# tapegrad.autograd.Function: a node record (inputs beyond a, b in params) whose backward is Python code, and
# one pass-through record per differentiable output that hands its adjoint to the node
PYFUNC_OP = _op(PYFUNC, None, 0, reads="", extra=True)
PYFUNC_OUTPUT = _op(PYFUNC, None, 0)

# tapegrad.custom_op: a user's numba kernels, called through a function pointer; params:
# [n_extra, extra gids..., kind] where kind indexes the registered kernels
CUSTOM_OP = _op(CUSTOM, None, 0, reads="aby", extra=True)

# nn: kernels in _kernels/nn.py; params [n_extra, extra gids..., op params] (see its docstring)
SOFTMAX = _op(NN, "SoftmaxBackward0", 1, reads="y", extra=True)
LOG_SOFTMAX = _op(NN, "LogSoftmaxBackward0", 1, reads="y", extra=True)
MSE_LOSS = _op(NN, "MseLossBackward0", 2, reads="ab", extra=True)
SMOOTH_L1_LOSS = _op(NN, "SmoothL1LossBackward0", 2, reads="ab", extra=True)
HUBER_LOSS = _op(NN, "HuberLossBackward0", 2, reads="ab", extra=True)
BCE_LOSS = _op(NN, "BinaryCrossEntropyBackward0", 2, reads="ab", extra=True)
BCE_WITH_LOGITS = _op(NN, "BinaryCrossEntropyWithLogitsBackward0", 2, reads="ab", extra=True)
NLL_LOSS = _op(NN, "NllLossBackward0", 1, reads="b", extra=True)
NLL_LOSS2D = _op(NN, "NllLoss2DBackward0", 1, reads="b", extra=True)
DIV_COUNT = _op(NN, "DivBackward1", 1, extra=True)           # x / an element count (torch divides by a SymInt)
LAYER_NORM = _op(NN, "NativeLayerNormBackward0", 3, reads="ab", extra=True)   # a: input, b: weight, extra: bias
EMBEDDING = _op(NN, "EmbeddingBackward0", 1, reads="b", extra=True)          # a: weight, b: indices
CONVOLUTION = _op(NN, "ConvolutionBackward0", 3, reads="ab", extra=True)     # a: input, b: weight, extra: bias
MAX_POOL2D = _op(NN, "MaxPool2DWithIndicesBackward0", 1, extra=True)
AVG_POOL2D = _op(NN, "AvgPool2DBackward0", 1, extra=True)

N_OPCODES = max(NAMES) + 1


def _flags(table, test):
    out = np.zeros(N_OPCODES, dtype=np.uint8)
    for code, value in table.items():
        out[code] = test(value)
    return out


# Passed to the sweep as arguments (numba would freeze module-level arrays into the cached code).
READS_A = _flags(READS, lambda r: "a" in r)
READS_B = _flags(READS, lambda r: "b" in r)
READS_Y = _flags(READS, lambda r: "y" in r)
HAS_EXTRA = _flags(EXTRA, bool)
SAVES = READS_A | READS_B | READS_Y  # PyTorch frees saved tensors after backward; only these ops then refuse a second pass

# record flag bits
FLAG_FREED = 1
FLAG_STALE = 2

# sweep status codes
OK = 0
ERR_FREED = 1
ERR_STALE = 2
ERR_PYFUNC = 3  # not an error: the sweep stopped at a Python record and wants it run
