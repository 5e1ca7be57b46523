// Reduction template, rendered once per (operation, operand layout). Placeholders:
//   $NAME  kernel name prefix        $INIT  identity      $OP(x, y)  combine
//   $ARGS  operand parameters        $LOAD(j)  the j-th element of output row r
// Two shapes of the same reduction: "serial" (one work-item per output row, for
// short rows) and "tree" (one work-group of RL work-items per row: strided partial
// reductions, then a tree in local memory; for long rows).

float ${NAME}_op(const float x, const float y) { return $OP; }

__kernel void ${NAME}_serial($ARGS, __global float* out, const int rows, const int size) {
    const int r = get_global_id(0);
    if (r >= rows) return;
    float acc = $INIT;
    for (int j = 0; j < size; ++j) acc = ${NAME}_op(acc, $LOAD);
    out[r] = acc;
}

__kernel void ${NAME}_tree($ARGS, __global float* out, const int rows, const int size) {
    __local float part[RL];
    const int r = get_group_id(0), l = get_local_id(0);
    float acc = $INIT;
    for (int j = l; j < size; j += RL) acc = ${NAME}_op(acc, $LOAD);
    part[l] = acc;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int s = RL / 2; s > 0; s >>= 1) {
        if (l < s) part[l] = ${NAME}_op(part[l], part[l + s]);
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    if (l == 0) out[r] = part[0];
}
