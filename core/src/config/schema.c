/* distill — the parameter specs of the core-owned pipeline sections: the
 * only place their keys, types, ranges and defaults are written. Engine code
 * reads these keys with dd_options_*; append new keys at the end of a
 * section's array. */
#include "config/schema.h"

#include <stdio.h>
#include <string.h>

#define MIN_ DD_PARAM_HAS_MIN
#define MAX_ DD_PARAM_HAS_MAX
#define GT_ (DD_PARAM_HAS_MIN | DD_PARAM_MIN_EXCLUSIVE)
#define END_                                                                                       \
    { NULL, 0, NULL, 0, 0, 0, NULL, NULL }

static const dd_param_spec top_spec[] = {
    {"name", DD_PARAM_STRING, NULL, 0, 0, 0, NULL,
     "run name (letters, digits, '.', '_', '-'); default: the file name without .yaml"},
    {"description", DD_PARAM_STRING, NULL, 0, 0, 0, NULL, "free text shown by 'distill validate'"},
    {"seed", DD_PARAM_INT, "0", MIN_, 0, 0, NULL,
     "seed for every random choice: data order, inits, distillation"},
    {"stages", DD_PARAM_LIST, NULL, 0, 0, 0, DD_STAGE_CHOICES,
     "stages to run, in this order; default: fetch, load, then pretrain/distill/evaluate for each "
     "section present, and report after distill or evaluate"},
    END_,
};

static const dd_param_spec dataset_core[] = {
    {"plugin", DD_PARAM_STRING, NULL, DD_PARAM_REQUIRED, 0, 0, NULL,
     "dataset reader plugin (see 'distill plugins')"},
    {"name", DD_PARAM_STRING, NULL, 0, 0, 0, NULL,
     "manifest name (datasets/<name>.yaml); default: the plugin's first dataset"},
    {"path", DD_PARAM_STRING, NULL, DD_PARAM_PATH, 0, 0, NULL,
     "local directory already holding the dataset files (skips downloading); for a reader of "
     "your own data (imagefolder, npz): the directory, archive or file it reads"},
    {"mirrors", DD_PARAM_LIST, "", 0, 0, 0, NULL,
     "extra mirror URLs tried before the manifest's (file://, http(s)://)"},
    {"verify", DD_PARAM_BOOL, "true", 0, 0, 0, NULL, "verify checksums of fetched files"},
    {"height", DD_PARAM_INT, "0", MIN_ | MAX_, 0, 65535, NULL,
     "image height to load at; 0 = native"},
    {"width", DD_PARAM_INT, "0", MIN_ | MAX_, 0, 65535, NULL, "image width to load at; 0 = native"},
    {"cache_dir", DD_PARAM_STRING, NULL, DD_PARAM_PATH, 0, 0, NULL,
     "download/unpack cache; default: $XDG_CACHE_HOME/distill or ~/.cache/distill"},
    {"max_image_dim", DD_PARAM_INT, "16384", MIN_ | MAX_, 1, 32768, NULL,
     "limit: largest width or height of an image file a reader decodes"},
    {"max_image_pixels", DD_PARAM_INT, "67108864", MIN_, 1, 0, NULL,
     "limit: largest width × height of an image file a reader decodes (8192×8192)"},
    {"max_bytes", DD_PARAM_INT, "0", MIN_, 0, 0, NULL,
     "limit: memory of one decoded split (and of the unrolled steps' parameters), in bytes; "
     "0 = 3/4 of physical memory"},
    {"cache", DD_PARAM_BOOL, "true", 0, 0, 0, NULL,
     "keep the decoded images in a cache file (<cache>/<dataset>/decoded/) and load them from "
     "there while the reader, its options and its input files are unchanged"},
    {"memory", DD_PARAM_ENUM, "auto", 0, 0, 0, "auto|ram|mmap",
     "where the decoded images live: ram, mmap (mapped from the decoded cache, not counted in "
     "max_bytes), or auto (mmap when both splits exceed mmap_threshold)"},
    {"mmap_threshold", DD_PARAM_INT, "1073741824", MIN_, 1, 0, NULL,
     "with memory: auto, map the decoded cache instead of holding it in RAM when both splits "
     "together take more than this many bytes (1 GiB)"},
    END_,
};

static const dd_param_spec model_core[] = {
    {"plugin", DD_PARAM_STRING, NULL, DD_PARAM_REQUIRED, 0, 0, NULL,
     "model plugin (see 'distill plugins')"},
    {"init", DD_PARAM_ENUM, "xavier", 0, 0, 0, "xavier|xavier-uniform|kaiming|kaiming-uniform",
     "weight init scheme for random inits; default: the model's own, else xavier"},
    {"gain", DD_PARAM_FLOAT, "1.0", GT_, 0, 0, NULL, "scale applied to the init scheme's weights"},
    {"backend", DD_PARAM_ENUM, "onednn", 0, 0, 0, "onednn|reference",
     "compute backend for conv/linear layers"},
    END_,
};

static const dd_param_spec objective_core[] = {
    {"plugin", DD_PARAM_STRING, "classification", 0, 0, 0, NULL,
     "objective plugin (see 'distill plugins')"},
    END_,
};

static const dd_param_spec distill_spec[] = {
    {"steps", DD_PARAM_INT, "10", MIN_ | MAX_, 1, 10000, NULL, "distilled GD steps per epoch (S)"},
    {"epochs", DD_PARAM_INT, "3", MIN_ | MAX_, 1, 1000, NULL,
     "passes over the distilled steps (E)"},
    {"images_per_class", DD_PARAM_INT, "1", MIN_ | MAX_, 1, 10000, NULL,
     "distilled images per class per step"},
    {"iterations", DD_PARAM_INT, "1000", MIN_, 1, 0, NULL, "outer optimisation iterations"},
    {"batch_real", DD_PARAM_INT, "1024", MIN_, 1, 0, NULL, "real images per outer iteration"},
    {"lr_init", DD_PARAM_FLOAT, "0.02", GT_, 0, 0, NULL,
     "initial value of every learned step size"},
    {"init_mode", DD_PARAM_ENUM, "fixed", 0, 0, 0,
     "fixed|random|pretrained-fixed|pretrained-random", "distribution of the network init theta_0"},
    {"nets_per_iteration", DD_PARAM_INT, "1", MIN_ | MAX_, 1, 4096, NULL,
     "inits sampled per outer iteration (their hypergradients are averaged)"},
    {"image_init", DD_PARAM_ENUM, "normal", 0, 0, 0, "normal|real",
     "start distilled images from N(0,1) noise or from random real images"},
    {"learn_labels", DD_PARAM_BOOL, "false", 0, 0, 0, NULL, "also learn soft labels"},
    {"optimizer.lr", DD_PARAM_FLOAT, "0.01", GT_, 0, 0, NULL, "Adam learning rate for the images"},
    {"optimizer.beta1", DD_PARAM_FLOAT, "0.5", MIN_ | MAX_ | DD_PARAM_MAX_EXCLUSIVE, 0, 1, NULL,
     "Adam beta1"},
    {"optimizer.beta2", DD_PARAM_FLOAT, "0.999", MIN_ | MAX_ | DD_PARAM_MAX_EXCLUSIVE, 0, 1, NULL,
     "Adam beta2"},
    {"optimizer.lr_lr", DD_PARAM_FLOAT, "0.01", GT_, 0, 0, NULL,
     "Adam learning rate for the log step sizes"},
    {"optimizer.decay_every", DD_PARAM_INT, "0", MIN_, 0, 0, NULL,
     "multiply the learning rates by 'decay' every this many iterations; 0 = never"},
    {"optimizer.decay", DD_PARAM_FLOAT, "0.5", GT_ | MAX_, 0, 1, NULL,
     "learning-rate decay factor"},
    {"checkpoint_every", DD_PARAM_INT, "100", MIN_, 0, 0, NULL,
     "save a checkpoint every this many iterations; 0 = only at the end"},
    {"log_every", DD_PARAM_INT, "10", MIN_, 1, 0, NULL,
     "log the outer loss every this many iterations"},
    {"threads", DD_PARAM_INT, "0", MIN_ | MAX_, 0, 4096, NULL, "worker threads; 0 = all cores"},
    {"real_chunk", DD_PARAM_INT, "0", MIN_, 0, 0, NULL,
     "real images per slice of the real batch (run one slice at a time per worker, gradients "
     "summed); 0 = auto: one slice per worker, at most 128 images, fewer while its activations "
     "would pass 256 MiB"},
    {"max_unrolled_images", DD_PARAM_INT, "1000000", MIN_, 0, 0, NULL,
     "limit: steps × epochs × images_per_class × classes; 0 = no limit"},
    END_,
};

static const dd_param_spec evaluate_spec[] = {
    {"nets", DD_PARAM_INT, "20", MIN_ | MAX_, 1, 10000, NULL,
     "fresh networks trained and tested per method"},
    {"baselines", DD_PARAM_LIST, "random, average, kmeans", 0, 0, 0,
     "random|average|kmeans|best_of_random|knn",
     "baselines compared with the distilled images (same image count); best_of_random: the best of "
     "best_of_random_n random subsets on held-out training images; knn: also classify the "
     "test set by nearest neighbours among each set's images"},
    {"fixed_lr", DD_PARAM_FLOAT, "0.02", GT_, 0, 0, NULL,
     "step size for the 'distilled data with a fixed lr' comparison"},
    {"protocols", DD_PARAM_LIST, "steps", 0, 0, 0, "steps|cross_architecture|standard_training",
     "how sets are evaluated, reported side by side: steps (the learned steps in the "
     "distillation's init mode), cross_architecture (evaluate.architectures, random inits, step "
     "sizes optimised for each), standard_training (ordinary minibatch SGD, "
     "standard_training.*)"},
    {"lr_search", DD_PARAM_INT, "1000", MIN_, 0, 0, NULL,
     "most iterations of step-size optimisation of a baseline (or of any set on another "
     "architecture); the search stops earlier once the loss stops improving (lr_search_*); "
     "0 = keep the initial step size"},
    {"lr_search_batch", DD_PARAM_INT, "0", MIN_, 0, 0, NULL,
     "real images per iteration of the step-size search; 0 = distill.batch_real"},
    {"lr_search_window", DD_PARAM_INT, "25", MIN_ | MAX_, 1, 100000, NULL,
     "iterations per window of the step-size search: the outer loss is compared window by "
     "window"},
    {"lr_search_lr", DD_PARAM_FLOAT, "0.03", GT_, 0, 0, NULL,
     "Adam learning rate of the raw step sizes in the search (halved when a window does not "
     "improve)"},
    {"lr_search_tol", DD_PARAM_FLOAT, "0.005", MIN_ | MAX_ | DD_PARAM_MAX_EXCLUSIVE, 0, 1, NULL,
     "a window improves when its mean loss is below the best by more than this fraction"},
    {"lr_search_halvings", DD_PARAM_INT, "2", MIN_ | MAX_, 0, 20, NULL,
     "windows without improvement that halve the Adam rate before the search stops at the "
     "next one"},
    {"step_curves", DD_PARAM_BOOL, "true", 0, 0, 0, NULL,
     "test after every inner step (the accuracy-versus-steps curve of every set)"},
    {"cross_architecture.nets", DD_PARAM_INT, "5", MIN_ | MAX_, 1, 10000, NULL,
     "random inits each other architecture is measured on"},
    {"standard_training.epochs", DD_PARAM_INT, "300", MIN_ | MAX_, 1, 100000, NULL,
     "epochs of ordinary training on a set"},
    {"standard_training.nets", DD_PARAM_INT, "5", MIN_ | MAX_, 1, 10000, NULL,
     "fresh networks per set (mean ± std)"},
    {"standard_training.lr", DD_PARAM_FLOAT, "0.01", GT_, 0, 0, NULL,
     "SGD learning rate (cosine schedule to 0)"},
    {"standard_training.momentum", DD_PARAM_FLOAT, "0.9", MIN_ | MAX_ | DD_PARAM_MAX_EXCLUSIVE, 0,
     1, NULL, "SGD momentum"},
    {"standard_training.weight_decay", DD_PARAM_FLOAT, "0.0005", MIN_, 0, 0, NULL,
     "L2 weight decay"},
    {"standard_training.batch", DD_PARAM_INT, "256", MIN_, 1, 0, NULL,
     "minibatch size (at most the set's image count)"},
    {"standard_training.crop", DD_PARAM_INT, "0", MIN_ | MAX_, 0, 64, NULL,
     "augmentation: pad by this many pixels and crop back at a random offset; 0 = none"},
    {"standard_training.flip", DD_PARAM_BOOL, "false", 0, 0, 0, NULL,
     "augmentation: random left-right flips"},
    {"batch", DD_PARAM_INT, "1000", MIN_, 1, 0, NULL, "batch size for test-set evaluation"},
    {"full_training_epochs", DD_PARAM_INT, "0", MIN_ | MAX_, 0, 10000, NULL,
     "reference row: train the same networks on the whole real training set for this many "
     "epochs (SGD, momentum 0.9, cosine lr); 0 = skip"},
    {"full_training_lr", DD_PARAM_FLOAT, "0.01", GT_, 0, 0, NULL,
     "learning rate of the full-training reference"},
    {"full_training_batch", DD_PARAM_INT, "128", MIN_, 1, 0, NULL,
     "batch size of the full-training reference"},
    {"knn_k", DD_PARAM_INT, "1", MIN_ | MAX_, 1, 10000, NULL,
     "neighbours of the knn baseline (at most the set's image count)"},
    {"knn_distance", DD_PARAM_ENUM, "euclidean", 0, 0, 0, "euclidean|cosine",
     "distance of the knn baseline, on the normalised pixels"},
    {"best_of_random_n", DD_PARAM_INT, "10", MIN_ | MAX_, 1, 1000, NULL,
     "random subsets the best_of_random baseline chooses from"},
    {"best_of_random_holdout", DD_PARAM_INT, "1000", MIN_, 1, 0, NULL,
     "training images held out (never drawn into a subset) to choose the best subset on"},
    END_,
};

static const dd_param_spec pretrain_spec[] = {
    {"nets", DD_PARAM_INT, "10", MIN_ | MAX_, 1, 100000, NULL, "networks to pretrain for the pool"},
    {"holdout", DD_PARAM_INT, "5", MIN_ | MAX_, 0, 100000, NULL,
     "of those, kept out of distillation for testing"},
    {"epochs", DD_PARAM_INT, "5", MIN_ | MAX_, 1, 10000, NULL, "training epochs per network"},
    {"lr", DD_PARAM_FLOAT, "0.01", GT_, 0, 0, NULL, "SGD learning rate"},
    {"momentum", DD_PARAM_FLOAT, "0.9", MIN_ | MAX_ | DD_PARAM_MAX_EXCLUSIVE, 0, 1, NULL,
     "SGD momentum"},
    {"batch", DD_PARAM_INT, "128", MIN_, 1, 0, NULL, "training batch size"},
    {"source", DD_PARAM_STRING, NULL, 0, 0, 0, NULL,
     "dataset the pool is trained on (manifest name); default: the pipeline's dataset"},
    {"pool_dir", DD_PARAM_STRING, NULL, DD_PARAM_PATH, 0, 0, NULL,
     "directory of pools: the pool is stored in <pool_dir>/<hash of its configuration> and "
     "reused by any pipeline with the same configuration; default: <cache_dir>/pools"},
    {"weight_decay", DD_PARAM_FLOAT, "0", MIN_, 0, 0, NULL, "SGD weight decay (L2)"},
    {"lr_schedule", DD_PARAM_ENUM, "cosine", 0, 0, 0, "constant|cosine",
     "SGD learning rate: constant, or cosine-annealed to 0 over all epochs"},
    {"transform", DD_PARAM_ENUM, "none", 0, 0, 0, "none|invert|rotate90|hflip",
     "applied to the source images (a domain shift between pool and target): invert = 1 - "
     "pixel, rotate90 = quarter turn, hflip = mirror"},
    {"classes", DD_PARAM_LIST, "", 0, 0, 0, NULL,
     "class indices of the source kept for pretraining; empty = all"},
    {"max_images", DD_PARAM_INT, "0", MIN_, 0, 0, NULL,
     "train on a random subset of this many source images; 0 = all"},
    {"source_path", DD_PARAM_STRING, NULL, DD_PARAM_PATH, 0, 0, NULL,
     "local directory holding pretrain.source's files (default: the cache)"},
    {"source_plugin", DD_PARAM_STRING, NULL, 0, 0, 0, NULL,
     "dataset plugin reading pretrain.source (with its default options); default: the "
     "pipeline's dataset plugin"},
    END_,
};

static const dd_param_spec report_spec[] = {
    {"png", DD_PARAM_BOOL, "true", 0, 0, 0, NULL, "write a PNG grid of the distilled images"},
    {"png_scale", DD_PARAM_INT, "4", MIN_ | MAX_, 1, 16, NULL,
     "pixel magnification in the PNG grid"},
    END_,
};

const dd_param_spec *dd_section_spec(const char *section) {
    if (!section) return NULL;
    if (strcmp(section, "distill") == 0) return distill_spec;
    if (strcmp(section, "evaluate") == 0) return evaluate_spec;
    if (strcmp(section, "pretrain") == 0) return pretrain_spec;
    if (strcmp(section, "report") == 0) return report_spec;
    return NULL;
}

const dd_param_spec *dd_section_core_spec(dd_component_kind kind) {
    switch (kind) {
    case DD_COMPONENT_DATASET:
        return dataset_core;
    case DD_COMPONENT_MODEL:
        return model_core;
    case DD_COMPONENT_OBJECTIVE:
        return objective_core;
    }
    return NULL;
}

// The section of a component kind is named like the kind.
const char *dd_component_kind_str(dd_component_kind kind) {
    switch (kind) {
    case DD_COMPONENT_DATASET:
        return "dataset";
    case DD_COMPONENT_MODEL:
        return "model";
    case DD_COMPONENT_OBJECTIVE:
        return "objective";
    }
    return "unknown";
}

const char *dd_section_name(dd_component_kind kind) {
    return dd_component_kind_str(kind);
}

const dd_param_spec *dd_pipeline_top_spec(void) {
    return top_spec;
}

static const char *const stage_names[DD_STAGE_COUNT] = {
#define DD_STAGE_NAME_(id, name) name,
    DD_STAGE_LIST(DD_STAGE_NAME_)
#undef DD_STAGE_NAME_
};

const char *dd_stage_name(dd_stage s) {
    return (unsigned)s < DD_STAGE_COUNT ? stage_names[s] : "?";
}

const char *dd_stage_choices(void) {
    return DD_STAGE_CHOICES;
}

dd_status dd_stage_parse(const char *name, dd_stage *out) {
    for (int i = 0; i < DD_STAGE_COUNT; i++) {
        if (name && strcmp(name, stage_names[i]) == 0) {
            *out = (dd_stage)i;
            return DD_OK;
        }
    }
    char list[128] = "";
    size_t len = 0;
    for (int i = 0; i < DD_STAGE_COUNT && len < sizeof list; i++)
        len +=
            (size_t)snprintf(list + len, sizeof list - len, "%s%s", i ? ", " : "", stage_names[i]);
    return dd_error_set(DD_ERR_NOT_FOUND, "unknown stage '%s' (stages: %s)", name ? name : "(null)",
                        list);
}
