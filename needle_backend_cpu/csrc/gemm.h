// Packed, register-blocked, multithreaded SGEMM (row-major).
#pragma once

#include <cstdint>

namespace needle {

// C (m x p, leading dim ldc) = A (m x n, lda) @ B (n x p, ldb); C is overwritten.
// Uses up to num_threads() threads; deterministic (each C element is computed by one
// thread, k in a fixed order).
void sgemm(int64_t m, int64_t n, int64_t p, const float* A, int64_t lda, const float* B, int64_t ldb, float* C,
           int64_t ldc);

// The same, single-threaded (callers that parallelise over many small products).
void sgemm_serial(int64_t m, int64_t n, int64_t p, const float* A, int64_t lda, const float* B, int64_t ldb,
                  float* C, int64_t ldc);

// C = op(A) @ op(B) with op(X) = X or X^T: trans_a means A is stored n x m (leading dim
// lda, A[i, k] = A_stored[k * lda + i]), trans_b that B is stored p x n.
void sgemm_trans(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t p, const float* A, int64_t lda,
                 const float* B, int64_t ldb, float* C, int64_t ldc);

// The same, single-threaded.
void sgemm_trans_serial(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t p, const float* A, int64_t lda,
                        const float* B, int64_t ldb, float* C, int64_t ldc);

// An operand whose rows are gathered rather than strided: row r starts at rows[r], and
// its logical column k lies at offsets[s] + (k - starts[s]) from there, for the segment
// s with starts[s] <= k < starts[s + 1] (starts[0] = 0, starts[segs] = the row length).
// A convolution's windows are such rows, one segment per kernel row: the GEMM packs its
// panels straight from the image, with no window copy (im2col) in between.
struct GatheredRows {
  const float* const* rows;
  const int64_t* starts;   // segs + 1 entries
  const int64_t* offsets;  // segs entries
  int segs;
};

// Single-threaded C = A @ B with A gathered: trans_a false, A[i, k] = row i's column k
// (m rows of length n); trans_a true, A[i, k] = row k's column i (n rows of length m).
void sgemm_gathered_serial(bool trans_a, int64_t m, int64_t n, int64_t p, const GatheredRows& A, const float* B,
                           int64_t ldb, float* C, int64_t ldc);

}  // namespace needle
