//! Blocked dot products with runtime ISA selection (AVX-512, AVX2+FMA,
//! portable).
//!
//! Every (query, row) pair is reduced the same way on every path and in every
//! tile shape: 16 lanes accumulated with fused multiply-add over the padded
//! dimension, then summed by the tree `l + l+8`, `+4`, `+2`, `+1`. A score
//! therefore never depends on which tile, batch or thread computed it, which
//! is what makes the kernel batch invariant.

/// Vectors are zero-padded to a multiple of this many lanes.
pub const LANES: usize = 16;

/// Rounds a dimension up to whole lanes.
pub fn padded(dim: usize) -> usize {
    dim.div_ceil(LANES) * LANES
}

pub use tandem_sdk::simd::Isa;

/// Writes `out[i * out_stride + j] = dot(queries[i], rows[j])` for `nq`
/// queries and `nx` rows, each `pd` (padded, a multiple of [`LANES`]) long.
pub fn dot_block(
    isa: Isa,
    queries: &[f32],
    nq: usize,
    rows: &[f32],
    nx: usize,
    pd: usize,
    out: &mut [f32],
    out_stride: usize,
) {
    dot_block_prefetching(isa, queries, nq, rows, nx, pd, out, out_stride, &[]);
}

/// [`dot_block`], pulling `next` (the rows the caller's next block will
/// read) into cache a few lines per tile while this block computes. Without
/// it the first tiles of every block wait on memory: hardware prefetchers
/// hardly follow a block read as a handful of interleaved 1.5 KB rows, and
/// the batch-64 dot products ran about a fifth slower from memory than from
/// L1 (the AVX2 and AVX-512 paths alike).
#[allow(clippy::too_many_arguments)]
pub fn dot_block_prefetching(
    isa: Isa,
    queries: &[f32],
    nq: usize,
    rows: &[f32],
    nx: usize,
    pd: usize,
    out: &mut [f32],
    out_stride: usize,
    next: &[f32],
) {
    assert!(pd.is_multiple_of(LANES), "padded dimension must be a multiple of {LANES}");
    assert!(queries.len() >= nq * pd && rows.len() >= nx * pd, "operands shorter than their shapes");
    assert!(nq == 0 || out.len() >= (nq - 1) * out_stride + nx, "output shorter than its shape");
    assert!(out_stride >= nx, "output stride shorter than a row");
    match isa {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: Avx512 is only chosen when the CPU reports avx512f; the
        // asserts above bound every pointer offset the block computes.
        Isa::Avx512 => unsafe {
            let prefetch = x86::Prefetch::new(next, (nq / 4) * (nx / 4));
            x86::block_avx512(queries.as_ptr(), nq, rows.as_ptr(), nx, pd, out.as_mut_ptr(), out_stride, prefetch)
        },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: Avx2Fma is only chosen when the CPU reports avx2 and fma;
        // bounds as above.
        Isa::Avx2Fma => unsafe {
            let prefetch = x86::Prefetch::new(next, (nq / 3) * (nx / 2));
            x86::block_avx2(queries.as_ptr(), nq, rows.as_ptr(), nx, pd, out.as_mut_ptr(), out_stride, prefetch)
        },
        _ => {
            let _ = next;
            portable_block(queries, nq, rows, nx, pd, out, out_stride)
        }
    }
}

/// The reduction tree shared by every path.
#[inline(always)]
fn reduce16(acc: &[f32; LANES]) -> f32 {
    let mut s8 = [0.0f32; 8];
    for i in 0..8 {
        s8[i] = acc[i] + acc[i + 8];
    }
    let mut s4 = [0.0f32; 4];
    for i in 0..4 {
        s4[i] = s8[i] + s8[i + 4];
    }
    let s2 = [s4[0] + s4[2], s4[1] + s4[3]];
    s2[0] + s2[1]
}

fn portable_block(queries: &[f32], nq: usize, rows: &[f32], nx: usize, pd: usize, out: &mut [f32], out_stride: usize) {
    for i in 0..nq {
        let q = &queries[i * pd..(i + 1) * pd];
        for j in 0..nx {
            let x = &rows[j * pd..(j + 1) * pd];
            let mut acc = [0.0f32; LANES];
            for (qc, xc) in q.chunks_exact(LANES).zip(x.chunks_exact(LANES)) {
                for l in 0..LANES {
                    acc[l] = qc[l].mul_add(xc[l], acc[l]);
                }
            }
            out[i * out_stride + j] = reduce16(&acc);
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::LANES;
    use std::arch::x86_64::*;

    /// The lines of the next block's rows, handed out a few per tile so the
    /// loads spread over the block instead of queueing all at once.
    pub struct Prefetch {
        line: *const i8,
        end: *const i8,
        per_tile: usize,
    }

    impl Prefetch {
        /// Spreads `next` over the `tiles` full tiles of a block (none: no
        /// prefetching, as for a single query, which streams well unaided).
        pub fn new(next: &[f32], tiles: usize) -> Prefetch {
            let lines = (next.len() * 4).div_ceil(64);
            let range = next.as_ptr_range();
            let per_tile = if tiles == 0 { 0 } else { lines.div_ceil(tiles) };
            Prefetch { line: range.start.cast(), end: range.end.cast(), per_tile }
        }

        #[inline(always)]
        fn after_tile(&mut self) {
            for _ in 0..self.per_tile {
                if self.line >= self.end {
                    return;
                }
                // SAFETY: sse is part of the x86_64 baseline every build
                // targets, and a prefetch is a hint that never faults (the
                // line is inside the slice `new` was given anyway).
                unsafe { _mm_prefetch::<_MM_HINT_T0>(self.line) };
                self.line = self.line.wrapping_add(64);
            }
        }
    }

    /// Sums 8 lanes with the tail of the shared tree (`+4`, `+2`, `+1`).
    #[inline]
    #[target_feature(enable = "avx2")]
    unsafe fn reduce8(s8: __m256) -> f32 {
        let s4 = _mm_add_ps(_mm256_castps256_ps128(s8), _mm256_extractf128_ps::<1>(s8));
        let s2 = _mm_add_ps(s4, _mm_movehl_ps(s4, s4));
        let s1 = _mm_add_ss(s2, _mm_shuffle_ps::<1>(s2, s2));
        _mm_cvtss_f32(s1)
    }

    #[inline]
    #[target_feature(enable = "avx512f")]
    unsafe fn reduce16_avx512(v: __m512) -> f32 {
        let lo = _mm512_castps512_ps256(v);
        let hi = _mm256_castpd_ps(_mm512_extractf64x4_pd::<1>(_mm512_castps_pd(v)));
        reduce8(_mm256_add_ps(lo, hi))
    }

    #[inline]
    #[target_feature(enable = "avx512f")]
    unsafe fn tile_avx512<const QT: usize, const XT: usize>(
        q: *const f32,
        x: *const f32,
        pd: usize,
        out: *mut f32,
        stride: usize,
    ) {
        let mut acc = [[_mm512_setzero_ps(); XT]; QT];
        let mut k = 0;
        while k < pd {
            let mut xv = [_mm512_setzero_ps(); XT];
            for (j, v) in xv.iter_mut().enumerate() {
                *v = _mm512_loadu_ps(x.add(j * pd + k));
            }
            for (i, row) in acc.iter_mut().enumerate() {
                let qv = _mm512_loadu_ps(q.add(i * pd + k));
                for (a, &xj) in row.iter_mut().zip(xv.iter()) {
                    *a = _mm512_fmadd_ps(qv, xj, *a);
                }
            }
            k += LANES;
        }
        if QT == 4 && XT == 4 {
            let mut flat = [_mm512_setzero_ps(); 16];
            for (i, row) in acc.iter().enumerate() {
                flat[i * 4..i * 4 + 4].copy_from_slice(row);
            }
            reduce_4x4_avx512(&flat, out, stride);
            return;
        }
        for (i, row) in acc.iter().enumerate() {
            for (j, &a) in row.iter().enumerate() {
                *out.add(i * stride + j) = reduce16_avx512(a);
            }
        }
    }

    /// Reduces 16 accumulators (`v[i * 4 + j]` for query i, row j) at once
    /// with shuffles. Each level adds exactly the lane pairs of the shared
    /// tree (`l + l+8`, `+4`, `+2`, `+1`), so the sums are bitwise equal to
    /// [`reduce16_avx512`] while taking a third of the instructions.
    #[inline]
    #[target_feature(enable = "avx512f")]
    unsafe fn reduce_4x4_avx512(v: &[__m512; 16], out: *mut f32, stride: usize) {
        // Level 1: s8 of v[2m] in lanes 0..8 and of v[2m+1] in lanes 8..16.
        let mut w = [_mm512_setzero_ps(); 8];
        for (m, wm) in w.iter_mut().enumerate() {
            let (a, b) = (v[2 * m], v[2 * m + 1]);
            *wm = _mm512_add_ps(_mm512_shuffle_f32x4::<0x44>(a, b), _mm512_shuffle_f32x4::<0xEE>(a, b));
        }
        // Level 2: x[n] holds s4 of v[4n + j] in 128-bit block j.
        let mut x = [_mm512_setzero_ps(); 4];
        for (n, xn) in x.iter_mut().enumerate() {
            let (a, b) = (w[2 * n], w[2 * n + 1]);
            *xn = _mm512_add_ps(_mm512_shuffle_f32x4::<0x88>(a, b), _mm512_shuffle_f32x4::<0xDD>(a, b));
        }
        // Level 3: per block, [s2 of x0 | s2 of x1] and [s2 of x2 | s2 of x3].
        let y0 = _mm512_add_ps(_mm512_shuffle_ps::<0x44>(x[0], x[1]), _mm512_shuffle_ps::<0xEE>(x[0], x[1]));
        let y1 = _mm512_add_ps(_mm512_shuffle_ps::<0x44>(x[2], x[3]), _mm512_shuffle_ps::<0xEE>(x[2], x[3]));
        // Level 4: block j lane i is the full sum for query i, row j.
        let z = _mm512_add_ps(_mm512_shuffle_ps::<0x88>(y0, y1), _mm512_shuffle_ps::<0xDD>(y0, y1));
        let mut sums = [0.0f32; 16];
        _mm512_storeu_ps(sums.as_mut_ptr(), z);
        for i in 0..4 {
            for j in 0..4 {
                *out.add(i * stride + j) = sums[j * 4 + i];
            }
        }
    }

    /// # Safety
    /// The CPU supports avx512f; `q` holds `nq * pd` floats, `x` holds
    /// `nx * pd`, `out` holds `(nq - 1) * stride + nx`.
    #[target_feature(enable = "avx512f")]
    #[allow(clippy::too_many_arguments)]
    pub unsafe fn block_avx512(
        q: *const f32,
        nq: usize,
        x: *const f32,
        nx: usize,
        pd: usize,
        out: *mut f32,
        stride: usize,
        mut prefetch: Prefetch,
    ) {
        let mut i = 0;
        while i + 4 <= nq {
            let (qi, oi) = (q.add(i * pd), out.add(i * stride));
            let mut j = 0;
            while j + 4 <= nx {
                tile_avx512::<4, 4>(qi, x.add(j * pd), pd, oi.add(j), stride);
                prefetch.after_tile();
                j += 4;
            }
            while j < nx {
                tile_avx512::<4, 1>(qi, x.add(j * pd), pd, oi.add(j), stride);
                j += 1;
            }
            i += 4;
        }
        while i < nq {
            let (qi, oi) = (q.add(i * pd), out.add(i * stride));
            let mut j = 0;
            while j + 8 <= nx {
                tile_avx512::<1, 8>(qi, x.add(j * pd), pd, oi.add(j), stride);
                j += 8;
            }
            while j < nx {
                tile_avx512::<1, 1>(qi, x.add(j * pd), pd, oi.add(j), stride);
                j += 1;
            }
            i += 1;
        }
    }

    /// A 16-lane accumulator as two 8-lane halves (lanes 0..8 and 8..16).
    /// Each half is done for every pair of the tile before the other, so a
    /// tile holds only `XT` row vectors and one query vector besides its
    /// `2 · QT · XT` accumulators: the 3 × 2 tile fits the 16 ymm registers
    /// with 10 loads per 12 multiply-adds (the 2 × 2 tile needs 8 per 8).
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn tile_avx2<const QT: usize, const XT: usize>(
        q: *const f32,
        x: *const f32,
        pd: usize,
        out: *mut f32,
        stride: usize,
    ) {
        let mut acc = [[[_mm256_setzero_ps(); XT]; QT]; 2];
        let mut k = 0;
        while k < pd {
            for (h, half) in acc.iter_mut().enumerate() {
                let at = k + h * 8;
                let mut xv = [_mm256_setzero_ps(); XT];
                for (j, v) in xv.iter_mut().enumerate() {
                    *v = _mm256_loadu_ps(x.add(j * pd + at));
                }
                for (i, row) in half.iter_mut().enumerate() {
                    let qv = _mm256_loadu_ps(q.add(i * pd + at));
                    for (a, &xj) in row.iter_mut().zip(xv.iter()) {
                        *a = _mm256_fmadd_ps(qv, xj, *a);
                    }
                }
            }
            k += LANES;
        }
        let [lo, hi] = acc;
        let s8 = |i: usize, j: usize| _mm256_add_ps(lo[i][j], hi[i][j]);
        if XT == 2 && QT >= 2 {
            // Pairs of queries at once; an odd last query is reduced with
            // itself as the partner and only its own row written.
            let mut i = 0;
            while i < QT {
                let partner = if i + 1 < QT { i + 1 } else { i };
                let sums = reduce_2x2_avx2(&[s8(i, 0), s8(i, 1), s8(partner, 0), s8(partner, 1)]);
                *out.add(i * stride) = sums[0];
                *out.add(i * stride + 1) = sums[1];
                if partner != i {
                    *out.add(partner * stride) = sums[2];
                    *out.add(partner * stride + 1) = sums[3];
                }
                i += 2;
            }
            return;
        }
        for i in 0..QT {
            for j in 0..XT {
                *out.add(i * stride + j) = reduce8(s8(i, j));
            }
        }
    }

    /// Reduces the 8-lane sums `s8[i * 2 + j]` (query i, row j; lanes 0..8
    /// already added to lanes 8..16) of a 2 × 2 tile at once, returning them
    /// in that order. Each level adds
    /// exactly the lane pairs of [`reduce8`] (`+4`, `+2`, `+1`), so the sums
    /// are bitwise equal to it, in 11 vector instructions instead of 24.
    #[inline]
    #[target_feature(enable = "avx2")]
    unsafe fn reduce_2x2_avx2(s8: &[__m256; 4]) -> [f32; 4] {
        // +4: [s4 of s8[0] | s4 of s8[1]] and [s4 of s8[2] | s4 of s8[3]].
        let (a, b, c, d) = (s8[0], s8[1], s8[2], s8[3]);
        let ab = _mm256_add_ps(_mm256_permute2f128_ps::<0x20>(a, b), _mm256_permute2f128_ps::<0x31>(a, b));
        let cd = _mm256_add_ps(_mm256_permute2f128_ps::<0x20>(c, d), _mm256_permute2f128_ps::<0x31>(c, d));
        // +2: per 128-bit half, [s2 of ab | s2 of cd].
        let s2 = _mm256_add_ps(_mm256_shuffle_ps::<0x44>(ab, cd), _mm256_shuffle_ps::<0xEE>(ab, cd));
        // +1: lanes 0, 2 | 4, 6 hold the sums of s8[0], s8[2] | s8[1], s8[3].
        let s1 = _mm256_add_ps(s2, _mm256_shuffle_ps::<0xB1>(s2, s2));
        let mut sums = [0.0f32; 8];
        _mm256_storeu_ps(sums.as_mut_ptr(), s1);
        [sums[0], sums[4], sums[2], sums[6]]
    }

    /// # Safety
    /// The CPU supports avx2 and fma; bounds as for [`block_avx512`].
    #[target_feature(enable = "avx2,fma")]
    #[allow(clippy::too_many_arguments)]
    pub unsafe fn block_avx2(
        q: *const f32,
        nq: usize,
        x: *const f32,
        nx: usize,
        pd: usize,
        out: *mut f32,
        stride: usize,
        mut prefetch: Prefetch,
    ) {
        let mut i = 0;
        while i + 3 <= nq {
            let (qi, oi) = (q.add(i * pd), out.add(i * stride));
            let mut j = 0;
            while j + 2 <= nx {
                tile_avx2::<3, 2>(qi, x.add(j * pd), pd, oi.add(j), stride);
                prefetch.after_tile();
                j += 2;
            }
            while j < nx {
                tile_avx2::<3, 1>(qi, x.add(j * pd), pd, oi.add(j), stride);
                j += 1;
            }
            i += 3;
        }
        if i + 2 <= nq {
            let (qi, oi) = (q.add(i * pd), out.add(i * stride));
            let mut j = 0;
            while j + 2 <= nx {
                tile_avx2::<2, 2>(qi, x.add(j * pd), pd, oi.add(j), stride);
                j += 2;
            }
            while j < nx {
                tile_avx2::<2, 1>(qi, x.add(j * pd), pd, oi.add(j), stride);
                j += 1;
            }
            i += 2;
        }
        while i < nq {
            let (qi, oi) = (q.add(i * pd), out.add(i * stride));
            let mut j = 0;
            while j + 4 <= nx {
                tile_avx2::<1, 4>(qi, x.add(j * pd), pd, oi.add(j), stride);
                j += 4;
            }
            while j < nx {
                tile_avx2::<1, 1>(qi, x.add(j * pd), pd, oi.add(j), stride);
                j += 1;
            }
            i += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(n: usize, pd: usize, seed: u32) -> Vec<f32> {
        let mut s = seed.wrapping_mul(2654435761).wrapping_add(1);
        (0..n * pd)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 17;
                s ^= s << 5;
                (s % 2001) as f32 / 1000.0 - 1.0
            })
            .collect()
    }

    #[test]
    fn every_path_and_tile_shape_gives_bitwise_equal_scores() {
        let pd = padded(100);
        let (nq, nx) = (7, 13);
        let q = data(nq, pd, 1);
        let x = data(nx, pd, 2);
        let mut reference = vec![0.0; nq * nx];
        dot_block(Isa::Portable, &q, nq, &x, nx, pd, &mut reference, nx);
        for isa in Isa::available() {
            let mut out = vec![0.0; nq * nx];
            dot_block(isa, &q, nq, &x, nx, pd, &mut out, nx);
            assert_eq!(out, reference, "{isa:?} differs from the portable path");
            // Prefetching the next rows changes nothing but the cache.
            let mut prefetched = vec![0.0; nq * nx];
            dot_block_prefetching(isa, &q, nq, &x, nx, pd, &mut prefetched, nx, &x[pd..]);
            assert_eq!(prefetched, reference, "{isa:?} with prefetching");
            // One pair at a time must equal the tiled result too.
            for i in 0..nq {
                for j in 0..nx {
                    let mut one = [0.0];
                    dot_block(isa, &q[i * pd..], 1, &x[j * pd..], 1, pd, &mut one, 1);
                    assert_eq!(one[0].to_bits(), reference[i * nx + j].to_bits());
                }
            }
        }
    }

    /// Every block shape (full tiles, remainders in both directions, their
    /// combinations) on every path, bitwise against the portable path, at a
    /// few dimensions, with the output strided as the search writes it.
    #[test]
    fn every_block_shape_matches_the_portable_path() {
        for pd in [16, 48, padded(384)] {
            let q = data(9, pd, 5);
            let x = data(17, pd, 6);
            for nq in 1..=9 {
                for nx in 1..=17 {
                    let stride = 17;
                    let mut reference = vec![0.0f32; nq * stride];
                    dot_block(Isa::Portable, &q, nq, &x, nx, pd, &mut reference, stride);
                    for isa in Isa::available() {
                        let mut out = vec![0.0f32; nq * stride];
                        dot_block_prefetching(isa, &q, nq, &x, nx, pd, &mut out, stride, &q[..pd]);
                        let same = out.iter().zip(&reference).all(|(a, b)| a.to_bits() == b.to_bits());
                        assert!(same, "{isa:?}, {nq} queries × {nx} rows, pd {pd}");
                    }
                }
            }
        }
    }

    #[test]
    fn dot_matches_naive_sum() {
        let pd = padded(33);
        let q = data(1, pd, 3);
        let x = data(1, pd, 4);
        let mut out = [0.0];
        dot_block(Isa::detect(), &q, 1, &x, 1, pd, &mut out, 1);
        let naive: f64 = q.iter().zip(&x).map(|(a, b)| *a as f64 * *b as f64).sum();
        assert!((out[0] as f64 - naive).abs() < 1e-4);
    }
}
