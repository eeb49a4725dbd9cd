"""The recurrent layers' loop over time as one C op, forward and backward, at PyTorch's speed.

``scan`` runs the step function's graph once per time step: for the small
matrices of a recurrent layer (a minibatch of 64 x 256 units) the time goes
into running a dozen small ops per step, not into arithmetic.  The ops here
do what ``torch.nn.LSTM`` does on a CPU: for the whole sequence, one call of
the BLAS's GEMM per step for the recurrent product ``h_{t-1} U``, and one C
loop per step for the gates, the cell and the mask; the backward op walks
the sequence back the same way and computes the recurrent weights' gradient
as one GEMM over all steps at the end.  The minibatch's sequences never
meet in the recurrence, so both ops split them into parts, one thread each
(see ``THREAD_SUPPORT`` below).

:func:`recurrence` is what :class:`~dltutorials.recurrent.RecurrentLayer`
calls with ``loop='fused'``.  It gives the same states as the scan of the
layers' step functions (``tests/test_fused_recurrent.py`` holds them equal,
outputs and gradients, with masks, on both engines); the layers' input
projections ``x_t W + b`` stay outside, as one matrix product, as in the
scan version.

The forward op returns, besides the states, what the backward op needs
(the gates after their nonlinearity, per step): memory of (time, batch,
k * n_hidden) traded for not computing them again.  Both ops are compiled
by the engine's C backend (Theano 1.0.5 or PyTensor), linked to the BLAS
the engine uses (``blas.ldflags``; with none, the engine's own fallback).
"""
import functools
import hashlib
import os
from pathlib import Path

from dltutorials.support.engine import ENGINE, T, theano

if ENGINE == 'theano':
    from theano.gof import Apply, Op
    from theano.gof.cmodule import GCC_compiler
    from theano.gradient import DisconnectedType, grad_undefined
    from theano.tensor.blas import ldflags
    from theano.tensor.blas_headers import blas_header_text
else:
    from pytensor.graph.basic import Apply
    from pytensor.link.c.cmodule import GCC_compiler
    from pytensor.link.c.op import COp as Op
    from pytensor.gradient import DisconnectedType, grad_undefined
    from pytensor.tensor.blas import blas_header_text, ldflags

__all__ = ['recurrence', 'available', 'CELLS']

SOURCE_DIGEST = hashlib.sha256(Path(__file__).read_bytes()).hexdigest()[:16]

#: cell: (gate blocks in the weights, states, blocks kept for the backward pass)
CELLS = {'rnn': (1, 1, 1), 'lstm': (4, 2, 5), 'gru': (3, 1, 4)}


def available():
    """True where the engine compiles C (a C++ compiler is configured)."""
    return bool(theano.config.cxx)


def recurrence(cell, projected, b, mask, U, initial_states):
    """The states of every step of a ``cell`` layer: h (and the LSTM's c), each (time, batch, n).

    ``projected``: x_t W of every step (time, batch, n_gates * n); ``b`` the
    biases (n_gates * n,), added inside the op (their gradient is summed
    there too); ``mask`` (time, batch); ``U`` (n, n_gates * n);
    ``initial_states``: h (and c), each (batch, n).
    """
    dtype = projected.dtype
    outputs = FusedRecurrence(cell)(T.as_tensor_variable(projected), T.cast(b, dtype),
                                    T.cast(mask, dtype), T.as_tensor_variable(U),
                                    *[T.cast(state, dtype) for state in initial_states])
    return outputs[:-1]        # (the last output is the backward pass's store)


#: float32: exp by range reduction and a polynomial (the coefficients of Cephes's expf),
#: without branches or calls, so that gcc vectorises the gate loops; sigmoid and tanh
#: from it.  Measured against double precision on [-80, 80]: exp within 8.4e-8
#: relative, sigmoid 1.5e-7 relative, tanh 1.8e-7 absolute; a NaN stays NaN (the
#: divergence stop needs it), an infinite input saturates.  float64 uses the C
#: library's exp and tanh.
MATH_SUPPORT = '''
#ifndef DLT_FUSED_MATH
#define DLT_FUSED_MATH
#define DLT_INLINE static inline __attribute__((always_inline))
#define DLT_STEP static __attribute__((noinline)) void
DLT_INLINE float dlt_expf(float x) {
    x = x < -87.0f ? -87.0f : (x > 88.0f ? 88.0f : x);    /* (a NaN stays NaN) */
    const float n = floorf(x * 1.44269504088896341f + 0.5f);
    const float r = x - n * 0.693359375f + n * 2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    const int bits = ((int)n + 127) << 23;
    float scale;
    memcpy(&scale, &bits, sizeof(float));
    return p * scale;
}
DLT_INLINE float dlt_sigmoidf(float x) { return 1.0f / (1.0f + dlt_expf(-x)); }
DLT_INLINE float dlt_tanhf(float x) { return 1.0f - 2.0f / (1.0f + dlt_expf(2.0f * x)); }
static inline double dlt_sigmoid(double x) { return 1.0 / (1.0 + exp(-x)); }
#endif
'''


@functools.lru_cache(maxsize=None)
def _vector_width_args():
    """``-mprefer-vector-width=512`` where the engine compiles for an AVX-512 CPU.

    gcc and clang use 256-bit vectors there unless told otherwise; with 512-bit
    ones the LSTM's forward gate loop (batch 128 x 128 units) took 52 us a step
    instead of 67 on an AVX-512 Xeon.
    """
    return ['-mprefer-vector-width=512'] if '-mavx512f' in GCC_compiler.compile_args() else []


def _blas_support():
    """Declarations of the BLAS's gemm (or the engine's replacement when no BLAS is linked).

    The replacement (``blas.ldflags`` empty) defines gemm with non-const
    matrix arguments, a C++ overload beside the BLAS's declaration: the calls
    pass non-const pointers so that they find it.
    """
    return blas_header_text()



#: The per-step loops, as C functions of each dtype (``real``): in functions of
#: their own (``noinline``), with ``__restrict__`` pointers, gcc vectorises them;
#: inlined into the engine's generated function, with its gotos, it did not
#: (measured: the LSTM's forward pass at batch 64 x 256 units x 100 steps, 75 ms
#: scalar, 33 ms vectorised).  Rows are the
#: minibatch's sequences, n the units, Gn the gate blocks side by side.
STEP_FUNCTIONS = r"""
/* hU (B x Gn) = h_prev U, from the gemm; p (B x Gn) = x W of the step; the
   pre-activations are their sum plus the biases, added here rather than in a
   pass of their own before the gemm.  The states of a padded step (mask 0)
   are those of the step before. */
DLT_STEP dlt_rnn_forward_%(ctype)s(npy_intp n_batch, npy_intp n, const real* __restrict__ hU,
        const real* __restrict__ p, const real* __restrict__ bias, const real* __restrict__ m,
        const real* __restrict__ h_prev, real* __restrict__ h, real* __restrict__ kept) {
    for (npy_intp b = 0; b < n_batch; ++b) {
        const real mask = m[b];
        for (npy_intp j = 0; j < n; ++j) {
            const npy_intp s = b * n + j;
            const real h_new = TANH(hU[s] + p[s] + bias[j]);
            kept[s] = h_new;
            h[s] = mask * h_new + (1 - mask) * h_prev[s];
        }
    }
}

DLT_STEP dlt_lstm_forward_%(ctype)s(npy_intp n_batch, npy_intp n, const real* __restrict__ hU_all,
        const real* __restrict__ p_all, const real* __restrict__ bias, const real* __restrict__ m,
        const real* __restrict__ h_prev, real* __restrict__ h,
        const real* __restrict__ c_prev, real* __restrict__ c, real* __restrict__ kept) {
    for (npy_intp b = 0; b < n_batch; ++b) {
        const real mask = m[b];
        const real* __restrict__ hU = hU_all + b * 4 * n;   /* the blocks i, f, o, candidate */
        const real* __restrict__ p = p_all + b * 4 * n;
        real* __restrict__ k = kept + b * 5 * n;         /* kept: i, f, o, candidate, tanh(c_new) */
        for (npy_intp j = 0; j < n; ++j) {
            const npy_intp s = b * n + j;
            const real in_gate = SIGMOID(hU[j] + p[j] + bias[j]);
            const real forget = SIGMOID(hU[n + j] + p[n + j] + bias[n + j]);
            const real out_gate = SIGMOID(hU[2 * n + j] + p[2 * n + j] + bias[2 * n + j]);
            const real candidate = TANH(hU[3 * n + j] + p[3 * n + j] + bias[3 * n + j]);
            const real c_new = forget * c_prev[s] + in_gate * candidate;
            const real tanh_c = TANH(c_new);
            k[j] = in_gate; k[n + j] = forget; k[2 * n + j] = out_gate;
            k[3 * n + j] = candidate; k[4 * n + j] = tanh_c;
            c[s] = mask * c_new + (1 - mask) * c_prev[s];
            h[s] = mask * (out_gate * tanh_c) + (1 - mask) * h_prev[s];
        }
    }
}

/* hU = h_prev U (B x 3n), x = x W (B x 3n): the blocks r, z, n. */
DLT_STEP dlt_gru_forward_%(ctype)s(npy_intp n_batch, npy_intp n, const real* __restrict__ hU_all,
        const real* __restrict__ x_all, const real* __restrict__ bias, const real* __restrict__ m,
        const real* __restrict__ h_prev, real* __restrict__ h, real* __restrict__ kept) {
    for (npy_intp b = 0; b < n_batch; ++b) {
        const real mask = m[b];
        const real* __restrict__ hU = hU_all + b * 3 * n;
        const real* __restrict__ x = x_all + b * 3 * n;
        real* __restrict__ k = kept + b * 4 * n;         /* kept: r, z, n, (h_prev U)_n */
        for (npy_intp j = 0; j < n; ++j) {
            const npy_intp s = b * n + j;
            const real reset = SIGMOID(x[j] + bias[j] + hU[j]);
            const real update = SIGMOID(x[n + j] + bias[n + j] + hU[n + j]);
            const real candidate = TANH(x[2 * n + j] + bias[2 * n + j] + reset * hU[2 * n + j]);
            const real h_new = (1 - update) * candidate + update * h_prev[s];
            k[j] = reset; k[n + j] = update; k[2 * n + j] = candidate; k[3 * n + j] = hU[2 * n + j];
            h[s] = mask * h_new + (1 - mask) * h_prev[s];
        }
    }
}

/* The gradients, one step back.  dh holds, on entry, the gradient reaching h_t
   from the steps after t (dh_out: from the layer's output); on exit, the part
   of the gradient at h_{t-1} that does not pass through U (the gemm adds the
   rest).  A padded step passes its gradient straight to the state before. */
DLT_STEP dlt_rnn_backward_%(ctype)s(npy_intp n_batch, npy_intp n, const real* __restrict__ kept,
        const real* __restrict__ m, const real* __restrict__ dh_out, real* __restrict__ dh,
        real* __restrict__ dp) {
    for (npy_intp b = 0; b < n_batch; ++b) {
        const real mask = m[b];
        for (npy_intp j = 0; j < n; ++j) {
            const npy_intp s = b * n + j;
            const real d_h = dh_out[s] + dh[s];
            const real h_new = kept[s];
            dp[s] = mask * d_h * (1 - h_new * h_new);
            dh[s] = (1 - mask) * d_h;
        }
    }
}

DLT_STEP dlt_lstm_backward_%(ctype)s(npy_intp n_batch, npy_intp n, const real* __restrict__ kept,
        const real* __restrict__ m, const real* __restrict__ c_prev,
        const real* __restrict__ dh_out, const real* __restrict__ dc_out,
        real* __restrict__ dh, real* __restrict__ dc, real* __restrict__ dp) {
    for (npy_intp b = 0; b < n_batch; ++b) {
        const real mask = m[b];
        const real* __restrict__ k = kept + b * 5 * n;
        real* __restrict__ da = dp + b * 4 * n;
        for (npy_intp j = 0; j < n; ++j) {
            const npy_intp s = b * n + j;
            const real d_h = dh_out[s] + dh[s], d_c = dc_out[s] + dc[s];
            const real in_gate = k[j], forget = k[n + j], out_gate = k[2 * n + j];
            const real candidate = k[3 * n + j], tanh_c = k[4 * n + j];
            const real dh_new = mask * d_h;
            const real dc_new = mask * d_c + dh_new * out_gate * (1 - tanh_c * tanh_c);
            da[j] = dc_new * candidate * in_gate * (1 - in_gate);
            da[n + j] = dc_new * c_prev[s] * forget * (1 - forget);
            da[2 * n + j] = dh_new * tanh_c * out_gate * (1 - out_gate);
            da[3 * n + j] = dc_new * in_gate * (1 - candidate * candidate);
            dc[s] = (1 - mask) * d_c + dc_new * forget;
            dh[s] = (1 - mask) * d_h;
        }
    }
}

/* dx: at x W + b; dr: at h_prev U (they differ in the n block, by the reset gate). */
DLT_STEP dlt_gru_backward_%(ctype)s(npy_intp n_batch, npy_intp n, const real* __restrict__ kept,
        const real* __restrict__ m, const real* __restrict__ h_prev,
        const real* __restrict__ dh_out, real* __restrict__ dh, real* __restrict__ dx_all,
        real* __restrict__ dr_all) {
    for (npy_intp b = 0; b < n_batch; ++b) {
        const real mask = m[b];
        const real* __restrict__ k = kept + b * 4 * n;
        real* __restrict__ dx = dx_all + b * 3 * n;
        real* __restrict__ dr = dr_all + b * 3 * n;
        for (npy_intp j = 0; j < n; ++j) {
            const npy_intp s = b * n + j;
            const real d_h = dh_out[s] + dh[s];
            const real reset = k[j], update = k[n + j], candidate = k[2 * n + j];
            const real hU_n = k[3 * n + j];
            const real dh_new = mask * d_h;
            const real d_candidate = dh_new * (1 - update) * (1 - candidate * candidate);
            const real d_update = dh_new * (h_prev[s] - candidate) * update * (1 - update);
            const real d_reset = d_candidate * hU_n * reset * (1 - reset);
            dx[j] = d_reset; dx[n + j] = d_update; dx[2 * n + j] = d_candidate;
            dr[j] = d_reset; dr[n + j] = d_update; dr[2 * n + j] = d_candidate * reset;
            dh[s] = (1 - mask) * d_h + dh_new * update;
        }
    }
}

/* db_sum (Gn,) += the rows of dp (B x Gn), in double. */
DLT_STEP dlt_sum_rows_%(ctype)s(npy_intp n_batch, npy_intp Gn, const real* __restrict__ dp,
                                   double* __restrict__ db_sum) {
    for (npy_intp b = 0; b < n_batch; ++b)
        for (npy_intp g = 0; g < Gn; ++g)
            db_sum[g] += dp[b * Gn + g];
}
"""


#: The minibatch's rows never meet in the recurrence (only the weights'
#: gradients add them up), so the rows can be split into parts, one thread
#: each, every part's gemms single-threaded: no thread waits at each step for
#: another, and the gate loops run on every core.  Measured against one
#: thread calling OpenBLAS on 2 threads (LSTM, 28 steps of batch 128 x 128
#: units): forward 4.7 -> 3.4 ms, forward and backward 15.1 -> 11.8 ms.  Only
#: with an OpenBLAS whose thread count can be set (it is set to 1 meanwhile,
#: then back) and whose idle threads stop spinning soon
#: (``OPENBLAS_THREAD_TIMEOUT``, which :mod:`~dltutorials.support.engine_setup`
#: sets): with OpenBLAS's default, its threads spin on the cores for 0.1 s
#: after each call, and the split step took 17 ms.  With another BLAS, or
#: numpy's (which needs Python's lock), one part.
THREAD_SUPPORT = r"""
#ifndef DLT_ROW_PARTS
#define DLT_ROW_PARTS
#define DLT_MAX_PARTS 64
#define DLT_MIN_ROWS 16    /* rows per part at least: smaller gemms lose more than threads win */
#define DLT_MAX_SPIN 24    /* OPENBLAS_THREAD_TIMEOUT at most (2**24 ticks: a few ms) */
#if defined(__unix__) || defined(__APPLE__)
#include <pthread.h>
#include <dlfcn.h>
#define DLT_THREADS 1
#else
#define DLT_THREADS 0
#endif

/* One part of the minibatch (rows b0 .. b1-1) and every array a loop reads or writes. */
typedef struct {
    npy_intp n_steps, n_batch, n, b0, b1;
    const void *P, *M, *U, *Ut, *bias, *h0, *c0, *dHs, *dCs;
    void *Hs, *Cs, *store, *work, *dP, *D, *dh, *dc;
    double* db_sum;
} dlt_rows;
typedef void (*dlt_rows_fn)(const dlt_rows*);
typedef void (*dlt_set_threads_fn)(int);
typedef int (*dlt_get_threads_fn)(void);

#if DLT_THREADS
typedef struct { dlt_rows_fn fn; const dlt_rows* rows; } dlt_job;
static void* dlt_run_job(void* job) {
    ((dlt_job*)job)->fn(((dlt_job*)job)->rows);
    return NULL;
}

/* The thread-count functions of the OpenBLAS that defines gemm (0 where it has none). */
static int dlt_blas_thread_functions(void* gemm, dlt_set_threads_fn* set, dlt_get_threads_fn* get) {
    static const char* names[][2] = {
        {"openblas_set_num_threads", "openblas_get_num_threads"},
        {"scipy_openblas_set_num_threads", "scipy_openblas_get_num_threads"},
        {"openblas_set_num_threads64_", "openblas_get_num_threads64_"},
        {"scipy_openblas_set_num_threads64_", "scipy_openblas_get_num_threads64_"}};
    Dl_info info;
    *set = NULL; *get = NULL;
    if (!dladdr(gemm, &info) || !info.dli_fname)
        return 0;
    void* library = dlopen(info.dli_fname, RTLD_LAZY | RTLD_NOLOAD);
    if (!library)
        return 0;
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]) && !*set; ++i) {
        *set = (dlt_set_threads_fn)dlsym(library, names[i][0]);
        *get = (dlt_get_threads_fn)dlsym(library, names[i][1]);
        if (!*get) *set = NULL;
    }
    dlclose(library);    /* (a no-load handle: the library stays) */
    return *set != NULL;
}
#endif

/* How many parts to split n_batch rows into: the BLAS's thread count, where it can be set. */
static int dlt_row_parts(void* gemm, npy_intp n_batch, dlt_set_threads_fn* set, int* blas_threads) {
    *set = NULL; *blas_threads = 1;
#if DLT_THREADS
    static int looked = 0;
    static dlt_set_threads_fn found_set = NULL;
    static dlt_get_threads_fn found_get = NULL;
    if (!looked) {
        dlt_blas_thread_functions(gemm, &found_set, &found_get);
        looked = 1;
    }
    /* OpenBLAS's threads spin for 2**OPENBLAS_THREAD_TIMEOUT clock ticks after each call
       (2**28 by default: 0.1 s) and would take the cores from the parts' threads. */
    const char* timeout = getenv("OPENBLAS_THREAD_TIMEOUT");
    if (!found_set || !timeout || atoi(timeout) > DLT_MAX_SPIN)
        return 1;
    int parts = found_get();
    if (parts > n_batch / DLT_MIN_ROWS) parts = (int)(n_batch / DLT_MIN_ROWS);
    if (parts > DLT_MAX_PARTS) parts = DLT_MAX_PARTS;
    if (parts < 2)
        return 1;
    *set = found_set; *blas_threads = found_get();
    return parts;
#else
    return 1;
#endif
}

/* Part k of n_parts of a minibatch of n_batch rows: its sizes and rows, no arrays yet. */
static void dlt_start_part(dlt_rows* part, npy_intp n_steps, npy_intp n_batch, npy_intp n,
                           int k, int n_parts) {
    memset(part, 0, sizeof(dlt_rows));
    part->n_steps = n_steps; part->n_batch = n_batch; part->n = n;
    part->b0 = n_batch * k / n_parts;
    part->b1 = n_batch * (k + 1) / n_parts;
}

/* fn on every part: each in a thread of its own (the first in this one), the BLAS
   single-threaded meanwhile.  A thread that cannot start runs its part here. */
static void dlt_run_parts(dlt_rows_fn fn, const dlt_rows* parts, int n_parts,
                          dlt_set_threads_fn set, int blas_threads) {
#if DLT_THREADS
    if (n_parts > 1 && set) {
        pthread_t threads[DLT_MAX_PARTS];
        dlt_job jobs[DLT_MAX_PARTS];
        int started[DLT_MAX_PARTS];
        set(1);
        for (int k = 1; k < n_parts; ++k) {
            jobs[k].fn = fn; jobs[k].rows = parts + k;
            started[k] = pthread_create(&threads[k], NULL, dlt_run_job, &jobs[k]) == 0;
            if (!started[k]) fn(parts + k);
        }
        fn(parts);
        for (int k = 1; k < n_parts; ++k)
            if (started[k]) pthread_join(threads[k], NULL);
        set(blas_threads);
        return;
    }
#endif
    for (int k = 0; k < n_parts; ++k)
        fn(parts + k);
}
#endif
"""

#: The loops over time of one part of the minibatch (rows b0 .. b1-1 of every
#: step), forward and back, for each cell: its gemm and step function per step.
ROW_FUNCTIONS = r"""
static void dlt_%(cell)s_forward_rows_%(ctype)s(const dlt_rows* a) {
    const npy_intp n = a->n, Gn = %(G)d * n, B = a->n_batch, b0 = a->b0, rows = a->b1 - a->b0;
    const real* P = (const real*)a->P;
    const real* M = (const real*)a->M;
    const real* bias = (const real*)a->bias;
    const real* h0 = (const real*)a->h0 + b0 * n;
    real* Hs = (real*)a->Hs;
    real* store = (real*)a->store;
    real* work = (real*)a->work;
    int gemm_m = (int)Gn, gemm_n = (int)rows, gemm_k = (int)n;
    real one = 1, zero = 0;
    char no = 'N';
    for (npy_intp t = 0; t < a->n_steps; ++t) {
        const real* h_prev = t ? Hs + ((t - 1) * B + b0) * n : h0;
        real* h = Hs + (t * B + b0) * n;
        real* kept = store + (t * B + b0) * %(K)d * n;
        const real* m = M + t * B + b0;
        const real* p = P + (t * B + b0) * Gn;
        /* work (rows x Gn) = h_prev U: column-major work^T = U^T h_prev^T */
        if (rows && n)
            %(gemm)s(&no, &no, &gemm_m, &gemm_n, &gemm_k, &one, (real*)a->U, &gemm_m, (real*)h_prev, &gemm_k, &zero, work, &gemm_m);
        else
            memset(work, 0, sizeof(real) * rows * Gn);
        %(forward_step)s
    }
}

static void dlt_%(cell)s_backward_rows_%(ctype)s(const dlt_rows* a) {
    const npy_intp n = a->n, Gn = %(G)d * n, B = a->n_batch, b0 = a->b0, rows = a->b1 - a->b0;
    const real* M = (const real*)a->M;
    const real* h0 = (const real*)a->h0 + b0 * n;
    const real* Hs = (const real*)a->Hs;
    const real* store = (const real*)a->store;
    const real* dHs = (const real*)a->dHs;
    real* dP = (real*)a->dP;
    real* D = (real*)a->D;
    real* dh = (real*)a->dh + b0 * n;      /* d cost / d h after step t, carried back */
    int gm = (int)n, gn = (int)rows, gk = (int)Gn;
    real one = 1;
    char no = 'N';
    for (npy_intp t = a->n_steps - 1; t >= 0; --t) {
        const real* h_prev = t ? Hs + ((t - 1) * B + b0) * n : h0;
        const real* kept = store + (t * B + b0) * %(K)d * n;
        const real* m = M + t * B + b0;
        const real* dh_out = dHs + (t * B + b0) * n;
        real* dp = dP + (t * B + b0) * Gn;
        real* d = D + (t * B + b0) * Gn;
        %(backward_step)s
        dlt_sum_rows_%(ctype)s(rows, Gn, dp, a->db_sum);    /* d biases */
        /* dh_prev += d (rows x Gn) . U^T: column-major dh^T += U d^T, U^T stored (Ut). */
        if (rows && n)
            %(gemm)s(&no, &no, &gm, &gn, &gk, &one, (real*)a->Ut, &gm, d, &gk, &one, dh, &gm);
    }
}
"""

#: Each cell's step functions called in the loops above.
FORWARD_STEPS = {
    'rnn': 'dlt_rnn_forward_%(ctype)s(rows, n, work, p, bias, m, h_prev, h, kept);',
    'lstm': '''const real* c_prev = t ? (const real*)a->Cs + ((t - 1) * B + b0) * n
                                  : (const real*)a->c0 + b0 * n;
        dlt_lstm_forward_%(ctype)s(rows, n, work, p, bias, m, h_prev, h, c_prev,
                                   (real*)a->Cs + (t * B + b0) * n, kept);''',
    'gru': 'dlt_gru_forward_%(ctype)s(rows, n, work, p, bias, m, h_prev, h, kept);',
}
BACKWARD_STEPS = {
    'rnn': 'dlt_rnn_backward_%(ctype)s(rows, n, kept, m, dh_out, dh, dp);',
    'lstm': '''const real* c_prev = t ? (const real*)a->Cs + ((t - 1) * B + b0) * n
                                  : (const real*)a->c0 + b0 * n;
        dlt_lstm_backward_%(ctype)s(rows, n, kept, m, c_prev, dh_out,
                                    (const real*)a->dCs + (t * B + b0) * n, dh,
                                    (real*)a->dc + b0 * n, dp);''',
    'gru': 'dlt_gru_backward_%(ctype)s(rows, n, kept, m, h_prev, dh_out, dh, dp, d);',
}


def _step_functions():
    """The step functions and the loops of a part, for float and double."""
    code = []
    for ctype, gemm, sigmoid, tanh in (('float', 'sgemm_', 'dlt_sigmoidf', 'dlt_tanhf'),
                                       ('double', 'dgemm_', 'dlt_sigmoid', 'tanh')):
        code.append('#define real %s\n#define SIGMOID(x) %s(x)\n#define TANH(x) %s(x)\n'
                    % (ctype, sigmoid, tanh))
        code.append(STEP_FUNCTIONS % dict(ctype=ctype))
        for cell, (n_gates, _, n_kept) in CELLS.items():
            names = dict(ctype=ctype, gemm=gemm, cell=cell, G=n_gates, K=n_kept)
            code.append(ROW_FUNCTIONS % dict(names, forward_step=FORWARD_STEPS[cell] % names,
                                             backward_step=BACKWARD_STEPS[cell] % names))
        code.append('#undef real\n#undef SIGMOID\n#undef TANH\n')
    return '#ifndef DLT_FUSED_STEPS\n#define DLT_FUSED_STEPS\n%s#endif\n' % ''.join(code)


class _CRecurrent(Op):
    """What the forward and the backward op share: the BLAS, the dtype's C names."""

    __props__ = ('cell',)

    def __init__(self, cell):
        if cell not in CELLS:
            raise ValueError('cell must be one of %s, got %r' % (', '.join(CELLS), cell))
        self.cell = cell
        self.n_gates, self.n_states, self.n_kept = CELLS[cell]

    def c_support_code(self, **kwargs):
        return _blas_support() + MATH_SUPPORT + THREAD_SUPPORT + _step_functions()

    def c_headers(self, **kwargs):
        return ['<math.h>', '<string.h>', '<stdlib.h>']

    def c_libraries(self, **kwargs):
        # (pthread and dl: the parts' threads, and finding the BLAS's thread count)
        return ldflags() + (['pthread', 'dl'] if os.name == 'posix' else [])

    def c_compile_args(self, **kwargs):
        # -O3 vectorises the gate loops (with dlt_expf below, which has no branch or call);
        # gcc does so only without floating-point traps, which nothing here uses.
        return (ldflags(libs=False, flags=True) + ['-O3', '-fno-math-errno', '-fno-trapping-math']
                + _vector_width_args())

    def c_lib_dirs(self, **kwargs):
        return ldflags(libs=False, libs_dir=True)

    def c_header_dirs(self, **kwargs):
        return ldflags(libs=False, include_dir=True)

    def c_code_cache_version(self):
        # The engines reuse a compiled op whose version they know, whatever its code
        # now says: the version is this file's digest, so that any change recompiles.
        return (SOURCE_DIGEST, self.cell)

    def perform(self, node, inputs, output_storage):
        # Never called where the engine compiles C; recurrence() is used only there.
        raise NotImplementedError('the fused recurrent ops run in C only: use loop=\'scan\' '
                                  'where no C compiler is configured')

    @staticmethod
    def _row_parts(names):
        """C for the number of parts of the minibatch (one where no BLAS is linked).

        Without a BLAS, gemm is the engine's replacement, which calls numpy and
        so needs Python's lock: one thread only.
        """
        if not ldflags():
            return '1'
        return ('dlt_row_parts((void*)&%s, n_batch, &set_threads, &blas_threads)'
                % names['gemm'])

    @staticmethod
    def c_names(dtype):
        """The C type, gemm and numpy type number of ``dtype``."""
        if dtype == 'float32':
            return dict(ctype='float', gemm='sgemm_', typenum='NPY_FLOAT32')
        if dtype == 'float64':
            return dict(ctype='double', gemm='dgemm_', typenum='NPY_FLOAT64')
        raise TypeError('the fused recurrent ops take float32 or float64, not %s' % dtype)

    def _contiguous(self, names, sub):
        """C lines that take C-contiguous references of the inputs ``names`` (freed by ``_release``)."""
        lines = []
        for name in names:
            lines.append('PyArrayObject* c_%(n)s = PyArray_GETCONTIGUOUS(%(v)s);'
                         % dict(n=name, v=sub[name]))
        lines.append('if (%s) { PyErr_NoMemory(); %s }'
                     % (' || '.join('!c_%s' % name for name in names),
                        self._release(names) + sub['fail']))
        return '\n'.join(lines)

    @staticmethod
    def _release(names):
        return ' '.join('Py_XDECREF(c_%s);' % name for name in names)

    @staticmethod
    def _output(var, ndim, dims, typenum, fail, release):
        """C lines that make output ``var`` an array of ``dims`` (reused when it has them).

        Not zeroed: the ops write every element of their outputs.
        """
        same = ' && '.join('PyArray_DIMS(%s)[%d] == %s' % (var, i, d) for i, d in enumerate(dims))
        return '''
        if (!(%(var)s && PyArray_NDIM(%(var)s) == %(ndim)d && PyArray_ISCARRAY(%(var)s) && %(same)s)) {
            npy_intp out_dims[%(ndim)d] = {%(dims)s};
            Py_XDECREF(%(var)s);
            %(var)s = (PyArrayObject*)PyArray_EMPTY(%(ndim)d, out_dims, %(typenum)s, 0);
            if (!%(var)s) { %(release)s %(fail)s }
        }''' % dict(var=var, ndim=ndim, same=same, dims=', '.join(dims), typenum=typenum,
                    fail=fail, release=release)


class FusedRecurrence(_CRecurrent):
    """The states of a recurrent layer over a whole sequence: one op.

    Inputs: projected (T, B, G n), biases (G n,), mask (T, B), U (n, G n),
    h0 (B, n) [, c0 (B, n)].  Outputs: h of every step (T, B, n) [, c of every step],
    and the store (T, B, K n) for :class:`FusedRecurrenceGrad`.
    """

    def make_node(self, projected, b, mask, U, *initial_states):
        if len(initial_states) != self.n_states:
            raise TypeError('a %s takes %d initial states, got %d'
                            % (self.cell, self.n_states, len(initial_states)))
        inputs = [T.as_tensor_variable(v) for v in (projected, b, mask, U) + initial_states]
        dtype = inputs[0].dtype
        self.c_names(dtype)
        if any(v.dtype != dtype for v in inputs):
            raise TypeError('all inputs must be %s, got %s' % (dtype, [v.dtype for v in inputs]))
        outputs = [T.tensor3(dtype=dtype) for _ in range(self.n_states + 1)]
        return Apply(self, inputs, outputs)

    def infer_shape(self, *args):
        node, shapes = args[-2], args[-1]
        n_steps, n_batch = shapes[0][0], shapes[0][1]
        n = shapes[3][0]
        return [(n_steps, n_batch, n)] * self.n_states + [(n_steps, n_batch, self.n_kept * n)]

    def _pullback(self, inputs, outputs, output_grads):
        store_grad = output_grads[-1]
        if not isinstance(store_grad.type, DisconnectedType):
            raise NotImplementedError('the fused recurrence\'s store has no gradient')
        state_grads = [T.zeros_like(output) if isinstance(grad.type, DisconnectedType) else grad
                       for output, grad in zip(outputs[:-1], output_grads[:-1])]
        projected, b, mask, U = inputs[:4]
        initial_states = inputs[4:]
        grads = FusedRecurrenceGrad(self.cell)(mask, U, *initial_states, *outputs[:-1],
                                               outputs[-1], *state_grads)
        d_projected, d_b, d_U, d_initial = grads[0], grads[1], grads[2], grads[3:]
        # The mask is data (0 or 1 per step), not something one learns.
        return [d_projected, d_b, grad_undefined(self, 2, mask), d_U] + list(d_initial)

    if ENGINE == 'theano':
        L_op = _pullback
    else:
        pullback = _pullback

    def c_code(self, node, name, inputs, outputs, sub):
        names = self.c_names(node.inputs[0].dtype)
        G, K = self.n_gates, self.n_kept
        sub = dict(sub)
        keys = ['P', 'bias', 'M', 'U', 'h0'] + (['c0'] if self.n_states == 2 else [])
        sub.update(zip(keys, inputs))
        out_keys = ['Hs'] + (['Cs'] if self.n_states == 2 else []) + ['store']
        sub.update(zip(out_keys, outputs))
        release = self._release(keys) + ' free(work);'
        dims = ['n_steps', 'n_batch', 'n']
        allocate = ''.join(self._output(sub[key], 3, dims if key != 'store'
                                        else dims[:2] + ['%d * n' % K], names['typenum'],
                                        sub['fail'], release)
                           for key in out_keys)
        c0_check = ('|| PyArray_DIMS(c_c0)[0] != n_batch || PyArray_DIMS(c_c0)[1] != n'
                    if self.n_states == 2 else '')
        code = '''
        {
        typedef %(ctype)s real;
        %(contiguous)s
        real* work = NULL;
        if (PyArray_NDIM(c_P) != 3 || PyArray_NDIM(c_M) != 2 || PyArray_NDIM(c_U) != 2
                || PyArray_NDIM(c_bias) != 1) {
            PyErr_SetString(PyExc_ValueError, "fused recurrence: projected must be 3-d, mask and U 2-d, b 1-d");
            %(release)s %(fail)s
        }
        const npy_intp n_steps = PyArray_DIMS(c_P)[0], n_batch = PyArray_DIMS(c_P)[1];
        const npy_intp n = PyArray_DIMS(c_U)[0];
        const npy_intp Gn = %(G)d * n;
        if (PyArray_DIMS(c_P)[2] != Gn || PyArray_DIMS(c_U)[1] != Gn || PyArray_DIMS(c_bias)[0] != Gn
                || PyArray_DIMS(c_M)[0] != n_steps || PyArray_DIMS(c_M)[1] != n_batch
                || PyArray_DIMS(c_h0)[0] != n_batch || PyArray_DIMS(c_h0)[1] != n %(c0_check)s) {
            PyErr_Format(PyExc_ValueError, "fused %(cell)s: shapes do not agree: projected "
                         "(%%ld, %%ld, %%ld), U (%%ld, %%ld), mask (%%ld, %%ld), h0 (%%ld, %%ld)",
                         (long)n_steps, (long)n_batch, (long)PyArray_DIMS(c_P)[2],
                         (long)n, (long)PyArray_DIMS(c_U)[1], (long)PyArray_DIMS(c_M)[0],
                         (long)PyArray_DIMS(c_M)[1], (long)PyArray_DIMS(c_h0)[0],
                         (long)PyArray_DIMS(c_h0)[1]);
            %(release)s %(fail)s
        }
        work = (real*)malloc(sizeof(real) * (n_batch * Gn + 1));
        if (!work) { PyErr_NoMemory(); %(release)s %(fail)s }
        %(allocate)s
        {
            dlt_set_threads_fn set_threads = NULL;
            int blas_threads = 1;
            const int n_parts = %(row_parts)s;
            dlt_rows parts[DLT_MAX_PARTS];
            for (int k = 0; k < n_parts; ++k) {
                dlt_rows* part = parts + k;
                dlt_start_part(part, n_steps, n_batch, n, k, n_parts);
                part->P = PyArray_DATA(c_P); part->M = PyArray_DATA(c_M);
                part->U = PyArray_DATA(c_U); part->bias = PyArray_DATA(c_bias);
                part->h0 = PyArray_DATA(c_h0);
                part->Hs = PyArray_DATA(%(Hs)s); part->store = PyArray_DATA(%(store)s);
                part->work = work + part->b0 * Gn;
                %(lstm_parts)s
            }
            dlt_run_parts(dlt_%(cell)s_forward_rows_%(ctype)s, parts, n_parts, set_threads, blas_threads);
        }
        %(release)s
        }
        ''' % dict(sub, contiguous=self._contiguous(keys, sub), release=release,
                   allocate=allocate, G=G, K=K, cell=self.cell, c0_check=c0_check,
                   lstm_parts=('part->c0 = PyArray_DATA(c_c0); part->Cs = PyArray_DATA(%s);'
                               % sub['Cs'] if self.n_states == 2 else ''),
                   row_parts=self._row_parts(names), **names)
        return code


class FusedRecurrenceGrad(_CRecurrent):
    """The gradient of :class:`FusedRecurrence`, back through the whole sequence.

    Inputs: mask, U, h0 [, c0], Hs [, Cs], store, dHs [, dCs] (the gradient
    arriving at each output).  Outputs: d projected (T, B, G n), d biases
    (G n,), dU (n, G n), dh0 [, dc0].
    """

    def make_node(self, mask, U, *rest):
        inputs = [T.as_tensor_variable(v) for v in (mask, U) + rest]
        expected = 2 + 3 * self.n_states + 1
        if len(inputs) != expected:
            raise TypeError('the %s gradient takes %d inputs, got %d'
                            % (self.cell, expected, len(inputs)))
        dtype = inputs[1].dtype
        outputs = [T.tensor3(dtype=dtype), T.vector(dtype=dtype), T.matrix(dtype=dtype)]
        outputs += [T.matrix(dtype=dtype) for _ in range(self.n_states)]
        return Apply(self, inputs, outputs)

    def infer_shape(self, *args):
        shapes = args[-1]
        mask, U = shapes[0], shapes[1]
        state = shapes[2]
        return [(mask[0], mask[1], U[1]), (U[1],), U] + [state] * self.n_states

    def c_code(self, node, name, inputs, outputs, sub):
        names = self.c_names(node.inputs[1].dtype)
        G, K, lstm = self.n_gates, self.n_kept, self.n_states == 2
        sub = dict(sub)
        keys = (['M', 'U', 'h0'] + (['c0'] if lstm else []) + ['Hs'] + (['Cs'] if lstm else [])
                + ['store', 'dHs'] + (['dCs'] if lstm else []))
        sub.update(zip(keys, inputs))
        out_keys = ['dP', 'db', 'dU', 'dh0'] + (['dc0'] if lstm else [])
        sub.update(zip(out_keys, outputs))
        release = self._release(keys) + ' free(d_rec); free(db_sum); free(Ut);'
        allocate = (self._output(sub['dP'], 3, ['n_steps', 'n_batch', 'Gn'], names['typenum'],
                                 sub['fail'], release)
                    + self._output(sub['db'], 1, ['Gn'], names['typenum'], sub['fail'], release)
                    + self._output(sub['dU'], 2, ['n', 'Gn'], names['typenum'], sub['fail'],
                                   release)
                    + ''.join(self._output(sub[key], 2, ['n_batch', 'n'], names['typenum'],
                                           sub['fail'], release)
                              for key in out_keys[3:]))
        code = '''
        {
        typedef %(ctype)s real;
        %(contiguous)s
        real* Ut = NULL;
        real* d_rec = NULL;
        double* db_sum = NULL;
        const npy_intp n_steps = PyArray_DIMS(c_Hs)[0], n_batch = PyArray_DIMS(c_Hs)[1];
        const npy_intp n = PyArray_DIMS(c_U)[0];
        const npy_intp Gn = %(G)d * n;
        if (PyArray_DIMS(c_U)[1] != Gn || PyArray_DIMS(c_dHs)[0] != n_steps
                || PyArray_DIMS(c_store)[2] != %(K)d * n) {
            PyErr_SetString(PyExc_ValueError, "fused %(cell)s gradient: shapes do not agree");
            %(release)s %(fail)s
        }
        /* d_rec: the gradient at h_prev U of each step (for the GRU it differs from dP). */
        d_rec = (real*)malloc(sizeof(real) * (%(gru)d ? n_steps * n_batch * Gn + 1 : 1));
        dlt_set_threads_fn set_threads = NULL;
        int blas_threads = 1;
        const int n_parts = %(row_parts)s;
        /* db_sum: each part's bias gradient, in double, added up in the parts' order. */
        db_sum = (double*)calloc(n_parts * Gn + 1, sizeof(double));
        /* Ut: U transposed (Gn x n), so that the gemm of each step reads both of its
           matrices untransposed (the BLAS's fastest case: 5-15 %% less time a step). */
        Ut = (real*)malloc(sizeof(real) * (n * Gn + 1));
        if (!d_rec || !db_sum || !Ut) { PyErr_NoMemory(); %(release)s %(fail)s }
        %(allocate)s
        {
            const real* U = (const real*)PyArray_DATA(c_U);
            const real* Hs = (const real*)PyArray_DATA(c_Hs);
            const real* h0 = (const real*)PyArray_DATA(c_h0);
            real* dU = (real*)PyArray_DATA(%(dU)s);
            real* D = %(gru)d ? d_rec : (real*)PyArray_DATA(%(dP)s);
            for (npy_intp i = 0; i < n; ++i)
                for (npy_intp g = 0; g < Gn; ++g)
                    Ut[g * n + i] = U[i * Gn + g];
            memset(PyArray_DATA(%(dh0)s), 0, sizeof(real) * n_batch * n);
            %(lstm_zero)s
            dlt_rows parts[DLT_MAX_PARTS];
            for (int k = 0; k < n_parts; ++k) {
                dlt_rows* part = parts + k;
                dlt_start_part(part, n_steps, n_batch, n, k, n_parts);
                part->M = PyArray_DATA(c_M); part->Ut = Ut; part->h0 = h0; part->Hs = (void*)Hs;
                part->store = PyArray_DATA(c_store); part->dHs = PyArray_DATA(c_dHs);
                part->dP = PyArray_DATA(%(dP)s); part->D = D; part->dh = PyArray_DATA(%(dh0)s);
                part->db_sum = db_sum + k * Gn;
                %(lstm_parts)s
            }
            dlt_run_parts(dlt_%(cell)s_backward_rows_%(ctype)s, parts, n_parts, set_threads, blas_threads);
            /* dU (n x Gn) = sum over steps of h_prev^T (n x B) . D_t (B x Gn), as two gemms:
               h0 with step 0, then the states of steps 0 .. T-2 (consecutive in Hs) with
               steps 1 .. T-1.  Column-major: dU^T = D^T h_prev. */
            int um = (int)Gn, un = (int)n, first = (int)n_batch, rest = (int)((n_steps - 1) * n_batch);
            real one = 1, zero = 0;
            char no = 'N', yes = 'T';
            if (n_steps && n_batch && n) {
                %(gemm)s(&no, &yes, &um, &un, &first, &one, D, &um, (real*)h0, &un, &zero, dU, &um);
                if (rest)
                    %(gemm)s(&no, &yes, &um, &un, &rest, &one, D + n_batch * Gn, &um, (real*)Hs, &un, &one, dU, &um);
            } else
                memset(dU, 0, sizeof(real) * n * Gn);
            real* db = (real*)PyArray_DATA(%(db)s);
            for (npy_intp g = 0; g < Gn; ++g) {
                double total = 0;
                for (int k = 0; k < n_parts; ++k)
                    total += db_sum[k * Gn + g];
                db[g] = (real)total;
            }
        }
        %(release)s
        }
        ''' % dict(sub, contiguous=self._contiguous(keys, sub), release=release,
                   allocate=allocate, G=G, K=K, cell=self.cell, gru=int(self.cell == 'gru'),
                   lstm_zero=('memset(PyArray_DATA(%s), 0, sizeof(real) * n_batch * n);'
                              % sub['dc0'] if lstm else ''),
                   lstm_parts=('part->c0 = PyArray_DATA(c_c0); part->Cs = PyArray_DATA(c_Cs); '
                               'part->dCs = PyArray_DATA(c_dCs); part->dc = PyArray_DATA(%s);'
                               % sub['dc0'] if lstm else ''),
                   row_parts=self._row_parts(names), **names)
        return code
