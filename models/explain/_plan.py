"""Turn parsed trees into the flat arrays and tables that :func:`_kernels.shap_block` walks.

Each tree is cut into an *upper* part, whose internal nodes pass a per-row bit mask of satisfied
path conditions down to their children, and *units*: the subtrees of height <= ``fold_height``
hanging below it. A unit's leaves are folded into one table indexed by the mask at the unit root
plus one decision bit per internal node of the unit, so one lookup replaces up to 2**fold_height
leaf lookups. Slots are the distinct features on a root-to-node path, numbered by first
appearance; the mask's bit ``s`` is slot ``s``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np

from models.explain import _kernels as K
from models.explain._xgb_model import ParsedModel, TreeArrays

TABLE_DTYPE = np.float32
_MAX_CODE_BITS = 30  # a unit's code (mask bits + decision bits) must fit the kernel's uint32


class PlanError(Exception):
    """Tables cannot be built for this model; the message says why (used for the fallback)."""


class _Leaf(NamedTuple):
    value: float
    slots: tuple[int, ...]  # feature of each slot on the root-to-leaf path
    z: tuple[float, ...]  # per slot: product of the cover fractions of its edges
    # (slot, index of the unit's decision node, 1 if the path goes left there)
    constraints: tuple[tuple[int, int, int], ...]


@dataclass
class _Unit:
    src: int  # mask slot holding the mask at the unit root
    k: int  # slots at the unit root
    cols: list[int]  # feature of each table column: the k path slots, then new features
    dec: list[tuple[int, float, int]] = field(default_factory=list)  # (feature, thr, default_left)
    leaves: list[_Leaf] = field(default_factory=list)

    @property
    def code_bits(self) -> int:
        return self.k + len(self.dec)

    @property
    def table_entries(self) -> int:
        return len(self.cols) << self.code_bits


class _Upper(NamedTuple):
    feature: int
    threshold: float
    default_left: int
    src: int  # mask slots of the node and of its children
    left: int
    right: int
    slot: int  # slot of the split feature on the node's path


@dataclass
class ShapPlan:
    """Flat arrays for :func:`_kernels.shap_block`, plus the tables once built."""

    n_features: int
    bias: float
    fold_height: int
    tree_up_ptr: np.ndarray
    up_meta: np.ndarray
    up_thr: np.ndarray
    up_clear: np.ndarray
    tree_unit_ptr: np.ndarray
    unit_meta: np.ndarray
    dec_meta: np.ndarray
    dec_thr: np.ndarray
    col_feat: np.ndarray
    n_mask_slots: int
    table_entries: int
    units: list[_Unit]  # the layout the tables are built from; emptied once they are
    tables: np.ndarray | None = None

    @property
    def table_bytes(self) -> int:
        """Bytes the tables take (or will take once built)."""
        return self.table_entries * np.dtype(TABLE_DTYPE).itemsize


def make_plan(model: ParsedModel, fold_height: int) -> ShapPlan:
    """Lay out the upper nodes and units of every tree; tables are sized but not yet built.

    Raises :class:`PlanError` when a node has no cover (its fractions are undefined), a path has
    more than 32 distinct features, or a unit needs more than ``_MAX_CODE_BITS`` index bits.
    """
    bias = model.base_margin
    tree_ups: list[list[_Upper]] = []
    tree_units: list[list[_Unit]] = []
    n_mask_slots = 1
    mask_bits = 1
    for tree in model.trees:
        ups, units, n_slots, tree_mean = _walk_tree(tree, fold_height)
        bias += tree_mean
        tree_ups.append(ups)
        tree_units.append([u for u in units if u.cols])  # a lone root leaf adds only bias
        n_mask_slots = max(n_mask_slots, n_slots)
        mask_bits = max([mask_bits, *(up.slot + 1 for up in ups), *(u.k for u in units)])
    mask_dtype = _mask_dtype(mask_bits)
    return _flatten(
        model.n_features, bias, fold_height, tree_ups, tree_units, n_mask_slots, mask_dtype
    )


def build_tables(plan: ShapPlan) -> None:
    """Compute every unit's table (float32) into ``plan.tables``."""
    units = plan.units
    unit_k = np.array([u.k for u in units], dtype=np.int64)
    unit_nd = np.array([len(u.dec) for u in units], dtype=np.int64)
    unit_ncols = np.array([len(u.cols) for u in units], dtype=np.int64)
    leaves = [(leaf, u) for u in units for leaf in u.leaves]
    unit_leaf_ptr = _ptr([len(u.leaves) for u in units])
    leaf_value = np.array([leaf.value for leaf, _ in leaves], dtype=np.float64)
    leaf_slot_ptr = _ptr([len(leaf.slots) for leaf, _ in leaves])
    leaf_z = np.array([z for leaf, _ in leaves for z in leaf.z], dtype=np.float64)
    leaf_col = np.array([u.cols.index(f) for leaf, u in leaves for f in leaf.slots], dtype=np.int64)
    leaf_con_ptr = _ptr([len(leaf.constraints) for leaf, _ in leaves])
    cons = np.array([c for leaf, _ in leaves for c in leaf.constraints], dtype=np.int64).reshape(
        -1, 3
    )
    tables = np.empty(plan.table_entries, dtype=TABLE_DTYPE)
    K.build_unit_tables(
        unit_k,
        unit_nd,
        unit_ncols,
        plan.unit_meta[:, K.UNIT_OFFSET].copy(),
        unit_leaf_ptr,
        leaf_value,
        leaf_slot_ptr,
        leaf_z,
        leaf_col,
        leaf_con_ptr,
        np.ascontiguousarray(cons[:, 0]),
        np.ascontiguousarray(cons[:, 1]),
        np.ascontiguousarray(cons[:, 2]),
        tables,
    )
    plan.tables = tables
    plan.units = []  # only needed to build the tables


def _walk_tree(tree: TreeArrays, fold_height: int) -> tuple[list[_Upper], list[_Unit], int, float]:
    """Split one tree into upper nodes and units; also return its mask-slot count and mean."""
    left, right, feature, cover = tree.left, tree.right, tree.feature, tree.cover
    threshold = tree.threshold
    heights = _heights(left, right)
    ups: list[_Upper] = []
    units: list[_Unit] = []
    mean = 0.0
    next_slot = 1
    # (node, slot features, z per slot, mask slot, unit index or -1, constraints)
    stack: list[tuple[int, tuple[int, ...], tuple[float, ...], int, int, tuple]] = [
        (0, (), (), 0, -1, ())
    ]
    while stack:
        node, slots, zs, mslot, unit_id, cons = stack.pop()
        if unit_id < 0 and heights[node] <= fold_height:
            units.append(_Unit(src=mslot, k=len(slots), cols=list(slots)))
            unit_id = len(units) - 1
        if left[node] < 0:
            value = threshold[node]
            mean += value * math.prod(zs)
            units[unit_id].leaves.append(_Leaf(value, slots, zs, cons))
            continue
        if cover[node] <= 0:
            raise PlanError(f"node {node} has no cover, so its cover fractions are undefined")
        f = feature[node]
        s = slots.index(f) if f in slots else len(slots)
        child_slots = slots if s < len(slots) else (*slots, f)
        children = (left[node], right[node])
        child_zs = []
        for child in children:
            ratio = cover[child] / cover[node]
            child_zs.append((*zs[:s], zs[s] * ratio, *zs[s + 1 :]) if s < len(zs) else (*zs, ratio))
        thr = threshold[node]
        if unit_id < 0:
            ups.append(_Upper(f, thr, tree.default_left[node], mslot, next_slot, next_slot + 1, s))
            for i, child in enumerate(children):
                stack.append((child, child_slots, child_zs[i], next_slot + i, -1, ()))
            next_slot += 2
        else:
            unit = units[unit_id]
            dec_index = len(unit.dec)
            unit.dec.append((f, thr, tree.default_left[node]))
            if f not in unit.cols:
                unit.cols.append(f)
            for i, child in enumerate(children):
                stack.append(
                    (child, child_slots, child_zs[i], -1, unit_id, (*cons, (s, dec_index, 1 - i)))
                )
    return ups, units, next_slot, mean


def _heights(left: list[int], right: list[int]) -> list[int]:
    """Height of every node reachable from the root (leaves 0)."""
    order = [0]
    for node in order:  # breadth-first: parents before children
        if left[node] >= 0:
            order.extend((left[node], right[node]))
    heights = [0] * len(left)
    for node in reversed(order):
        if left[node] >= 0:
            heights[node] = 1 + max(heights[left[node]], heights[right[node]])
    return heights


def _mask_dtype(bits: int) -> type[np.unsignedinteger]:
    for dtype in (np.uint8, np.uint16, np.uint32):
        if bits <= np.iinfo(dtype).bits:
            return dtype
    raise PlanError(f"a path has {bits} distinct features; at most 32 are supported")


def _ptr(counts: list[int]) -> np.ndarray:
    ptr = np.zeros(len(counts) + 1, dtype=np.int64)
    np.cumsum(counts, out=ptr[1:])
    return ptr


def _flatten(
    n_features: int,
    bias: float,
    fold_height: int,
    tree_ups: list[list[_Upper]],
    tree_units: list[list[_Unit]],
    n_mask_slots: int,
    mask_dtype: type[np.unsignedinteger],
) -> ShapPlan:
    ups = [up for tree in tree_ups for up in tree]
    units = [u for tree in tree_units for u in tree]
    widest = max((u.code_bits for u in units), default=0)
    if widest > _MAX_CODE_BITS:
        raise PlanError(f"a folded subtree needs {widest} index bits (> {_MAX_CODE_BITS})")
    up_meta = np.array(
        [(up.feature, up.default_left, up.src, up.left, up.right) for up in ups], dtype=np.int64
    ).reshape(-1, K.UP_COLS)
    all_bits = int(np.iinfo(mask_dtype).max)
    # never empty: the kernel takes the mask dtype (and its all-ones value) from it
    up_clear = np.array([all_bits ^ (1 << up.slot) for up in ups] or [all_bits], dtype=mask_dtype)
    sizes = [u.table_entries for u in units]
    offsets = _ptr(sizes)
    dec_ptr = _ptr([len(u.dec) for u in units])
    col_ptr = _ptr([len(u.cols) for u in units])
    unit_meta = np.zeros((len(units), K.UNIT_COLS), dtype=np.int64)
    if units:
        unit_meta[:, K.UNIT_SRC] = [u.src for u in units]
        unit_meta[:, K.UNIT_LOW] = [(1 << u.k) - 1 for u in units]
        unit_meta[:, K.UNIT_DEC_START] = dec_ptr[:-1]
        unit_meta[:, K.UNIT_DEC_END] = dec_ptr[1:]
        unit_meta[:, K.UNIT_COL_START] = col_ptr[:-1]
        unit_meta[:, K.UNIT_COL_END] = col_ptr[1:]
        unit_meta[:, K.UNIT_NROWS] = [1 << u.code_bits for u in units]
        unit_meta[:, K.UNIT_OFFSET] = offsets[:-1]
    decs = [d for u in units for d in u.dec]
    return ShapPlan(
        n_features=n_features,
        bias=bias,
        fold_height=fold_height,
        tree_up_ptr=_ptr([len(t) for t in tree_ups]),
        up_meta=up_meta,
        up_thr=np.array([up.threshold for up in ups], dtype=np.float32),
        up_clear=up_clear,
        tree_unit_ptr=_ptr([len(t) for t in tree_units]),
        unit_meta=unit_meta,
        dec_meta=np.array([(d[0], d[2]) for d in decs], dtype=np.int64).reshape(-1, K.DEC_COLS),
        dec_thr=np.array([d[1] for d in decs], dtype=np.float32),
        col_feat=np.array([f for u in units for f in u.cols], dtype=np.int64),
        n_mask_slots=n_mask_slots,
        table_entries=int(offsets[-1]),
        units=units,
    )
