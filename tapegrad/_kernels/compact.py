"""Tape compaction: copy the segments that are still needed into fresh buffers, renumbering their records."""
import numpy as np
from numba import njit

from .common import params_at


@njit(cache=True)
def _segment_of(p, seg_start, seg_stop):
    """Index of the segment holding physical record p (segments sorted by start), or -1."""
    lo = 0
    hi = seg_start.shape[0] - 1
    while lo <= hi:
        mid = (lo + hi) // 2
        if p < seg_start[mid]:
            hi = mid - 1
        elif p >= seg_stop[mid]:
            lo = mid + 1
        else:
            return mid
    return -1


@njit(cache=True)
def close_over_references(keep, seg_start, seg_stop, ops, a, b, aux, ints, has_extra, base):
    """Also keep every segment that a kept record takes an input from (inputs only point backwards)."""
    for k in range(keep.shape[0] - 1, -1, -1):
        if not keep[k]:
            continue
        for i in range(seg_start[k], seg_stop[k]):
            for g in (a[i], b[i]):
                if g >= base:
                    s = _segment_of(g - base, seg_start, seg_stop)
                    if s >= 0:
                        keep[s] = True
            if has_extra[ops[i]]:
                p = params_at(ints, aux[i])
                for e in range(ints[p]):
                    g = ints[p + 1 + e]
                    if g >= base:
                        s = _segment_of(g - base, seg_start, seg_stop)
                        if s >= 0:
                            keep[s] = True


@njit(cache=True)
def _new_gid(g, base, new_base, seg_start, seg_stop, new_start, keep):
    if g < base:
        return g
    s = _segment_of(g - base, seg_start, seg_stop)
    if s < 0 or not keep[s]:
        return -1
    return new_base + new_start[s] + (g - base - seg_start[s])


@njit(cache=True)
def compact(keep, seg_start, seg_stop, ops, a, b, aux, off, const, flags, ints, vals, n, nv, ni, base, new_base,
            has_extra, out_ops, out_a, out_b, out_aux, out_off, out_const, out_flags, out_ints, out_vals, in_place):
    """Copy kept segments (physical ranges) into the out_ buffers; return (records, values, ints) used and the
    new start of each segment. out_vals may be vals (in_place): values are copied in order, each to the same
    place or lower."""
    nseg = keep.shape[0]
    new_start = np.full(nseg, -1, dtype=np.int64)
    # int side-table entries: each starts at some record's aux and runs to the next such start
    starts = np.unique(aux[:n])
    entry_new = np.full(starts.shape[0], -1, dtype=np.int64)
    entry_extra = np.zeros(starts.shape[0], dtype=np.bool_)
    m = 0
    mv = 0
    mi = 1
    out_ints[0] = 0
    for k in range(nseg):
        if not keep[k]:
            continue
        new_start[k] = m
        lo = seg_start[k]
        hi = seg_stop[k]
        v_lo = off[lo] if lo < n else nv
        v_hi = off[hi] if hi < n else nv
        for i in range(lo, hi):
            j = m + i - lo
            out_ops[j] = ops[i]
            out_const[j] = const[i]
            out_flags[j] = flags[i]
            out_off[j] = off[i] - v_lo + mv
            if aux[i] == 0:
                out_aux[j] = 0
                continue
            e = np.searchsorted(starts, aux[i])
            if entry_new[e] < 0:
                stop = starts[e + 1] if e + 1 < starts.shape[0] else ni
                entry_new[e] = mi
                for q in range(aux[i], stop):
                    out_ints[mi] = ints[q]
                    mi += 1
            if has_extra[ops[i]]:
                entry_extra[e] = True
            out_aux[j] = entry_new[e]
        if mv != v_lo or not in_place:   # kept values only move down, so out_vals may be vals itself
            for q in range(v_lo, v_hi):
                out_vals[mv + q - v_lo] = vals[q]
        mv += v_hi - v_lo
        m += hi - lo
    # renumber inputs
    for k in range(nseg):
        if not keep[k]:
            continue
        for i in range(seg_start[k], seg_stop[k]):
            j = new_start[k] + i - seg_start[k]
            out_a[j] = _new_gid(a[i], base, new_base, seg_start, seg_stop, new_start, keep) if a[i] >= 0 else -1
            out_b[j] = _new_gid(b[i], base, new_base, seg_start, seg_stop, new_start, keep) if b[i] >= 0 else -1
    for e in range(starts.shape[0]):
        if entry_extra[e]:
            p = params_at(out_ints, entry_new[e])
            for x in range(out_ints[p]):
                out_ints[p + 1 + x] = _new_gid(out_ints[p + 1 + x], base, new_base, seg_start, seg_stop,
                                               new_start, keep)
    return m, mv, mi, new_start
