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
READS = {}      # opcode -> subset of "abyc" (c: the extra inputs)
EXTRA = {}      # opcode -> True when params begin with [n_extra, gid, ...]: inputs beyond a and b
GRADS = {}      # opcode -> subset of "abc": the inputs that take a gradient when they require one
_counters = {}


def _op(family, grad_fn, n_next=1, reads="", extra=False, grads="abc"):
    index = _counters.get(family, 0)
    _counters[family] = index + 1
    code = family * 64 + index
    NAMES[code] = grad_fn
    N_NEXT[code] = n_next
    READS[code] = reads
    EXTRA[code] = extra
    GRADS[code] = grads
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
SPLIT = _op(STRIDED, "SplitBackward0")                      # split by a size, chunk: one record per output view
SPLIT_WITH_SIZES = _op(STRIDED, "SplitWithSizesBackward0")
UNBIND = _op(STRIDED, "UnbindBackward0")
DIAGONAL = _op(STRIDED, "DiagonalBackward0")
DIAG_COPY = _op(STRIDED, "DiagonalBackward0_copy")          # torch.diag of a matrix: a copy of the diagonal

# gathers by explicit flat index: y[i] = x[index[i]]
INDEX = _op(GATHER, "IndexBackward0")
INDEX_SELECT = _op(GATHER, "IndexSelectBackward0")
GATHER_DIM = _op(GATHER, "GatherBackward0")                 # gather, take_along_dim
FLIP = _op(GATHER, "FlipBackward0")
ROLL = _op(GATHER, "RollBackward0")
REPEAT = _op(GATHER, "RepeatBackward0")                     # repeat, tile

# functional form of an in-place write: y = x, then y[index[i]] = v[source[i]]
COPY_SLICES = _op(INDEX_PUT, "torch::autograd::CopySlices", 2)   # a write through a view of the base
INDEX_PUT_OP = _op(INDEX_PUT, "IndexPutBackward0", 2)              # x[advanced index] = v
FILL = _op(INDEX_PUT, "FillBackward3", 2)                          # x[...] = scalar
COPY = _op(INDEX_PUT, "torch::autograd::CopyBackwards", 2)                          # x[...] = tensor
SCATTER = _op(INDEX_PUT, "ScatterBackward0", 2)                    # scatter(dim, index, src)
SCATTER_VALUE = _op(INDEX_PUT, "ScatterBackward1")                 # scatter(dim, index, value): const = value

# matrix products
MM = _op(MATMUL, "MmBackward0", 2, reads="ab")
MV = _op(MATMUL, "MvBackward0", 2, reads="ab")
DOT = _op(MATMUL, "DotBackward0", 2, reads="ab")
ADDMM = _op(MATMUL, "AddmmBackward0", 3, reads="ab", extra=True)  # params: [1, input gid, beta bits, b is transposed]
BMM = _op(MATMUL, "BmmBackward0", 2, reads="ab")

# tapegrad.autograd.Function: a node record (inputs beyond a, b in params) whose backward is Python code, and
# one pass-through record per differentiable output that hands its adjoint to the node
PYFUNC_OP = _op(PYFUNC, None, 0, reads="", extra=True)
PYFUNC_OUTPUT = _op(PYFUNC, None, 0)

# tapegrad.custom_op: a user's numba kernels, called through a function pointer; params:
# [n_extra, extra gids..., kind] where kind indexes the registered kernels
CUSTOM_OP = _op(CUSTOM, None, 0, reads="abyc", extra=True)

# nn: kernels in _kernels/nn.py; params [n_extra, extra gids..., op params] (see its docstring)
SOFTMAX = _op(NN, "SoftmaxBackward0", 1, reads="y", extra=True)
LOG_SOFTMAX = _op(NN, "LogSoftmaxBackward0", 1, reads="y", extra=True)
MSE_LOSS = _op(NN, "MseLossBackward0", 2, reads="ab", extra=True)
SMOOTH_L1_LOSS = _op(NN, "SmoothL1LossBackward0", 2, reads="ab", extra=True)
HUBER_LOSS = _op(NN, "HuberLossBackward0", 2, reads="ab", extra=True)
BCE_LOSS = _op(NN, "BinaryCrossEntropyBackward0", 2, reads="ab", extra=True)
BCE_WITH_LOGITS = _op(NN, "BinaryCrossEntropyWithLogitsBackward0", 2, reads="ab", extra=True)
NLL_LOSS = _op(NN, "NllLossBackward0", 1, reads="bc", extra=True)
NLL_LOSS2D = _op(NN, "NllLoss2DBackward0", 1, reads="bc", extra=True)
DIV_COUNT = _op(NN, "DivBackward1", 1, extra=True)           # x / an element count (torch divides by a SymInt)
LAYER_NORM = _op(NN, "NativeLayerNormBackward0", 3, reads="ab", extra=True)   # a: input, b: weight, extra: bias
EMBEDDING = _op(NN, "EmbeddingBackward0", 1, reads="b", extra=True)          # a: weight, b: indices
CONVOLUTION = _op(NN, "ConvolutionBackward0", 3, reads="ab", extra=True)     # a: input, b: weight, extra: bias
MAX_POOL2D = _op(NN, "MaxPool2DWithIndicesBackward0", 1, extra=True)
AVG_POOL2D = _op(NN, "AvgPool2DBackward0", 1, extra=True)

# linear algebra (ops/linalg.py; kernels in _kernels/linalg.py). LINALG params after the output shape:
# [n_batch, n, k]: n_batch square (n, n) matrices, k right-hand-side columns for solve
VDOT = _op(MATMUL, "VdotBackward0", 2, reads="ab")
DIAGONAL = _op(STRIDED, "DiagonalBackward0")     # einsum's repeated subscripts
LINALG_SOLVE = _op(LINALG, "LinalgSolveExBackward0", 2, reads="ay")
LINALG_INV = _op(LINALG, "LinalgInvExBackward0", 1, reads="y")
LINALG_DET = _op(LINALG, "LinalgDetBackward0", 1, reads="a")
LINALG_SLOGDET = _op(LINALG, "LinalgSlogdetBackward0", 1, reads="a")       # the logabsdet output
LINALG_SLOGDET_SIGN = _op(LINALG, "LinalgSlogdetBackward0", 1, grads="")   # the sign: no gradient, as in PyTorch
LINALG_CHOLESKY = _op(LINALG, "LinalgCholeskyExBackward0", 1, reads="y")
CHOLESKY = _op(LINALG, "CholeskyBackward0", 1, reads="y")                  # the deprecated torch.cholesky
# y = const * input (broadcast) + product, the product recorded before by mv / bmm / bmm+sum (times alpha)
ADDMV = _op(LINALG, "AddmvBackward0", 2)
BADDBMM = _op(LINALG, "BaddbmmBackward0", 2)
ADDBMM = _op(LINALG, "AddbmmBackward0", 2)

# layout (tapegrad/_kernels/layout.py). Sparse maps: y = const, then y[out[j]] += x[in[j]] for the
# params [m, out..., in...] (positions no pair writes keep the constant: padding, the zeroed triangle)
TRIL = _op(LAYOUT, "TrilBackward0")
TRIU = _op(LAYOUT, "TriuBackward0")
CONSTANT_PAD = _op(LAYOUT, "ConstantPadNdBackward0")
DIAG_EMBED = _op(LAYOUT, "DiagEmbedBackward0")             # torch.diag of a vector
TRACE = _op(LAYOUT, "TraceBackward0")
# concatenation of a, b and the extra inputs along dim; params [n_extra, gids..., dim]
CAT = _op(LAYOUT, "CatBackward0", 2, extra=True)
STACK = _op(LAYOUT, "StackBackward0", 2, extra=True)
# y = x, then y[pos[j]] += v[src[j]]; params [m, pos..., src...]
SCATTER_ADD = _op(LAYOUT, "ScatterAddBackward0", 2)
INDEX_PUT_ACC = _op(LAYOUT, "IndexPutBackward0", 2)         # index_put_(..., accumulate=True)

# reductions beyond sum and mean, whose backward reads values (same layout: params are y's keepdim shape); const: see each line
PROD_ALL = _op(REDUCE, "ProdBackward0", reads="ay")
PROD_DIM = _op(REDUCE, "ProdBackward1", reads="ay")
VAR = _op(REDUCE, "VarBackward0", reads="a")             # const: degrees of freedom (count - correction)
STD = _op(REDUCE, "StdBackward0", reads="ay")
VAR_MEAN_VAR = _op(REDUCE, "VarMeanBackward0", reads="a")
VAR_MEAN_MEAN = _op(REDUCE, "VarMeanBackward0")          # const: 1 / count, as MEAN_DIM
STD_MEAN_STD = _op(REDUCE, "StdMeanBackward0", reads="ay")
STD_MEAN_MEAN = _op(REDUCE, "StdMeanBackward0")
LOGSUMEXP = _op(REDUCE, "LogsumexpBackward0", reads="ay")
VECTOR_NORM = _op(REDUCE, "LinalgVectorNormBackward0", reads="ay")   # const: ord
AMAX = _op(REDUCE, "AmaxBackward0", reads="ay")          # ties share the gradient evenly
AMIN = _op(REDUCE, "AminBackward0", reads="ay")
MAX_ALL = _op(REDUCE, "MaxBackward1", reads="ay")        # whole tensor; ties (or NaNs) share it evenly
MIN_ALL = _op(REDUCE, "MinBackward1", reads="ay")
MEDIAN_ALL = _op(REDUCE, "MedianBackward0", reads="ay")
# order: selections along one dim, y[a, k, b] = x[a, index[a, k, b], b], params: [L, post, K, flag, flat x
# index per y element...] (L: the dim's length, post: the product of the sides after it, K: outputs per line,
# flag: descending / largest / the sorted position picked); forward replay recomputes the indices
MAX_DIM = _op(ORDER, "MaxBackward0")
MIN_DIM = _op(ORDER, "MinBackward0")
SORT = _op(ORDER, "SortBackward0")
TOPK = _op(ORDER, "TopkBackward0")
MEDIAN_DIM = _op(ORDER, "MedianBackward1")
KTHVALUE = _op(ORDER, "KthvalueBackward0")
# scans along one dim, params: [L, post]
CUMSUM = _op(ORDER, "CumsumBackward0")
CUMPROD = _op(ORDER, "CumprodBackward0", reads="ay")

# elementwise coverage: more unary functions (c: the op's scalar parameter, if any)
EXP2 = _op(UNARY, "Exp2Backward0", reads="y")
EXPM1 = _op(UNARY, "Expm1Backward0", reads="y")
LOG2 = _op(UNARY, "Log2Backward0", reads="a")
LOG10 = _op(UNARY, "Log10Backward0", reads="a")
LOG1P = _op(UNARY, "Log1PBackward0", reads="a")
RSQRT = _op(UNARY, "RsqrtBackward0", reads="y")
SIGN = _op(UNARY, "SignBackward0")
TAN = _op(UNARY, "TanBackward0", reads="y")
ASIN = _op(UNARY, "AsinBackward0", reads="a")
ACOS = _op(UNARY, "AcosBackward0", reads="a")
ATAN = _op(UNARY, "AtanBackward0", reads="a")
SINH = _op(UNARY, "SinhBackward0", reads="a")
COSH = _op(UNARY, "CoshBackward0", reads="a")
ASINH = _op(UNARY, "AsinhBackward0", reads="a")
ACOSH = _op(UNARY, "AcoshBackward0", reads="a")
ATANH = _op(UNARY, "AtanhBackward0", reads="a")
ERF = _op(UNARY, "ErfBackward0", reads="a")
ERFC = _op(UNARY, "ErfcBackward0", reads="a")
FLOOR = _op(UNARY, "FloorBackward0")
CEIL = _op(UNARY, "CeilBackward0")
ROUND = _op(UNARY, "RoundBackward0")
ROUND_DECIMALS = _op(UNARY, "RoundBackward1")          # c: decimals
TRUNC = _op(UNARY, "TruncBackward0")
FRAC = _op(UNARY, "FracBackward0")
GELU = _op(UNARY, "GeluBackward0", reads="a")          # c: 0 exact, 1 tanh approximation
SILU = _op(UNARY, "SiluBackward0", reads="a")
ELU = _op(UNARY, "EluBackward0", reads="a")            # c: alpha
LEAKY_RELU = _op(UNARY, "LeakyReluBackward0", reads="a")   # c: negative slope
LOGSIGMOID = _op(UNARY, "LogSigmoidBackward0", reads="a")
CLAMP_MIN = _op(UNARY, "ClampMinBackward0", reads="a")     # c: the bound
CLAMP_MAX = _op(UNARY, "ClampMaxBackward0", reads="a")
MISH = _op(UNARY, "MishBackward0", reads="a")
SELU = _op(UNARY, "EluBackward0", reads="a")
CELU = _op(UNARY, "CeluBackward0", reads="a")          # c: alpha
HARDSIGMOID = _op(UNARY, "HardsigmoidBackward0", reads="a")
HARDSWISH = _op(UNARY, "HardswishBackward0", reads="a")

# elementwise coverage: more binary functions with broadcasting
ATAN2 = _op(BINARY, "Atan2Backward0", 2, reads="ab")
HYPOT = _op(BINARY, "HypotBackward0", 2, reads="aby")
MAXIMUM = _op(BINARY, "MaximumBackward0", 2, reads="ab")
MINIMUM = _op(BINARY, "MinimumBackward0", 2, reads="ab")
CLAMP_MIN_T = _op(BINARY, "ClampMinBackward1", 2, reads="ab")
CLAMP_MAX_T = _op(BINARY, "ClampMaxBackward1", 2, reads="ab")
DIV_FLOOR = _op(BINARY, "DivBackward2", 2)     # rounded divisions: zero gradients, as in PyTorch
DIV_TRUNC = _op(BINARY, "DivBackward2", 2)
PRELU = _op(BINARY, "PreluKernelBackward0", 2, reads="ab")   # b: the weight, viewed to broadcast

# elementwise with up to three broadcasting inputs a, b (optional) and c (optional, the extra gid) and two scalars:
# const and p1; params: [n_extra, (c gid), p1 bits]
CLAMP = _op(TERNARY, "ClampBackward1", reads="a", extra=True)            # const: min, p1: max (+-inf if None)
HARDTANH = _op(TERNARY, "HardtanhBackward0", reads="a", extra=True)      # const: min_val, p1: max_val
SOFTPLUS = _op(TERNARY, "SoftplusBackward0", reads="a", extra=True)      # const: beta, p1: threshold
CLAMP_T = _op(TERNARY, "ClampBackward0", 3, reads="abc", extra=True)      # b: min, c: max (either may be absent)
WHERE = _op(TERNARY, "WhereBackward0", 2, reads="c", extra=True, grads="ab")                 # c: condition
MASKED_FILL = _op(TERNARY, "MaskedFillBackward0", reads="c", extra=True, grads="ab")         # c: mask, const: value
MASKED_FILL_T = _op(TERNARY, "MaskedFillBackward1", 2, reads="c", extra=True, grads="ab")    # c: mask, b: 0-d value
LERP_S = _op(TERNARY, "LerpBackward0", 2, extra=True)                    # const: weight
LERP_T = _op(TERNARY, "LerpBackward1", 3, reads="abc", extra=True)        # c: weight

# tg.compile: records made only while a trace is being recorded, so values that leave the tape or steer Python
# can be recomputed and checked on replay; no backward. Comparisons write 1.0/0.0 (against b, or the constant
# when b is -1); GUARD_EQUAL fails the replay unless a's values equal those the record saved when recording.
GT = _op(GUARD, None, 0)
LT = _op(GUARD, None, 0)
GE = _op(GUARD, None, 0)
LE = _op(GUARD, None, 0)
EQ = _op(GUARD, None, 0)
NE = _op(GUARD, None, 0)
IS_NAN = _op(GUARD, None, 0)
NOT = _op(GUARD, None, 0)
DETACH = _op(GUARD, None, 0)
GUARD_EQUAL = _op(GUARD, None, 0)

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
READS_C = _flags(READS, lambda r: "c" in r)   # the values of the extra inputs
HAS_EXTRA = _flags(EXTRA, bool)
SAVES = READS_A | READS_B | READS_Y  # PyTorch frees saved tensors after backward; only these ops then refuse a second pass
# which inputs take a gradient (bit 1: a, bit 2: b, bit 4: the extra inputs), for the loops to mark them generically
GRAD_BITS = _flags(GRADS, lambda g: ("a" in g) + 2 * ("b" in g) + 4 * ("c" in g))
# the per-opcode tables reverse_sweep takes, as one array; its rows (indexed as tables[ROW, opcode]: a row slice
# per record would cost a reference-counted array view)
SWEEP_TABLES = np.ascontiguousarray(np.stack([READS_A, READS_B, READS_Y, SAVES, READS_C, HAS_EXTRA, GRAD_BITS]))
READS_A_ROW, READS_B_ROW, READS_Y_ROW, SAVES_ROW, READS_C_ROW, HAS_EXTRA_ROW, GRAD_BITS_ROW = range(7)

# record flag bits
FLAG_FREED = 1
FLAG_STALE = 2

# sweep status codes
OK = 0
ERR_FREED = 1
ERR_STALE = 2
ERR_PYFUNC = 3  # not an error: the sweep stopped at a Python record and wants it run
ERR_UNIT = 4    # not an error: the record's family unit is not loaded yet (units.load, then resume at the record)
ERR_KERNEL = 5  # the record's backward kernel failed (a singular matrix, say)
