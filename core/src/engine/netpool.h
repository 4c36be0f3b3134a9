/* distill (internal) — pools of pretrained networks: members in memory, their
 * storage on disk (one θ file per member, config.yaml, accuracies.json) and
 * the split into members used for distillation and held-out members used
 * only for evaluation. */
#ifndef DD_NETPOOL_H
#define DD_NETPOOL_H

#include <stddef.h>
#include <stdint.h>

#include "base/export.h"
#include "distill/status.h"

/** A pool of `n` networks with `n_params` parameters each. Members
 * 0 .. n − holdout − 1 are for distillation, the last `holdout` ones are held
 * out for evaluation. */
typedef struct dd_netpool {
    int n;
    int holdout;
    size_t n_params;
    float **theta;    /**< n members of n_params floats (owned) */
    double *accuracy; /**< test accuracy of each member where it was trained, or −1 (owned) */
    char key[65];     /**< SHA-256 (hex) of the configuration that made the pool, or "" */
} dd_netpool;

/** Allocates a pool of zeroed members, accuracies −1. Caller owns *out. */
DD_INTERNAL dd_status dd_netpool_create(int n, int holdout, size_t n_params, dd_netpool **out);
DD_INTERNAL void dd_netpool_destroy(dd_netpool *p);

/** Members used for distillation and their count (n − holdout). */
DD_INTERNAL const float *const *dd_netpool_train_members(const dd_netpool *p, size_t *count);
/** Held-out members and their count (holdout). */
DD_INTERNAL const float *const *dd_netpool_heldout_members(const dd_netpool *p, size_t *count);

/** Hex SHA-256 of `text` into key (65 chars with the terminator). */
DD_INTERNAL void dd_netpool_key(const char *text, char key[65]);

/** <dir>/member-<i>.theta: written to a temporary name, then renamed. */
DD_INTERNAL dd_status dd_netpool_save_member(const dd_netpool *p, int i, const char *dir);
/** Reads member i; DD_ERR_NOT_FOUND if the file does not exist, DD_ERR_IO /
 * DD_ERR_INVALID (naming the file) if it is damaged or has another
 * parameter count. */
DD_INTERNAL dd_status dd_netpool_load_member(dd_netpool *p, int i, const char *dir);
/** Writes <dir>/config.yaml (`config_text`) and <dir>/accuracies.json. The
 * latter marks the pool as complete. */
DD_INTERNAL dd_status dd_netpool_write_index(const dd_netpool *p, const char *dir,
                                             const char *config_text);
/** Loads a complete pool from `dir` (every member and accuracies.json).
 * DD_ERR_NOT_FOUND if the pool is not complete there. */
DD_INTERNAL dd_status dd_netpool_load(dd_netpool *p, const char *dir);

#endif
