/* distill tests (compute) — finite-difference checks of a model's
 * second-order products (H·v, ∇_x⟨g,v⟩, ∇_y⟨g,v⟩) against its gradient. */
#ifndef DD_TEST_COMPUTE_FD_H
#define DD_TEST_COMPUTE_FD_H

#include <stdint.h>

#include "distill/host.h"
#include "distill/distill.h"

typedef struct compute_hvp_errors {
    double hv, mixed_x, mixed_y; /**< relative errors vs central differences (-1: not run) */
    double grad_match;           /**< hvp's by-product g vs loss_grad's g */
    double loss_match;           /**< |loss(hvp) − loss(loss_grad)| */
    double hv_norm;              /**< ||H v|| (a sanity check that it is not zero) */
    double eps_used;             /**< step of the differences (after shrinking) */
    int kink_free;               /**< θ ± eps·v share θ's relu / max-pool pattern */
} compute_hvp_errors;

/** Random θ (init scheme), x ~ N(0,1), labels (hard, or soft probabilities
 * if `soft`), v ~ N(0, rms(θ)²); compares dd_model_hvp with central
 * differences of dd_model_loss_grad along v with step eps (relative to
 * θ's scale), shrunk (÷3, up to 5 times) until θ ± eps·v have θ's relu /
 * max-pool pattern. mixed_y uses per-element differences in y (soft only). */
int compute_check_hvp(dd_model *m, int64_t batch, int soft, double eps, uint64_t seed,
                      compute_hvp_errors *out);

#endif
