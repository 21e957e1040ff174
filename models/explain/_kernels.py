"""Numba kernels of the linear-time TreeSHAP: table building and per-row accumulation.

Both kernels work on flat arrays prepared by :mod:`models.explain._plan`; they know nothing of
xgboost. Every kernel is compiled with ``cache=True`` so that the one-time JIT cost is paid once per
machine (the cache lives in ``__pycache__`` beside this file, or under ``NUMBA_CACHE_DIR``).
"""

from __future__ import annotations

import numba as nb
import numpy as np

# Column layout of the integer metadata arrays built by the plan (one row per record).
UP_FEAT, UP_DEFAULT_LEFT, UP_SRC, UP_LEFT, UP_RIGHT = range(5)
UP_COLS = 5
(
    UNIT_SRC,
    UNIT_LOW,
    UNIT_DEC_START,
    UNIT_DEC_END,
    UNIT_COL_START,
    UNIT_COL_END,
    UNIT_NROWS,
    UNIT_OFFSET,
) = range(8)
UNIT_COLS = 8
DEC_FEAT, DEC_DEFAULT_LEFT = range(2)
DEC_COLS = 2


@nb.njit(cache=True, nogil=True)
def leaf_shap_table(z: np.ndarray, value: float, out: np.ndarray) -> None:
    """Fill ``out[mask, j]`` with one leaf's Shapley value for slot ``j`` under every ``mask``.

    ``z[j]`` is the product of cover fractions of the path edges that split on slot ``j``'s
    feature; bit ``j`` of ``mask`` says whether a row satisfies every condition on that feature.
    The leaf's game is ``V(S) = value * prod_{i in S} o_i * prod_{i not in S} z_i``; its Shapley
    value is ``value * (o_j - z_j) * prod_{i != j, o_i = 0} z_i * sum_s w_s e_s`` where ``e_s`` are
    the coefficients of ``prod_{i != j, o_i = 1} (z_i + t)`` and ``w_s = s!(k-1-s)!/k!``.
    Cost O(2**k * k**2): the product over all satisfied slots is built once per mask and divided
    by ``(z_j + t)`` for each satisfied ``j``.
    """
    k = z.shape[0]
    if k == 0:
        return
    weights = np.empty(k)
    weights[0] = 1.0 / k
    for s in range(k - 1):
        weights[s + 1] = weights[s] * (s + 1) / (k - 1 - s)
    poly = np.empty(k + 1)
    quotient = np.empty(k)
    cold_before = np.empty(k + 1)  # products of z over unsatisfied slots < i, and > i
    cold_after = np.empty(k + 1)
    for mask in range(1 << k):
        poly[0] = 1.0
        degree = 0
        for i in range(k):
            if (mask >> i) & 1:
                zi = z[i]
                poly[degree + 1] = poly[degree]
                for s in range(degree, 0, -1):
                    poly[s] = poly[s] * zi + poly[s - 1]
                poly[0] *= zi
                degree += 1
        cold_before[0] = 1.0
        for i in range(k):
            cold_before[i + 1] = cold_before[i] * (1.0 if (mask >> i) & 1 else z[i])
        cold_after[k] = 1.0
        for i in range(k - 1, -1, -1):
            cold_after[i] = cold_after[i + 1] * (1.0 if (mask >> i) & 1 else z[i])
        for j in range(k):
            cold = cold_before[j] * cold_after[j + 1]
            total = 0.0
            if (mask >> j) & 1:
                # synthetic division by (z_j + t), from the top: stable because z_j <= 1
                quotient[degree - 1] = poly[degree]
                for s in range(degree - 1, 0, -1):
                    quotient[s - 1] = poly[s] - z[j] * quotient[s]
                for s in range(degree):
                    total += weights[s] * quotient[s]
                out[mask, j] = value * (1.0 - z[j]) * cold * total
            else:
                for s in range(degree + 1):
                    total += weights[s] * poly[s]
                out[mask, j] = -value * z[j] * cold * total


@nb.njit(cache=True, parallel=True)
def build_unit_tables(
    unit_k: np.ndarray,
    unit_nd: np.ndarray,
    unit_ncols: np.ndarray,
    unit_offset: np.ndarray,
    unit_leaf_ptr: np.ndarray,
    leaf_value: np.ndarray,
    leaf_slot_ptr: np.ndarray,
    leaf_z: np.ndarray,
    leaf_col: np.ndarray,
    leaf_con_ptr: np.ndarray,
    con_slot: np.ndarray,
    con_dec: np.ndarray,
    con_left: np.ndarray,
    tables: np.ndarray,
) -> None:
    """Write every unit's table into ``tables`` (float32, column-major per unit).

    A unit is a subtree folded into one table indexed by ``code = mask << nd | decisions``: the
    mask of satisfied conditions over the ``k`` slots at the unit root, then one bit per internal
    node of the unit (first node most significant; 1 means the row goes left). Row ``code`` holds
    the summed contribution of all the unit's leaves, one column per distinct feature.
    """
    for u in nb.prange(unit_k.shape[0]):
        ku = unit_k[u]
        nd = unit_nd[u]
        nrows = 1 << (ku + nd)
        acc = np.zeros((unit_ncols[u], nrows))
        for leaf in range(unit_leaf_ptr[u], unit_leaf_ptr[u + 1]):
            s0 = leaf_slot_ptr[leaf]
            kl = leaf_slot_ptr[leaf + 1] - s0
            phi = np.empty((1 << kl, kl))
            leaf_shap_table(leaf_z[s0 : s0 + kl], leaf_value[leaf], phi)
            # slots first seen inside the unit start satisfied; constraints clear them
            new_bits = ((1 << kl) - 1) ^ ((1 << ku) - 1)
            for code in range(nrows):
                mask = (code >> nd) | new_bits
                for c in range(leaf_con_ptr[leaf], leaf_con_ptr[leaf + 1]):
                    went_left = (code >> (nd - 1 - con_dec[c])) & 1
                    if went_left != con_left[c]:
                        mask &= ~(1 << con_slot[c])
                for i in range(kl):
                    acc[leaf_col[s0 + i], code] += phi[mask, i]
        off = unit_offset[u]
        for c in range(unit_ncols[u]):
            for code in range(nrows):
                tables[off + c * nrows + code] = acc[c, code]


@nb.njit(cache=True, parallel=True)
def shap_block(
    xt: np.ndarray,
    out: np.ndarray,
    bias: float,
    tree_up_ptr: np.ndarray,
    up_meta: np.ndarray,
    up_thr: np.ndarray,
    up_clear: np.ndarray,
    tree_unit_ptr: np.ndarray,
    unit_meta: np.ndarray,
    dec_meta: np.ndarray,
    dec_thr: np.ndarray,
    col_feat: np.ndarray,
    tables: np.ndarray,
    n_mask_slots: int,
    chunk_rows: int,
) -> None:
    """Write SHAP values of the rows of ``xt`` (features x rows, float32) into ``out``.

    ``out`` is (rows, features + 1) float64 with the bias last. Rows are split into chunks run in
    parallel; inside a chunk trees are visited one by one with the rows as the innermost loop,
    so every step is a vectorisable pass over contiguous per-row arrays. Splits compare in float32
    as xgboost does, and a missing value (NaN) follows the node's default direction.
    """
    n_features = xt.shape[0]
    n_rows = xt.shape[1]
    n_trees = tree_up_ptr.shape[0] - 1
    all_set = ~up_clear[0] | up_clear[0]  # every bit of the mask dtype set
    n_chunks = (n_rows + chunk_rows - 1) // chunk_rows
    for chunk in nb.prange(n_chunks):
        r0 = chunk * chunk_rows
        m = min(n_rows, r0 + chunk_rows) - r0
        acc = np.zeros((n_features, m))
        masks = np.empty((n_mask_slots, m), dtype=up_clear.dtype)
        code = np.empty(m, dtype=np.uint32)  # unsigned: no negative-index wraparound check
        for t in range(n_trees):
            masks[0, :] = all_set
            for n in range(tree_up_ptr[t], tree_up_ptr[t + 1]):
                xf = xt[up_meta[n, UP_FEAT], r0 : r0 + m]
                thr = up_thr[n]
                clear = up_clear[n]
                src = masks[up_meta[n, UP_SRC]]
                left = masks[up_meta[n, UP_LEFT]]
                right = masks[up_meta[n, UP_RIGHT]]
                if up_meta[n, UP_DEFAULT_LEFT]:
                    for r in range(m):
                        keep = src[r]
                        cut = keep & clear
                        goes_right = xf[r] >= thr  # False for NaN: missing goes left
                        left[r] = cut if goes_right else keep
                        right[r] = keep if goes_right else cut
                else:
                    for r in range(m):
                        keep = src[r]
                        cut = keep & clear
                        goes_left = xf[r] < thr  # False for NaN: missing goes right
                        left[r] = keep if goes_left else cut
                        right[r] = cut if goes_left else keep
            for u in range(tree_unit_ptr[t], tree_unit_ptr[t + 1]):
                src = masks[unit_meta[u, UNIT_SRC]]
                low = unit_meta[u, UNIT_LOW]
                for r in range(m):
                    code[r] = src[r] & low
                for d in range(unit_meta[u, UNIT_DEC_START], unit_meta[u, UNIT_DEC_END]):
                    xf = xt[dec_meta[d, DEC_FEAT], r0 : r0 + m]
                    thr = dec_thr[d]
                    if dec_meta[d, DEC_DEFAULT_LEFT]:
                        for r in range(m):
                            code[r] = 2 * code[r] + (0 if xf[r] >= thr else 1)
                    else:
                        for r in range(m):
                            code[r] = 2 * code[r] + (1 if xf[r] < thr else 0)
                c0 = unit_meta[u, UNIT_COL_START]
                nrows = unit_meta[u, UNIT_NROWS]
                base = unit_meta[u, UNIT_OFFSET]
                for c in range(c0, unit_meta[u, UNIT_COL_END]):
                    column = tables[base + (c - c0) * nrows : base + (c - c0 + 1) * nrows]
                    target = acc[col_feat[c]]
                    for r in range(m):
                        target[r] += column[code[r]]
        for r in range(m):
            row = out[r0 + r]
            for f in range(n_features):
                row[f] = acc[f, r]
            row[n_features] = bias


def warm_up(mask_dtype: type[np.unsignedinteger]) -> None:
    """Compile (or load from the on-disk cache) both kernels for ``mask_dtype`` on empty input."""
    i64 = np.zeros(0, dtype=np.int64)
    ptr = np.zeros(1, dtype=np.int64)
    f32 = np.zeros(0, dtype=np.float32)
    f64 = np.zeros(0, dtype=np.float64)
    build_unit_tables(i64, i64, i64, i64, ptr, f64, ptr, f64, i64, ptr, i64, i64, i64, f32)
    shap_block(
        np.zeros((1, 0), dtype=np.float32),
        np.zeros((0, 2)),
        0.0,
        ptr,
        np.zeros((0, UP_COLS), dtype=np.int64),
        f32,
        np.zeros(1, dtype=mask_dtype),
        ptr,
        np.zeros((0, UNIT_COLS), dtype=np.int64),
        np.zeros((0, DEC_COLS), dtype=np.int64),
        f32,
        i64,
        f32,
        1,
        1,
    )
