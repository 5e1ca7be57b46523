// Reduction template, rendered once per (operation, operand layout). Placeholders:
//   $NAME  kernel name prefix      $STATE  accumulator type     $INIT  identity state
//   $ADD   state (+) element       $MERGE  state (+) state      $FINISH(s)  the result
//   $ARGS  operand parameters      $LOAD   the j-th element of output row r
//   $RUN(lin, off, step, len)  a run of the row starting at row-major index lin: the
//          buffer index of its first element, the step between its elements and how many
//          it holds (a view: to the end of its last axis; the serial shape walks runs, so
//          the index arithmetic of a view runs once per run, not once per element)
// Two shapes of the same reduction: "serial" (one work-item per output row, for
// short rows) and "tree" (one work-group of RL work-items per row: strided partial
// reductions, then a tree in local memory; for long rows). Indices are 64-bit: a
// row of a view may hold more than 2^31 elements. `scale` multiplies a sum's result
// (the host drops broadcast axes of a sum and passes their size); max ignores it.

$STATE ${NAME}_add($STATE s, const float x) { $ADD }
$STATE ${NAME}_merge($STATE s, const $STATE o) { $MERGE }
float ${NAME}_finish(const $STATE s, const float scale) { $FINISH }

__kernel void ${NAME}_serial($ARGS, __global float* out, const int rows, const long size, const float scale) {
    const int r = get_global_id(0);
    if (r >= rows) return;
    // four accumulators taking every fourth element of a run: four independent dependency
    // chains (a compensated add is four dependent operations; ~2x faster on PoCL)
    $STATE acc = $INIT, acc2 = $INIT, acc3 = $INIT, acc4 = $INIT;
    for (long j = 0; j < size;) {
        long off, step, len;
        $RUN((long)r * size + j, off, step, len);
        len = min(len, size - j);
        long k = 0;
        for (; k + 3 < len; k += 4) {
            acc = ${NAME}_add(acc, a[off + k * step]);
            acc2 = ${NAME}_add(acc2, a[off + (k + 1) * step]);
            acc3 = ${NAME}_add(acc3, a[off + (k + 2) * step]);
            acc4 = ${NAME}_add(acc4, a[off + (k + 3) * step]);
        }
        for (; k < len; ++k) acc = ${NAME}_add(acc, a[off + k * step]);
        j += len;
    }
    out[r] = ${NAME}_finish(${NAME}_merge(${NAME}_merge(acc, acc2), ${NAME}_merge(acc3, acc4)), scale);
}

__kernel void ${NAME}_tree($ARGS, __global float* out, const int rows, const long size, const float scale) {
    __local $STATE part[RL];
    const int r = get_group_id(0), l = get_local_id(0);
    $STATE acc = $INIT;
    for (long j = l; j < size; j += RL) acc = ${NAME}_add(acc, $LOAD);
    part[l] = acc;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int s = RL / 2; s > 0; s >>= 1) {
        if (l < s) part[l] = ${NAME}_merge(part[l], part[l + s]);
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    if (l == 0) out[r] = ${NAME}_finish(part[0], scale);
}

// "split": few long rows (a whole-tensor sum) spread over `groups` work-groups per row,
// or they would run on one core / one GPU multiprocessor. Each group reduces one chunk
// of its row to a state in `partial`; ${NAME}_join merges the states of each row.
__kernel void ${NAME}_split($ARGS, __global $STATE* partial, const int rows, const long size, const int groups) {
    __local $STATE part[RL];
    const int g = get_group_id(0), l = get_local_id(0);
    const int r = g / groups, piece = g % groups;
    const long chunk = (size + groups - 1) / groups;
    const long start = (long)piece * chunk, stop = min(size, start + chunk);
    $STATE acc = $INIT;
    for (long j = start + l; j < stop; j += RL) acc = ${NAME}_add(acc, $LOAD);
    part[l] = acc;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int s = RL / 2; s > 0; s >>= 1) {
        if (l < s) part[l] = ${NAME}_merge(part[l], part[l + s]);
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    if (l == 0) partial[g] = part[0];
}

__kernel void ${NAME}_join(__global const $STATE* partial, __global float* out, const int rows, const int groups,
                           const float scale) {
    const int r = get_global_id(0);
    if (r >= rows) return;
    __global const $STATE* p = partial + (long)r * groups;
    $STATE acc = p[0];
    for (int k = 1; k < groups; ++k) acc = ${NAME}_merge(acc, p[k]);
    out[r] = ${NAME}_finish(acc, scale);
}
