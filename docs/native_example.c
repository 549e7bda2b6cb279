/* native_example.c: calling a model built by `jitorch build` through its C API (docs/native.md).
 *
 * The model: an MLP exported with a dynamic batch dim, input x float32 [batch, 16], one output
 * float32 [batch, 10], built as `jitorch build mlp.jt -o out` (the test suite does this in
 * tests/test_native.py). Compile and run:
 *
 *     cc -O2 -I out native_example.c -L out -lmlp -Wl,-rpath,"$PWD/out" -o example && ./example 3
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "mlp.h"

int main(int argc, char **argv) {
    int64_t batch = argc > 1 ? atoll(argv[1]) : 2;
    printf("%s", mlp_signature());

    /* inputs: plain C-contiguous arrays and their shapes */
    int64_t x_shape[2] = {batch, 16};
    float *x = malloc(sizeof(float) * (size_t)(batch * 16));
    for (int64_t i = 0; i < batch * 16; i++) x[i] = (float)sin(0.1 * (double)i);

    /* outputs: the caller allocates them; mlp_output_shape gives their shapes for this batch */
    int64_t y_shape[8];
    int ndim = mlp_output_shape(0, batch, y_shape);
    size_t n = 1;
    for (int d = 0; d < ndim; d++) n *= (size_t)y_shape[d];
    float *y = malloc(sizeof(float) * n);

    if (mlp_run(x, x_shape, y) != 0) {
        fprintf(stderr, "mlp_run failed: %s\n", mlp_last_error());
        return 1;
    }
    for (size_t i = 0; i < n; i++) printf("%.9g%c", y[i], (i + 1) % (size_t)y_shape[ndim - 1] ? ' ' : '\n');

    /* a wrong shape is refused with a message, nothing is computed */
    int64_t bad_shape[2] = {batch, 15};
    if (mlp_run(x, bad_shape, y) == 0) return 1;
    printf("refused: %s\n", mlp_last_error());
    free(x);
    free(y);
    return 0;
}
