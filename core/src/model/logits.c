/* distill — small helpers on one sample's logits, exported for objective
 * plugins (distill/objective.h). */
#include <math.h>

#include "distill/objective.h"

double dd_log_sum_exp(const float *z, int n) {
    double zmax = z[0];
    for (int k = 1; k < n; k++)
        if (z[k] > zmax) zmax = z[k];
    double sum = 0.0;
    for (int k = 0; k < n; k++)
        sum += exp((double)z[k] - zmax);
    return zmax + log(sum);
}

int dd_argmax(const float *z, int n) {
    int best = 0;
    for (int k = 1; k < n; k++)
        if (z[k] > z[best]) best = k;
    return best;
}
