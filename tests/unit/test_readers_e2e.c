/* distill tests — readers end to end through the fetcher.
 * Default: generated archives for mnist, cifar10, pascal-voc, cub200 and usps,
 * packed as upstream packs them, served by the loopback HTTP server,
 * fetched + verified + unpacked by dd_fetch_dataset with temporary
 * manifests, then read by each reader plugin.
 * --fashion: the real Fashion-MNIST from Debian's package through the
 * shipped manifest's file:// mirror, read by the mnist reader. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "distill/host.h"
#include "distill/dataset.h"
#include "distill/image.h"
#include "data/fetch.h"
#include "fetch_httpd.h"
#include "base/hash.h"
#include "readers_gen.h"

static char *join(const char *a, const char *b) {
    size_t n = strlen(a) + strlen(b) + 2;
    char *s = malloc(n);
    assert_non_null(s);
    snprintf(s, n, "%s/%s", a, b);
    return s;
}

static void sha256_hex(const char *path, char hex[2 * DD_SHA256_SIZE + 1]) {
    uint8_t sum[DD_SHA256_SIZE];
    if (dd_hash_file(path, sum, NULL, NULL) != DD_OK) fail_msg("%s", dd_error_message());
    dd_hex(sum, DD_SHA256_SIZE, hex);
}

typedef struct served {
    const char *name;    /* file name in the manifest and on the server */
    const char *archive; /* gz | tar | tar.gz */
    const char *local;   /* generated file */
    const char *split;   /* train | test | both */
} served;

/* Serves the files and writes manifests/<dataset>.yaml listing them. */
static void publish(fetch_httpd *srv, const char *manifests, const char *dataset,
                    const char *reader, const served *files, int n) {
    char text[8192];
    size_t u = 0;
    u += (size_t)snprintf(text + u, sizeof text - u,
                          "name: %s\ndescription: generated %s fixture\nreader: %s\n"
                          "unpacked_limit: 100000000\nmirrors:\n  - %s\nfiles:\n",
                          dataset, dataset, reader, fetch_httpd_url(srv));
    for (int i = 0; i < n; i++) {
        assert_int_equal(fetch_httpd_add_file(srv, files[i].name, files[i].local), DD_OK);
        char hex[2 * DD_SHA256_SIZE + 1];
        sha256_hex(files[i].local, hex);
        u +=
            (size_t)snprintf(text + u, sizeof text - u, "  - {name: %s, archive: %s, sha256: %s}\n",
                             files[i].name, files[i].archive, hex);
    }
    const char *splits[2] = {"train", "test"};
    u += (size_t)snprintf(text + u, sizeof text - u, "splits:\n");
    for (int s = 0; s < 2; s++) {
        u += (size_t)snprintf(text + u, sizeof text - u, "  %s: [", splits[s]);
        int first = 1;
        for (int i = 0; i < n; i++)
            if (!strcmp(files[i].split, "both") || !strcmp(files[i].split, splits[s])) {
                u += (size_t)snprintf(text + u, sizeof text - u, "%s%s", first ? "" : ", ",
                                      files[i].name);
                first = 0;
            }
        u += (size_t)snprintf(text + u, sizeof text - u, "]\n");
    }
    char path[4200];
    snprintf(path, sizeof path, "%s/%s.yaml", manifests, dataset);
    assert_int_equal(rg_write_text(path, text), DD_OK);
}

static void fetch_and_read(const char *manifests, const char *cache, const char *dataset,
                           const char *plugin, int h, int w, dd_dataset **train,
                           dd_dataset **test) {
    dd_fetch_options o;
    dd_fetch_options_init(&o);
    o.cache_dir = cache;
    o.manifest_dir = manifests;
    o.quiet = 1;
    o.retries = -1;
    char *root = NULL;
    if (dd_fetch_dataset(dataset, &o, &root) != DD_OK)
        fail_msg("fetch %s: %s", dataset, dd_error_message());
    dd_registry *reg;
    const dd_component *comp;
    if (rg_load_reader(plugin, &reg, &comp) != DD_OK) fail_msg("%s", dd_error_message());
    if (rg_read(comp, dataset, root, NULL, h, w, train, test) != DD_OK)
        fail_msg("read %s from %s: %s", dataset, root, dd_error_message());
    dd_registry_destroy(reg);
    free(root);
}

static void test_generated_archives_over_http(void **state) {
    (void)state;
    char *tmp;
    assert_int_equal(rg_mkdtemp("readers-e2e", &tmp), DD_OK);
    char *gen = join(tmp, "gen"), *out = join(tmp, "out"), *manifests = join(tmp, "manifests"),
         *cache = join(tmp, "cache");
    assert_int_equal(rg_mkdirs(out), DD_OK);
    assert_int_equal(rg_mkdirs(manifests), DD_OK);
    fetch_httpd *srv;
    assert_int_equal(fetch_httpd_start(&srv), DD_OK);

    // MNIST: four gzip'ed IDX files
    char *mn = join(gen, "mnist");
    assert_int_equal(rg_write_mnist(mn, 20, 10, 28, 28, 1), DD_OK);
    const char *idx[4] = {"train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
                          "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"};
    char *mnl[4];
    served mf[4];
    for (int i = 0; i < 4; i++) {
        mnl[i] = join(mn, idx[i]);
        mf[i] = (served){idx[i], "gz", mnl[i], i < 2 ? "train" : "test"};
    }
    publish(srv, manifests, "mnist", "mnist", mf, 4);

    // CIFAR-10: cifar-10-binary.tar.gz holding cifar-10-batches-bin/
    char *cf = join(gen, "cifar");
    assert_int_equal(rg_write_cifar10(cf, 3, 4), DD_OK);
    char **list;
    assert_int_equal(rg_list_files(cf, "cifar-10-batches-bin", &list), DD_OK);
    char *cft = join(out, "cifar-10-binary.tar.gz");
    assert_int_equal(rg_pack_tar(cft, cf, (const char *const *)list, 1), DD_OK);
    rg_free_list(list);
    served cfs[1] = {{"cifar-10-binary.tar.gz", "tar.gz", cft, "both"}};
    publish(srv, manifests, "cifar10", "cifar10", cfs, 1);

    // VOC 2007: the trainval and test tars, both unpacking into VOCdevkit/VOC2007
    char *vd = join(gen, "voc");
    int nv;
    const rg_voc_image *vim = rg_voc_fixture(&nv);
    assert_int_equal(rg_write_voc(vd, vim, nv), DD_OK);
    assert_int_equal(rg_pack_voc(vd, vim, nv, out), DD_OK);
    char *vt1 = join(out, "VOCtrainval_06-Nov-2007.tar"),
         *vt2 = join(out, "VOCtest_06-Nov-2007.tar");
    served vfs[2] = {{"VOCtrainval_06-Nov-2007.tar", "tar", vt1, "train"},
                     {"VOCtest_06-Nov-2007.tar", "tar", vt2, "test"}};
    publish(srv, manifests, "pascal-voc", "pascal-voc", vfs, 2);

    // CUB-200-2011: CUB_200_2011.tgz
    char *cd = join(gen, "cub");
    assert_int_equal(rg_write_cub(cd, 3, 4), DD_OK);
    char *ct = join(out, "CUB_200_2011.tgz");
    assert_int_equal(rg_pack_cub(cd, ct), DD_OK);
    served cbs[1] = {{"CUB_200_2011.tgz", "tar.gz", ct, "both"}};
    publish(srv, manifests, "cub200", "cub200", cbs, 1);

    // USPS: usps.bz2 and usps.t.bz2, kept compressed (the reader decompresses them)
    char *ud = join(gen, "usps");
    assert_int_equal(rg_write_usps(ud, 9, 5, 1), DD_OK);
    char *ut1 = join(ud, "usps.bz2"), *ut2 = join(ud, "usps.t.bz2");
    served ufs[2] = {{"usps.bz2", "none", ut1, "train"}, {"usps.t.bz2", "none", ut2, "test"}};
    publish(srv, manifests, "usps", "usps", ufs, 2);

    dd_dataset *train, *test;
    fetch_and_read(manifests, cache, "mnist", "mnist", 0, 0, &train, &test);
    assert_int_equal(train->n, 20);
    assert_int_equal(test->n, 10);
    for (int i = 0; i < 10; i++)
        assert_int_equal(test->labels[i], rg_mnist_label(1, i));
    uint8_t px[28 * 28];
    dd_image_denormalize(rg_image(train, 5), 28, 28, 1, train->mean, train->std, px);
    for (int p = 0; p < 784; p++)
        assert_int_equal(px[p], rg_mnist_pixel(0, 5, p));
    dd_dataset_destroy(train);
    dd_dataset_destroy(test);

    fetch_and_read(manifests, cache, "cifar10", "cifar10", 0, 0, &train, &test);
    assert_int_equal(train->n, 15);
    assert_int_equal(test->n, 4);
    assert_int_equal(train->labels[7], rg_cifar_label(2, 1));
    assert_string_equal(train->class_names[9], "truck");
    dd_dataset_destroy(train);
    dd_dataset_destroy(test);

    fetch_and_read(manifests, cache, "pascal-voc", "pascal-voc", 16, 16, &train, &test);
    int want[2] = {0, 0};
    for (int i = 0; i < nv; i++)
        want[vim[i].test]++;
    assert_int_equal(train->n, want[0]);
    assert_int_equal(test->n, want[1]);
    for (int i = 0, k[2] = {0, 0}; i < nv; i++) {
        const dd_dataset *d = vim[i].test ? test : train;
        int obj = rg_voc_expected_object(&vim[i]);
        assert_int_equal(d->labels[k[vim[i].test]++], rg_voc_class_index(vim[i].objects[obj].name));
    }
    dd_dataset_destroy(train);
    dd_dataset_destroy(test);

    fetch_and_read(manifests, cache, "cub200", "cub200", 16, 16, &train, &test);
    assert_int_equal(train->n + test->n, 12);
    assert_int_equal(train->n_classes, 3);
    for (int i = 0, k[2] = {0, 0}; i < 12; i++) {
        rg_cub_image im;
        rg_cub_info(3, 4, i, &im);
        const dd_dataset *d = im.is_train ? train : test;
        assert_int_equal(d->labels[k[im.is_train]++], im.label);
    }
    dd_dataset_destroy(train);
    dd_dataset_destroy(test);

    fetch_and_read(manifests, cache, "usps", "usps", 28, 28, &train, &test);
    assert_int_equal(train->n, 9);
    assert_int_equal(test->n, 5);
    assert_int_equal(train->height, 28);
    for (int i = 0; i < 5; i++)
        assert_int_equal(test->labels[i], rg_usps_label(1, i));
    dd_dataset_destroy(train);
    dd_dataset_destroy(test);

    // every archive was downloaded exactly once
    fetch_httpd_wait_idle(srv);
    const char *names[] = {"cifar-10-binary.tar.gz",
                           "VOCtrainval_06-Nov-2007.tar",
                           "VOCtest_06-Nov-2007.tar",
                           "CUB_200_2011.tgz",
                           "usps.bz2",
                           "usps.t.bz2",
                           idx[0],
                           idx[3]};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        fetch_httpd_request log[4];
        size_t n = fetch_httpd_requests(srv, names[i], log, 4);
        size_t gets = 0;
        for (size_t r = 0; r < n && r < 4; r++)
            if (!strcmp(log[r].method, "GET") && log[r].status == 200) gets++;
        if (gets != 1) fail_msg("%s: %zu successful GETs", names[i], gets);
    }
    fetch_httpd_stop(srv);

    for (int i = 0; i < 4; i++)
        free(mnl[i]);
    free(mn);
    free(cf);
    free(cft);
    free(vd);
    free(vt1);
    free(vt2);
    free(cd);
    free(ct);
    free(ud);
    free(ut1);
    free(ut2);
    rg_rmtree(tmp);
    free(gen);
    free(out);
    free(manifests);
    free(cache);
    free(tmp);
}

/* ---- the real Fashion-MNIST ---------------------------------------------- */

static void test_fashion_mnist_real(void **state) {
    (void)state;
    const char *deb = "/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz";
    struct stat sb;
    if (stat(deb, &sb) != 0) {
        print_message("skipped: %s not installed (Debian package dataset-fashion-mnist)\n", deb);
        skip();
    }
    char *tmp;
    assert_int_equal(rg_mkdtemp("fashion-e2e", &tmp), DD_OK);
    char *manifests = join(tmp, "manifests"), *cache = join(tmp, "cache");
    assert_int_equal(rg_mkdirs(manifests), DD_OK);
    // The shipped manifest with only its file:// mirror (no network here).
    const char *src = getenv("DISTILL_SOURCE_DIR");
    char *shipped = join(src ? src : ".", "datasets/fashion-mnist.yaml");
    uint8_t *text;
    size_t len;
    assert_int_equal(rg_read_file(shipped, &text, &len), DD_OK);
    char *kept = malloc(len + 1);
    size_t k = 0;
    int file_mirrors = 0;
    for (char *line = (char *)text; *line;) {
        char *nl = strchr(line, '\n');
        size_t n = nl ? (size_t)(nl - line) + 1 : strlen(line);
        int remote = strncmp(line, "  - http", 8) == 0;
        if (strncmp(line, "  - file:///usr/share/datasets/fashion-mnist", 44) == 0) file_mirrors++;
        if (!remote) {
            memcpy(kept + k, line, n);
            k += n;
        }
        line += n;
    }
    kept[k] = '\0';
    assert_int_equal(file_mirrors, 1);
    char *mpath = join(manifests, "fashion-mnist.yaml");
    assert_int_equal(rg_write_text(mpath, kept), DD_OK);

    dd_dataset *train, *test;
    fetch_and_read(manifests, cache, "fashion-mnist", "mnist", 0, 0, &train, &test);
    assert_int_equal(train->n, 60000);
    assert_int_equal(test->n, 10000);
    assert_int_equal(train->n_classes, 10);
    assert_int_equal(train->channels, 1);
    assert_int_equal(train->height, 28);
    assert_int_equal(train->width, 28);
    assert_string_equal(train->class_names[0], "T-shirt/top");
    assert_string_equal(train->class_names[9], "Ankle boot");
    // label histogram: balanced, 6,000 / 1,000 per class
    for (int s = 0; s < 2; s++) {
        const dd_dataset *d = s ? test : train;
        int64_t hist[10] = {0};
        for (int64_t i = 0; i < d->n; i++) {
            assert_in_range(d->labels[i], 0, 9);
            hist[d->labels[i]]++;
        }
        for (int c = 0; c < 10; c++)
            assert_int_equal(hist[c], s ? 1000 : 6000);
    }
    // de-normalized pixels are exactly k/255 in [0, 1], both ends reached;
    // and the normalization constants are the training set's statistics
    double lo = 1e9, hi = -1e9, sum = 0, sq = 0;
    size_t total = (size_t)train->n * 784;
    for (int64_t im = 0; im < train->n; im++) {
        const float *x = rg_image(train, im); // one gather per image
        for (size_t p = 0; p < 784; p++) {
            const size_t i = (size_t)im * 784 + p;
            double v = x[p] * (double)train->std[0] + train->mean[0];
            if (v < lo) lo = v;
            if (v > hi) hi = v;
            double k255 = v * 255.0;
            if (fabs(k255 - floor(k255 + 0.5)) > 1e-3) fail_msg("pixel %zu: %g is not k/255", i, v);
            sum += v;
            sq += v * v;
        }
    }
    assert_float_equal(lo, 0.0, 1e-6);
    assert_float_equal(hi, 1.0, 1e-6);
    double mean = sum / total, std = sqrt(sq / total - mean * mean);
    print_message("Fashion-MNIST train: pixel mean %.4f std %.4f\n", mean, std);
    assert_float_equal(mean, 0.2860, 5e-4);
    assert_float_equal(std, 0.3530, 5e-4);
    float *xte = rg_images(test);
    for (size_t i = 0; i < (size_t)test->n * 784; i++) {
        double v = xte[i] * (double)test->std[0] + test->mean[0];
        assert_true(v > -1e-6 && v < 1.0 + 1e-6);
    }
    free(xte);
    dd_dataset_destroy(train);
    dd_dataset_destroy(test);
    rg_rmtree(tmp);
    free(text);
    free(kept);
    free(mpath);
    free(shipped);
    free(manifests);
    free(cache);
    free(tmp);
}

int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "--fashion") == 0) {
        const struct CMUnitTest e2e[] = {cmocka_unit_test(test_fashion_mnist_real)};
        return cmocka_run_group_tests(e2e, NULL, NULL);
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_generated_archives_over_http),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
