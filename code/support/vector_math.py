"""Elementwise math in the engine's C code vectorised, NaN and infinity kept.

The engine compiles every elementwise expression (``tanh(x + b)``, the
sigmoid, ``softplus``, the gradients) into a C loop that calls the C
library's ``tanhf``, ``expf``, ``log1pf`` ... once per value.  g++ cannot
turn such a loop into vector code (8 or 16 values per instruction) unless
it knows a vector version of each function exists: glibc has them, in its
vector math library ``libmvec`` (``_ZGVdN8v_tanhf`` is ``tanhf`` on 8
floats with AVX2), but declares them only under ``-ffast-math``, which also
lets the compiler assume that no NaN or infinity ever occurs.  The
tutorials' divergence stop relies on NaN surviving, so fast-math is out.

Here the declarations are given without fast-math: every module the engine
compiles (when ``-fopenmp-simd`` is among its flags, our default
``gcc.cxxflags``; see :mod:`dltutorials.support.engine_setup`) gets, after
its ``#include <math.h>``, an ``#pragma omp declare simd`` for each function
whose vector versions this machine's ``libmvec`` has, and g++ vectorises the
loops that call them.  The vector versions are glibc's own, accurate to a
few units in the last place and correct for NaN and infinities (tested in
``tests/test_vector_math.py``).  A plain loop of ``tanhf(x + b)`` went from
11.7 to 1.0 ns per value on this machine.

Nothing is declared where there is no ``libmvec`` with these functions
(glibc older than 2.35, macOS, musl) or the flag is not set: the loops call
the scalar functions, one value at a time.

The loops themselves are marked for vector code where g++ would not dare:
the innermost loop over strided arrays (:func:`vectorised_loops`), and
Theano's loop over contiguous arrays, which an op writing in place ran one
value at a time (:func:`vectorised_contiguous_loop`: Adam's update of a 784
x 512 weight 1.29 -> 0.16 ms, the MLP with Adam's training step 6.4-7.6 ->
4.7-5.4 ms).  Where the innermost loop is short, the row of a 7 x 7 or
14 x 14 feature map with a bias or batch norm per channel, the loops over
each map are run as one where the arrays allow
(:func:`_merged_trailing_loops`; ``maximum(x + b, 0)`` over 128 x 64 x 14 x
14 floats: 3.7 -> 0.31 ms).  All of this needs only ``-fopenmp-simd``, not
fast-math: the arithmetic stays IEEE's, NaN and infinities pass through as
before.
"""
import ctypes
import functools
import platform
import re

#: Flag whose presence in a module's compile flags turns the declarations on.
FLAG = '-fopenmp-simd'

#: The engines key a compiled module by its op and compile flags, not by its
#: code: this define, among the flags, makes a change of the code below
#: compile anew rather than reuse modules compiled before it.
CODE_VERSION_FLAG = '-DDLTUTORIALS_VECTOR_MATH=5'

#: The math functions the engines' elementwise code calls that libmvec has in
#: vector form, for double and float (``exp`` and ``expf``).
FUNCTIONS = ('exp', 'log', 'log1p', 'expm1', 'tanh', 'sinh', 'cosh', 'sin', 'cos', 'tan',
             'log2', 'log10', 'exp2', 'erf', 'erfc', 'atan', 'asin', 'acos', 'pow', 'atan2')

#: glibc's x86-64 vector ABI: ISA letter and lanes (double, float).  g++ picks
#: the variant of the ISA it compiles for, and narrower ones for loop tails,
#: so a function is declared only when all four are there.
_VARIANTS = (('b', 2, 4), ('c', 4, 8), ('d', 4, 8), ('e', 8, 16))

_TWO_ARGUMENTS = ('pow', 'atan2')


def _symbols(name):
    arguments = 'vv' if name in _TWO_ARGUMENTS else 'v'
    for isa, double_lanes, float_lanes in _VARIANTS:
        yield '_ZGV%sN%d%s_%s' % (isa, double_lanes, arguments, name)
        yield '_ZGV%sN%d%s_%sf' % (isa, float_lanes, arguments, name)


@functools.lru_cache(maxsize=None)
def vector_functions():
    """The names in :data:`FUNCTIONS` whose vector versions this machine's libmvec has."""
    if platform.machine() != 'x86_64' or platform.system() != 'Linux':
        return ()
    try:
        # By its name, not ctypes.util.find_library, which runs ldconfig: every
        # process that imports the tutorials asks.
        library = ctypes.CDLL('libmvec.so.1')
    except OSError:
        return ()
    return tuple(name for name in FUNCTIONS
                 if all(hasattr(library, symbol) for symbol in _symbols(name)))


def declarations(functions):
    """C++ lines declaring ``functions`` (double and float) as having vector versions.

    To follow ``#include <math.h>``: the exception specification (``__THROW``)
    must match that header's declarations.
    """
    lines = ['// dltutorials.support.vector_math: glibc\'s vector versions (libmvec)',
             'extern "C" {']
    for name in functions:
        arguments = '(double, double)' if name in _TWO_ARGUMENTS else '(double)'
        lines += ['#pragma omp declare simd notinbranch',
                  'double %s%s __THROW;' % (name, arguments),
                  '#pragma omp declare simd notinbranch',
                  'float %sf%s __THROW;' % (name, arguments.replace('double', 'float'))]
    lines.append('}')
    return '\n'.join(lines) + '\n'


def with_declarations(src_code, preargs, common_headers):
    """``src_code`` with the declarations after its common headers, where ``FLAG`` is set.

    ``common_headers`` is the block every engine module starts with (it
    includes ``math.h``); other code, or a compilation without the flag, is
    returned as it is.
    """
    functions = vector_functions()
    if FLAG not in preargs or not functions:
        return src_code
    code = src_code.lstrip()       # (precompiled_headers recognises a module the same way)
    if not code.startswith(common_headers):
        return src_code
    return common_headers + declarations(functions) + code[len(common_headers):]


def vectorised_loops(make_reordered_loop):
    """The engine's ``make_reordered_loop``, with a vector version of its innermost loop.

    The elementwise loops index every operand with strides known only at run
    time (``x_iter + x_stride_l1 * ITER_1``): g++ leaves such a loop scalar, or
    gathers values one by one into 4-wide vectors.  Most of them, though,
    run along rows that are contiguous, with some operands broadcast (the
    bias of ``tanh(x + b)``).  So the innermost loop is written twice: for
    when, at run time, every operand's innermost stride is 1 (or 0 where the
    operand is broadcast along that axis), a copy with those strides written
    in and marked ``#pragma omp simd`` (the iterations of an elementwise loop
    are independent), and the loop as it was, for every other case.  Loops
    that can leave early (a scalar op's error check jumps to the function's
    failure label) stay as they are: an OpenMP loop may not.
    """
    @functools.wraps(make_reordered_loop)
    def versioned(init_loop_orders, olv_index, dtypes, inner_task, sub, openmp=None):
        code = make_reordered_loop(init_loop_orders, olv_index, dtypes, inner_task, sub, openmp)
        nnested = len(init_loop_orders[olv_index])
        if (nnested == 0 or (openmp and nnested == 1) or 'goto' in inner_task
                or 'return' in inner_task):
            return code
        last = nnested - 1
        innermost = _loop_text(code, last)
        if innermost is None:
            return code
        conditions, vector = [], innermost
        for i, order in enumerate(init_loop_orders):
            var = sub['lv%d' % i]
            stride = '%s_stride_l%d' % (var, last)
            if stride + '*ITER_%d' % last not in innermost:
                return code
            broadcast = len(order) > 0 and order[-1] == 'x'
            conditions.append('%s == %d' % (stride, 0 if broadcast else 1))
            vector = vector.replace('+%s*ITER_%d' % (stride, last),
                                    '' if broadcast else '+ITER_%d' % last)
        return _merged_trailing_loops(
            code.replace(innermost, _versions(conditions, vector, innermost)), innermost,
            init_loop_orders, sub, openmp)
    return versioned


def _loop_text(code, d):
    """The text of loop ``d`` in the engine's ``code``, from its ``for`` to its end
    marker; ``None`` unless there is exactly one."""
    found = re.findall(r'for\((?:int|npy_intp) ITER_%d = 0;.*?\} // end loop %d\n' % (d, d),
                       code, re.DOTALL)
    return found[0] if len(found) == 1 else None


def _versions(conditions, vector_loop, loop):
    """C code running ``vector_loop``, marked for vector code, where every one of
    ``conditions`` holds at run time, and ``loop`` otherwise."""
    return 'if (%s) {\n#pragma omp simd\n%s} else {\n%s}\n' % (
        ' && '.join(conditions), vector_loop, loop)


def _merged_trailing_loops(code, innermost, init_loop_orders, sub, openmp):
    """``code`` with its innermost loops run as one where the arrays allow it.

    A batch of feature maps, ``(batch, channels, rows, columns)``, with a
    bias or a batch-norm statistic per channel, ``(1, channels, 1, 1)``, runs
    four nested loops whose innermost one is a row of the map: 7 or 14
    values, too few for vector code (16 floats a vector here, and the rest
    one at a time, with a branch each for ``maximum``).  Where, at run time,
    every operand is contiguous over the trailing loops (or broadcast along
    all of them), those loops are one loop over a whole map (49 or 196
    values): ``code`` gets that loop, marked for vector code, and keeps its
    own loops for every other case.  The trailing loops merged are those
    along which each operand is broadcast in all or none (and never OpenMP's
    parallel outermost loop).  ``innermost`` is the innermost loop as the
    engine wrote it.
    """
    last = len(init_loop_orders[0]) - 1
    lowest = 1 if openmp else 0
    first = last
    while first > lowest and all((order[first - 1] == 'x') == (order[last] == 'x')
                                 for order in init_loop_orders):
        first -= 1
    if first == last:
        return code
    merged = range(first, last + 1)
    index = 'ITER_%d_%d' % (first, last)
    body = innermost[innermost.index('{ // begin loop %d' % last):]
    conditions = []
    for i, order in enumerate(init_loop_orders):
        var, broadcast = sub['lv%d' % i], order[last] == 'x'
        run = 1
        for d in reversed(merged):
            term = '+%s_stride_l%d*ITER_%d' % (var, d, d)
            if term not in body:
                return code
            body = body.replace(term, '+' + index if d == last and not broadcast else '')
            conditions.append('%s_stride_l%d == %s' % (var, d, 0 if broadcast else run))
            run = 'TOTAL_%d' % d if run == 1 else '%s*TOTAL_%d' % (run, d)
    if any(re.search(r'\bITER_%d\b' % d, body) for d in merged):
        return code
    nested = _loop_text(code, first)
    if nested is None:
        return code
    size = '*'.join(['(npy_intp)TOTAL_%d' % first] + ['TOTAL_%d' % d for d in merged[1:]])
    one_loop = 'for(npy_intp %s = 0; %s<%s; %s++)\n%s' % (index, index, size, index, body)
    return code.replace(nested, _versions(conditions, one_loop, nested))


_CONTIGUOUS_LOOP = 'for(int i=0; i<n; i++){'
_PARALLEL_LOOP = re.compile(r'#pragma omp parallel for (if\(n>=\d+\))\s*$')


def _loop_body(code, start):
    """The text of the braces that open at or after ``start`` (``None`` if they never close)."""
    depth = 0
    for end in range(code.index('{', start), len(code)):
        depth += {'{': 1, '}': -1}.get(code[end], 0)
        if depth == 0:
            return code[start:end + 1]
    return None


def vectorised_contiguous_loop(c_code):
    """The engine's ``Elemwise.c_code``, its loop over contiguous arrays marked for vector code.

    Where every operand is contiguous, the elementwise code runs one flat
    loop, ``for(int i=0; i<n; i++)``, over pointers g++ cannot tell apart: it
    vectorises such a loop only behind a run-time check that no output
    overlaps an input, and an op that writes in place (most of them, after
    the engine's rewrites: Adam's ``param - step * m / (sqrt(v) / c + eps)``)
    always fails the check, so its loop ran one value at a time (1.31 ms
    for a 784 x 512 float32 weight here; 3.3 ns a value).  The iterations of
    an elementwise loop are independent (an output written in place is read
    at the same index only), so the loop is marked ``#pragma omp simd``, or
    ``omp parallel for simd`` where the op uses OpenMP threads.  Loops that can
    leave early (``goto``, ``return``) stay as they are, as in
    :func:`vectorised_loops`.
    """
    @functools.wraps(c_code)
    def marked(self, node, nodename, inames, onames, sub):
        code = c_code(self, node, nodename, inames, onames, sub)
        if code.count(_CONTIGUOUS_LOOP) != 1:
            return code
        start = code.index(_CONTIGUOUS_LOOP)
        body = _loop_body(code, start)
        if body is None or 'goto' in body or 'return' in body:
            return code
        before = code[:start]
        parallel = _PARALLEL_LOOP.search(before)
        if parallel:
            return (before[:parallel.start()] + '#pragma omp parallel for simd %s\n'
                    % parallel.group(1) + code[start:])
        return before + '#pragma omp simd\n' + code[start:]
    return marked


def float_comparisons(inner_task):
    """``inner_task`` (the C code of one element) with each comparison's result that is only
    cast to float32 kept as a float32 itself (the same 0 or 1).

    A binomial sample, ``float32(u < p)``, keeps ``u < p`` in a byte
    (``npy_bool``) before the cast; g++ does not vectorise a loop with 1-byte
    values among its 4-byte ones ("no vectype"), so the RBM's sampling, the
    sigmoid and the comparison in one loop, ran one value at a time.
    """
    for comparison in re.findall(r'npy_bool (\w+);', inner_task):
        cast_only = (len(re.findall(r'\b%s\b' % comparison, inner_task)) == 3
                     and re.search(r'\b%s = \(\w+ < \w+\);' % comparison, inner_task)
                     and '(npy_float32)%s;' % comparison in inner_task)
        if cast_only:
            inner_task = inner_task.replace('npy_bool %s;' % comparison,
                                            'npy_float32 %s;' % comparison)
    return inner_task


def rewriting_element_code(make_reordered_loop, rewrite):
    """The engine's ``make_reordered_loop``, its element's code (``inner_task``) passed
    through ``rewrite`` first (:func:`float_comparisons`, ``fast_sigmoid``'s sampling)."""
    @functools.wraps(make_reordered_loop)
    def rewritten(init_loop_orders, olv_index, dtypes, inner_task, sub, openmp=None):
        return make_reordered_loop(init_loop_orders, olv_index, dtypes, rewrite(inner_task),
                                   sub, openmp)
    return rewritten


def install(elemwise_cgen, elemwise, comparisons_as_floats=False):
    """Mark the elementwise loops of the code generator and of ``Elemwise`` (modules given);
    and keep comparisons cast to float32 as float32 (:func:`float_comparisons`), if asked."""
    if not getattr(elemwise_cgen.make_reordered_loop, 'vectorised', False):
        loop = elemwise_cgen.make_reordered_loop
        if comparisons_as_floats:
            loop = rewriting_element_code(loop, float_comparisons)
        elemwise_cgen.make_reordered_loop = vectorised_loops(loop)
        elemwise_cgen.make_reordered_loop.vectorised = True
    if not getattr(elemwise.Elemwise.c_code, 'vectorised', False):
        elemwise.Elemwise.c_code = vectorised_contiguous_loop(elemwise.Elemwise.c_code)
        elemwise.Elemwise.c_code.vectorised = True
