"""Explicit SIMD vectors for Numba kernels: 64 bytes of floats as one value.

Why
---
A convolution (or a matrix product) runs at the machine's rate only when a tile of outputs
stays in vector registers while the whole sum over the terms runs, each input vector loaded
once per tile and used by several outputs.  Numba's loops cannot say that: LLVM vectorizes
the innermost loop only, so the running sums of a loop over positions live in memory and are
loaded and stored once per term (the shift-and-add of ``nbconv.kernels.conv``'s older form).
And on the AVX-512 CPUs we measured, LLVM's cost model prefers 256-bit vectors for
loops, half of what the multiply-adders take.

This module gives a kernel one more value type, ``Vec``: 16 float32 or 8 float64 lanes, an
LLVM ``<16 x float>`` / ``<8 x double>``, which Numba keeps in a register like any scalar
local.  A tile of running sums is then a handful of ``Vec`` locals:

    acc = simd.zeros(x)                          # 0 in every lane (x gives the dtype)
    for k in range(T):
        xv = simd.load(x_row, o + t0)            # x_row[o + t0 : o + t0 + lanes]
        acc = simd.fma(simd.splat(x, w[k]), xv, acc)     # acc + w[k] * xv, lane by lane
    simd.store(y_row, t0, acc)

The backend maps each operation to one instruction of the widest vector unit the CPU has: a
zmm register with AVX-512; two ymm registers with AVX2; four with NEON.  The results are the
same on all of them (lane by lane the same operations, fma with one rounding).

The operations
--------------
All take an array to name the dtype (float32 -> 16 lanes, float64 -> 8; 64 bytes either way):

- ``lanes(a)``                   the number of lanes, a compile-time constant
- ``zeros(a)``                   a vector of zeros
- ``splat(a, s)``                the scalar s (cast to a's dtype) in every lane
- ``broadcast(a, i)``            a[i] in every lane (one element loaded)
- ``load(a, i, count)``          a[i], ..., a[i + count - 1] in the first lanes, 0 in the rest
- ``gather(a, i, stride, count)`` a[i], a[i + stride], ..., count of them, 0 in the rest (a column)
- ``store(a, i, v, count)``      a[i + l] = v[l] for the lanes l < count, nothing else written
- ``scatter(a, i, stride, v, count)`` a[i + l*stride] = v[l] for l < count (a column written)
- ``fma(p, q, r)``               p * q + r lane by lane, rounded once (IEEE fused multiply-add)
- ``add(p, q)``                  p + q lane by lane
- ``interleave_low(p, q)``, ``interleave_high(p, q)``  p and q zipped lane by lane, the first and
                                 the second halves: p0 q0 p1 q1 ... (a row from its two stride phases)
- ``even_lanes(p, q)``, ``odd_lanes(p, q)``  the even and the odd lanes of p followed by q: the
                                 inverse (a row split into its two stride phases)
- ``copy(dst, i, src, j, count)`` dst[i : i + count] = src[j : j + count], a vector at a time
- ``copy_strided(dst, i, dst_stride, src, j, src_stride, count)`` the same between strided runs
- ``hsum(v)``                    the sum of the lanes, as a tree in a fixed order

``load``, ``gather``, ``store`` and ``scatter`` are masked: lanes at or past ``count`` are
neither read nor written, so a tile that ends in the middle of a vector stays inside its array
(AVX-512 and AVX2 do this in hardware; memory past the count is never touched, not even read).
With count >= lanes they are plain vector loads and stores (a gather is one instruction on
AVX-512 and AVX2, a scatter on AVX-512; lane by lane elsewhere).  ``a`` must be 1-D and
contiguous and i >= 0: like every kernel, these do no bounds checks, so the callers' loop
bounds are what keeps them inside.
``broadcast(a, i)`` is ``splat(a, a[i])`` without the test that Numba adds to ``a[i]`` for a
negative i: inside a loop over positions, a kernel's scalar loads then stay plain loads.
"""

from llvmlite import ir
from numba import njit, types
from numba.core import cgutils, errors
from numba.extending import intrinsic, models, register_model

__all__ = ["Vec", "lanes", "zeros", "splat", "broadcast", "load", "gather", "store", "scatter", "fma", "add", "hsum",
           "interleave_low", "interleave_high", "even_lanes", "odd_lanes",
           "copy", "copy_strided", "fill_zeros"]

VECTOR_BYTES = 64


class Vec(types.Type):
    """The Numba type of a vector of ``lanes`` values of ``dtype`` (a float type)."""

    def __init__(self, dtype, lanes):
        self.dtype, self.lanes = dtype, lanes
        super().__init__(name=f"Vec({dtype} x {lanes})")


@register_model(Vec)
class _VecModel(models.PrimitiveModel):
    def __init__(self, dmm, fe_type):
        element = dmm.lookup(fe_type.dtype).get_value_type()
        super().__init__(dmm, fe_type, ir.VectorType(element, fe_type.lanes))


def _vec_type(array):
    """The Vec of an array's dtype, or a typing error for anything but a float array."""
    if not isinstance(array, types.Array) or not isinstance(array.dtype, types.Float):
        raise errors.TypingError(f"simd: expected a float array, got {array}")
    return Vec(array.dtype, VECTOR_BYTES // (array.dtype.bitwidth // 8))


def _in_every_lane(builder, value, lanes):
    """The LLVM vector of ``lanes`` copies of the scalar ``value``."""
    vector = builder.insert_element(ir.Constant(ir.VectorType(value.type, lanes), ir.Undefined), value,
                                    ir.Constant(ir.IntType(32), 0))
    return builder.shuffle_vector(vector, ir.Constant(vector.type, ir.Undefined),
                                  ir.Constant(ir.VectorType(ir.IntType(32), lanes), [0] * lanes))


def _index64(builder, value):
    """An integer index widened to 64 bits."""
    return builder.sext(value, ir.IntType(64)) if value.type.width < 64 else value


def _lane_numbers(lanes):
    """The constant vector 0, 1, ..., lanes - 1 (64-bit)."""
    return ir.Constant(ir.VectorType(ir.IntType(64), lanes), list(range(lanes)))


def _lane_mask(builder, lanes, count):
    """The <lanes x i1> mask of the lanes l < count."""
    return builder.icmp_signed("<", _lane_numbers(lanes), _in_every_lane(builder, _index64(builder, count), lanes))


def _vector_access(context, builder, vec, array_type, array, index, count):
    """What a masked load or store of ``vec`` at array[index] needs: the LLVM vector type, the
    address of array[index] (a 1-D contiguous array) as a pointer to it, and the mask of the
    lanes below count."""
    llvm_vec = context.get_value_type(vec)
    data = context.make_array(array_type)(context, builder, array).data
    pointer = builder.bitcast(builder.gep(data, [index]), llvm_vec.as_pointer())
    return llvm_vec, pointer, _lane_mask(builder, vec.lanes, count)


def _intrinsic_name(base, vector_type):
    element = "f32" if isinstance(vector_type.element, ir.FloatType) else "f64"
    return f"{base}.v{vector_type.count}{element}"


@intrinsic
def lanes(typingctx, a):
    """The number of lanes of a's vector type (16 for float32, 8 for float64)."""
    count = _vec_type(a).lanes

    def codegen(context, builder, signature, args):
        return ir.Constant(ir.IntType(64), count)
    return types.intp(a), codegen


@intrinsic
def zeros(typingctx, a):
    """A vector of zeros in a's dtype."""
    vec = _vec_type(a)

    def codegen(context, builder, signature, args):
        return ir.Constant(context.get_value_type(vec), [0.0] * vec.lanes)
    return vec(a), codegen


@intrinsic
def splat(typingctx, a, s):
    """The scalar s, cast to a's dtype, in every lane."""
    vec = _vec_type(a)

    def codegen(context, builder, signature, args):
        return _in_every_lane(builder, context.cast(builder, args[1], signature.args[1], vec.dtype), vec.lanes)
    return vec(a, s), codegen


@intrinsic
def load(typingctx, a, i, count):
    """a[i : i + min(count, lanes)] in the first lanes, 0 in the others (no lane past count is read)."""
    vec = _vec_type(a)

    def codegen(context, builder, signature, args):
        llvm_vec, pointer, mask = _vector_access(context, builder, vec, signature.args[0], args[0], args[1], args[2])
        masked_load = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(llvm_vec, [llvm_vec.as_pointer(), ir.IntType(32), mask.type, llvm_vec]),
            _intrinsic_name("llvm.masked.load", llvm_vec) + ".p0")
        return builder.call(masked_load, [pointer, ir.Constant(ir.IntType(32), vec.dtype.bitwidth // 8), mask,
                                          ir.Constant(llvm_vec, [0.0] * vec.lanes)])
    return vec(a, i, count), codegen


@intrinsic
def broadcast(typingctx, a, i):
    """a[i] in every lane: one element loaded (no negative-index wraparound: i >= 0)."""
    vec = _vec_type(a)

    def codegen(context, builder, signature, args):
        data = context.make_array(signature.args[0])(context, builder, args[0]).data
        return _in_every_lane(builder, builder.load(builder.gep(data, [args[1]])), vec.lanes)
    return vec(a, i), codegen


@intrinsic
def gather(typingctx, a, i, stride, count):
    """a[i], a[i + stride], ..., a[i + (count - 1)*stride] in the first lanes, 0 in the others
    (no lane past count is read): a strided column as one vector."""
    vec = _vec_type(a)

    def codegen(context, builder, signature, args):
        llvm_vec = context.get_value_type(vec)
        pointers = _strided_pointers(context, builder, vec, signature.args[0], args[0], args[1], args[2])
        mask = _lane_mask(builder, vec.lanes, args[3])
        masked_gather = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(llvm_vec, [pointers.type, ir.IntType(32), mask.type, llvm_vec]),
            _intrinsic_name("llvm.masked.gather", llvm_vec) + f".v{vec.lanes}p0")
        return builder.call(masked_gather, [pointers, ir.Constant(ir.IntType(32), vec.dtype.bitwidth // 8), mask,
                                            ir.Constant(llvm_vec, [0.0] * vec.lanes)])
    return vec(a, i, stride, count), codegen


@intrinsic
def scatter(typingctx, a, i, stride, v, count):
    """a[i + l*stride] = v[l] for l < min(count, lanes); nothing else written (gather's inverse)."""
    vec = _vec_type(a)
    if v != vec:
        raise errors.TypingError(f"simd.scatter: a vector of {a.dtype} expected, got {v}")

    def codegen(context, builder, signature, args):
        llvm_vec = context.get_value_type(vec)
        pointers = _strided_pointers(context, builder, vec, signature.args[0], args[0], args[1], args[2])
        mask = _lane_mask(builder, vec.lanes, args[4])
        masked_scatter = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(ir.VoidType(), [llvm_vec, pointers.type, ir.IntType(32), mask.type]),
            _intrinsic_name("llvm.masked.scatter", llvm_vec) + f".v{vec.lanes}p0")
        builder.call(masked_scatter, [args[3], pointers, ir.Constant(ir.IntType(32), vec.dtype.bitwidth // 8), mask])
        return context.get_dummy_value()
    return types.none(a, i, stride, v, count), codegen


def _strided_pointers(context, builder, vec, array_type, array, index, stride):
    """The vector of addresses &a[index + l*stride], l = 0 ... lanes - 1 (a 1-D contiguous array)."""
    data = context.make_array(array_type)(context, builder, array).data
    start = builder.ptrtoint(builder.gep(data, [index]), ir.IntType(64))
    step = builder.mul(_index64(builder, stride), ir.Constant(ir.IntType(64), vec.dtype.bitwidth // 8))
    addresses = builder.add(_in_every_lane(builder, start, vec.lanes),
                            builder.mul(_lane_numbers(vec.lanes), _in_every_lane(builder, step, vec.lanes)))
    return builder.inttoptr(addresses, ir.VectorType(data.type, vec.lanes))


@intrinsic
def store(typingctx, a, i, v, count):
    """a[i + l] = v[l] for l < min(count, lanes); nothing past count is written."""
    vec = _vec_type(a)
    if v != vec:
        raise errors.TypingError(f"simd.store: a vector of {a.dtype} expected, got {v}")

    def codegen(context, builder, signature, args):
        llvm_vec, pointer, mask = _vector_access(context, builder, vec, signature.args[0], args[0], args[1], args[3])
        masked_store = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(ir.VoidType(), [llvm_vec, llvm_vec.as_pointer(), ir.IntType(32), mask.type]),
            _intrinsic_name("llvm.masked.store", llvm_vec) + ".p0")
        builder.call(masked_store, [args[2], pointer, ir.Constant(ir.IntType(32), vec.dtype.bitwidth // 8), mask])
        return context.get_dummy_value()
    return types.none(a, i, v, count), codegen


@intrinsic
def fma(typingctx, p, q, r):
    """p * q + r, lane by lane, with one rounding."""
    if not (isinstance(p, Vec) and p == q == r):
        raise errors.TypingError(f"simd.fma: three vectors of one type expected, got {p}, {q}, {r}")

    def codegen(context, builder, signature, args):
        llvm_vec = args[0].type
        function = cgutils.get_or_insert_function(builder.module, ir.FunctionType(llvm_vec, [llvm_vec] * 3),
                                                  _intrinsic_name("llvm.fma", llvm_vec))
        return builder.call(function, args)
    return p(p, q, r), codegen


@intrinsic
def add(typingctx, p, q):
    """p + q, lane by lane."""
    if not (isinstance(p, Vec) and p == q):
        raise errors.TypingError(f"simd.add: two vectors of one type expected, got {p}, {q}")

    def codegen(context, builder, signature, args):
        return builder.fadd(*args)
    return p(p, q), codegen


def _shuffle(name, p, q, lanes_of):
    """An intrinsic body: the lanes ``lanes_of(n)`` of the 2n lanes p[0..n-1], q[0..n-1] (LLVM's
    shufflevector with a constant mask: one permute instruction, vpermt2ps on AVX-512)."""
    if not (isinstance(p, Vec) and p == q):
        raise errors.TypingError(f"simd.{name}: two vectors of one type expected, got {p}, {q}")

    def codegen(context, builder, signature, args):
        mask = ir.Constant(ir.VectorType(ir.IntType(32), p.lanes), lanes_of(p.lanes))
        return builder.shuffle_vector(args[0], args[1], mask)
    return p(p, q), codegen


@intrinsic
def interleave_low(typingctx, p, q):
    """p[0], q[0], p[1], q[1], ..., p[n/2 - 1], q[n/2 - 1]: the first halves of p and q, zipped."""
    return _shuffle("interleave_low", p, q, lambda n: [l // 2 + (l % 2) * n for l in range(n)])


@intrinsic
def interleave_high(typingctx, p, q):
    """p[n/2], q[n/2], ..., p[n - 1], q[n - 1]: the second halves of p and q, zipped."""
    return _shuffle("interleave_high", p, q, lambda n: [n // 2 + l // 2 + (l % 2) * n for l in range(n)])


@intrinsic
def even_lanes(typingctx, p, q):
    """p[0], p[2], ..., q[0], q[2], ...: the even lanes of the 2n lanes p, q (the inverse of the
    interleaves: even_lanes(interleave_low(a, b), interleave_high(a, b)) is a)."""
    return _shuffle("even_lanes", p, q, lambda n: [2 * l for l in range(n)])


@intrinsic
def odd_lanes(typingctx, p, q):
    """p[1], p[3], ..., q[1], q[3], ...: the odd lanes of the 2n lanes p, q (b, in even_lanes' example)."""
    return _shuffle("odd_lanes", p, q, lambda n: [2 * l + 1 for l in range(n)])


@intrinsic
def hsum(typingctx, v):
    """v[0] + v[1] + ... as a tree: the upper half added to the lower half until one lane is left."""
    if not isinstance(v, Vec):
        raise errors.TypingError(f"simd.hsum: a vector expected, got {v}")

    def codegen(context, builder, signature, args):
        value, width = args[0], v.lanes
        while width > 1:
            width //= 2
            low = builder.shuffle_vector(value, value, ir.Constant(ir.VectorType(ir.IntType(32), width), list(range(width))))
            high = builder.shuffle_vector(value, value,
                                          ir.Constant(ir.VectorType(ir.IntType(32), width), list(range(width, 2 * width))))
            value = builder.fadd(low, high)
        return builder.extract_element(value, ir.Constant(ir.IntType(32), 0))
    return v.dtype(v), codegen


@njit(inline="always")
def copy(dst, i, src, j, count):
    """dst[i + l] = src[j + l] for l < count (both 1-D and contiguous), a vector at a time."""
    copy_strided(dst, i, 1, src, j, 1, count)


@njit(inline="always")
def fill_zeros(dst, i, count):
    """dst[i : i + count] = 0, a vector at a time."""
    V = lanes(dst)
    z = zeros(dst)
    for l in range(0, count, V):
        store(dst, i + l, z, count - l)


@njit(inline="always")
def copy_strided(dst, i, dst_stride, src, j, src_stride, count):
    """dst[i + l*dst_stride] = src[j + l*src_stride] for l < count, a vector at a time: gathers
    from a strided source, scatters to a strided destination (plain loads and stores where a
    stride is 1)."""
    V = lanes(dst)
    for l in range(0, count, V):
        if src_stride == 1:
            v = load(src, j + l, count - l)
        else:
            v = gather(src, j + l * src_stride, src_stride, count - l)
        if dst_stride == 1:
            store(dst, i + l, v, count - l)
        else:
            scatter(dst, i + l * dst_stride, dst_stride, v, count - l)
