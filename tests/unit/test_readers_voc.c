/* distill tests — the pascal-voc reader on a generated VOC2007 tree: the
 * single-label rule (largest non-difficult object, ties, all-difficult
 * fallback, person parts ignored), crops, sizes, the XML parser, and every
 * missing or inconsistent file rejected with its name (and line). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "distill/dataset.h"
#include "distill/image.h"
#include "readers_gen.h"

/* The fixture images (static data from rg_voc_fixture, set in main). */
static const rg_voc_image *images;
static int n_images;

static int setup(void **state) {
    rg_fixture *f = *state = rg_fixture_open("pascal-voc", "voc");
    return f && rg_write_voc(f->dir, images, n_images) == DD_OK ? 0 : -1;
}

static int teardown(void **state) {
    rg_fixture_close(*state);
    return 0;
}

static const char *voc(rg_fixture *f, const char *rel) {
    return rg_fixture_path(f, "VOCdevkit/VOC2007", rel);
}

/* The fixture images of one split, in list order. */
static int split_images(int test, const rg_voc_image **out) {
    int k = 0;
    for (int i = 0; i < n_images; i++)
        if (images[i].test == test) out[k++] = &images[i];
    return k;
}

static void pixel(const dd_dataset *d, int64_t i, int x, int y, uint8_t rgb[3]) {
    size_t hw = (size_t)d->height * d->width;
    const float *img = rg_image(d, i);
    for (int c = 0; c < 3; c++) {
        float v = img[c * hw + (size_t)y * d->width + x];
        dd_image_denormalize(&v, 1, 1, 1, &d->mean[c], &d->std[c], &rgb[c]);
    }
}

static void assert_color_near(const uint8_t got[3], const uint8_t want[3], int tol) {
    for (int c = 0; c < 3; c++)
        if (abs((int)got[c] - (int)want[c]) > tol)
            fail_msg("colour (%d,%d,%d), expected (%d,%d,%d) ± %d", got[0], got[1], got[2], want[0],
                     want[1], want[2], tol);
}

static void test_labels_follow_the_rule(void **state) {
    rg_fixture *f = *state;
    dd_dataset *train, *test;
    assert_int_equal(rg_read(f->comp, "pascal-voc", f->dir, NULL, 0, 0, &train, &test), DD_OK);
    const rg_voc_image *split[2][8];
    int n[2] = {split_images(0, split[0]), split_images(1, split[1])};
    assert_int_equal(train->n, n[0]);
    assert_int_equal(test->n, n[1]);
    // default size 224×224, 20 classes, ImageNet statistics
    assert_int_equal(train->height, 224);
    assert_int_equal(train->width, 224);
    assert_int_equal(train->channels, 3);
    assert_int_equal(train->n_classes, 20);
    assert_string_equal(train->class_names[0], "aeroplane");
    assert_string_equal(train->class_names[19], "tvmonitor");
    assert_float_equal(train->mean[0], 0.485f, 1e-6);
    assert_float_equal(train->std[2], 0.225f, 1e-6);
    assert_string_equal(train->name, "pascal-voc/train");
    for (int s = 0; s < 2; s++) {
        const dd_dataset *d = s ? test : train;
        for (int i = 0; i < n[s]; i++) {
            const rg_voc_image *im = split[s][i];
            int obj = rg_voc_expected_object(im);
            assert_int_equal(d->labels[i], rg_voc_class_index(im->objects[obj].name));
        }
    }
    // the rule's cases, spelled out
    assert_int_equal(train->labels[0], rg_voc_class_index("cat"));     // largest
    assert_int_equal(train->labels[1], rg_voc_class_index("bicycle")); // difficult skipped
    assert_int_equal(train->labels[2], rg_voc_class_index("bus"));     // all difficult
    assert_int_equal(train->labels[3], rg_voc_class_index("sheep"));   // tie → first
    // whole image: corners are background, the centre of the aeroplane is foreground
    uint8_t rgb[3];
    pixel(test, 0, 0, 0, rgb);
    assert_color_near(rgb, split[1][0]->bg, 16);
    pixel(test, 0, 112, 112, rgb);
    assert_color_near(rgb, split[1][0]->fg, 16);
    // decoded bytes held as they are; gathered batches are bit for bit the
    // normalisation the reader once stored
    assert_true(rg_old_path_batch(train));
    assert_true(rg_old_path_batch(test));
    dd_dataset_destroy(train);
    dd_dataset_destroy(test);
}

static void test_object_crop_and_size(void **state) {
    rg_fixture *f = *state;
    dd_dataset *train, *test;
    const char *kv[] = {"crop=object", NULL};
    assert_int_equal(rg_read(f->comp, "pascal-voc", f->dir, kv, 20, 0, &train, &test), DD_OK);
    // one of height/width given: square
    assert_int_equal(train->height, 20);
    assert_int_equal(train->width, 20);
    const rg_voc_image *split[2][8];
    int n[2] = {split_images(0, split[0]), split_images(1, split[1])};
    for (int s = 0; s < 2; s++) {
        const dd_dataset *d = s ? test : train;
        for (int i = 0; i < n[s]; i++) {
            // the crop is the labelled object's box, painted in the foreground colour
            double mean[3] = {0, 0, 0};
            for (int y = 0; y < 20; y++)
                for (int x = 0; x < 20; x++) {
                    uint8_t rgb[3];
                    pixel(d, i, x, y, rgb);
                    for (int c = 0; c < 3; c++)
                        mean[c] += rgb[c] / 400.0;
                    if (x >= 4 && x < 16 && y >= 4 && y < 16)
                        assert_color_near(rgb, split[s][i]->fg, 20);
                }
            for (int c = 0; c < 3; c++)
                assert_float_equal(mean[c], split[s][i]->fg[c], 12.0);
        }
    }
    // decoded bytes held as they are; gathered batches are bit for bit the
    // normalisation the reader once stored
    assert_true(rg_old_path_batch(train));
    assert_true(rg_old_path_batch(test));
    dd_dataset_destroy(train);
    dd_dataset_destroy(test);

    const char *bad[] = {"crop=bbox", NULL};
    assert_int_equal(rg_read(f->comp, "pascal-voc", f->dir, bad, 20, 20, &train, &test),
                     DD_ERR_INVALID);
}

static void test_xml_syntax_variants_accepted(void **state) {
    rg_fixture *f = *state;
    // comments, a prolog, a DOCTYPE without subset, character references and CDATA
    const char *xml = voc(f, "Annotations/000001.xml");
    assert_int_equal(rg_replace_text(xml, "<annotation>",
                                     "<?xml version=\"1.0\"?>\n<!DOCTYPE annotation>\n"
                                     "<!-- generated -->\n<annotation verified=\"yes\">"),
                     DD_OK);
    assert_int_equal(rg_replace_text(xml, "<name>cat</name>", "<name> c&#97;<![CDATA[t]]> </name>"),
                     DD_OK);
    assert_int_equal(rg_replace_text(xml, "<segmented>0</segmented>", "<segmented/>"), DD_OK);
    dd_dataset *train, *test;
    assert_int_equal(rg_read(f->comp, "pascal-voc", f->dir, NULL, 8, 8, &train, &test), DD_OK);
    assert_int_equal(train->labels[0], rg_voc_class_index("cat"));
    dd_dataset_destroy(train);
    dd_dataset_destroy(test);
}

/* Runs the reader and expects `status` with both substrings in the message. */
static void expect_error(rg_fixture *f, dd_status status, const char *a, const char *b) {
    assert_int_equal(rg_expect_read_error(f, "pascal-voc", NULL, 8, 8, status, a, b), 0);
}

static void test_missing_files(void **state) {
    rg_fixture *f = *state;
    remove(voc(f, "JPEGImages/000003.jpg"));
    expect_error(f, DD_ERR_NOT_FOUND, "ImageSets/Main/trainval.txt:3", "JPEGImages/000003.jpg");
    assert_int_equal(rg_write_voc(f->dir, images, n_images), DD_OK);
    remove(voc(f, "Annotations/000006.xml"));
    expect_error(f, DD_ERR_NOT_FOUND, "ImageSets/Main/test.txt:2", "Annotations/000006.xml");
    remove(voc(f, "ImageSets/Main/test.txt"));
    expect_error(f, DD_ERR_NOT_FOUND, "ImageSets/Main/test.txt", "no such file");
}

/* Replaces `from` by `to` in the file, then the '@' in `to` by a NUL byte;
 * returns the line the NUL is on. */
static int put_nul(const char *path, const char *from, const char *to) {
    assert_int_equal(rg_replace_text(path, from, to), DD_OK);
    uint8_t *data = NULL;
    size_t len = 0;
    assert_int_equal(rg_read_file(path, &data, &len), DD_OK);
    char *at = strchr((char *)data, '@');
    assert_non_null(at);
    int line = 1;
    for (const char *q = (const char *)data; q < at; q++)
        line += *q == '\n';
    *at = '\0';
    assert_int_equal(rg_write_file(path, data, len), DD_OK);
    free(data);
    return line;
}

static void test_bad_annotations(void **state) {
    rg_fixture *f = *state;
    const char *xml = voc(f, "Annotations/000005.xml");
    // no object at all
    assert_int_equal(rg_write_text(xml, "<annotation><size><width>36</width><height>36</height>"
                                        "</size></annotation>"),
                     DD_OK);
    expect_error(f, DD_ERR_PARSE, "Annotations/000005.xml", "no <object>");
    assert_int_equal(rg_write_voc(f->dir, images, n_images), DD_OK);
    // unknown class, with the line it is on
    assert_int_equal(rg_replace_text(xml, "<name>cow</name>", "<name>unicorn</name>"), DD_OK);
    expect_error(f, DD_ERR_PARSE, "Annotations/000005.xml:", "unknown class 'unicorn'");
    assert_int_equal(rg_write_voc(f->dir, images, n_images), DD_OK);
    // mismatched end tag
    assert_int_equal(rg_replace_text(xml, "</bndbox>", "</bndbx>"), DD_OK);
    expect_error(f, DD_ERR_PARSE, "Annotations/000005.xml:", "does not match <bndbox>");
    assert_int_equal(rg_write_voc(f->dir, images, n_images), DD_OK);
    // truncated files, cut anywhere: inside tags, text, or between elements
    size_t xml_len = 0;
    uint8_t *full = NULL;
    assert_int_equal(rg_read_file(xml, &full, &xml_len), DD_OK);
    for (size_t cut = 1; cut + 2 < xml_len; cut += 7) {
        assert_int_equal(rg_write_file(xml, full, cut), DD_OK);
        expect_error(f, DD_ERR_PARSE, "Annotations/000005.xml:", "unexpected end of file");
    }
    assert_int_equal(rg_write_file(xml, full, xml_len), DD_OK);
    free(full);
    // a box coordinate that is not a number
    assert_int_equal(rg_replace_text(xml, "<xmin>20</xmin>", "<xmin>twenty</xmin>"), DD_OK);
    expect_error(f, DD_ERR_PARSE, "Annotations/000005.xml:", "not a number");
    assert_int_equal(rg_write_voc(f->dir, images, n_images), DD_OK);
    // an inverted box
    assert_int_equal(rg_replace_text(xml, "<xmax>29</xmax>", "<xmax>15</xmax>"), DD_OK);
    expect_error(f, DD_ERR_PARSE, "Annotations/000005.xml:", "empty or outside");
    assert_int_equal(rg_write_voc(f->dir, images, n_images), DD_OK);
    // the annotation's size disagrees with the JPEG
    assert_int_equal(rg_replace_text(xml, "<width>36</width>", "<width>50</width>"), DD_OK);
    expect_error(f, DD_ERR_PARSE, "JPEGImages/000005.jpg", "annotation says 50x36");
    assert_int_equal(rg_write_voc(f->dir, images, n_images), DD_OK);
    // a DOCTYPE with an internal subset (entity expansion) is refused
    assert_int_equal(
        rg_replace_text(xml, "<annotation>", "<!DOCTYPE a [<!ENTITY x \"xx\">]><annotation>"),
        DD_OK);
    expect_error(f, DD_ERR_PARSE, "Annotations/000005.xml:1", "internal subset");
    assert_int_equal(rg_write_voc(f->dir, images, n_images), DD_OK);
    // an unknown entity
    assert_int_equal(rg_replace_text(xml, "<name>cow</name>", "<name>&cow;</name>"), DD_OK);
    expect_error(f, DD_ERR_PARSE, "Annotations/000005.xml:", "unknown entity");
    assert_int_equal(rg_write_voc(f->dir, images, n_images), DD_OK);
    // a NUL byte, in character data or hidden in a CDATA section (where it would
    // cut the number short: xmin 2, not 20)
    static const char *const nul_in[] = {"<xmin>2@0</xmin>", "<xmin>2<![CDATA[@]]>0</xmin>"};
    for (int k = 0; k < 2; k++) {
        int line = put_nul(xml, "<xmin>20</xmin>", nul_in[k]);
        char where[64];
        snprintf(where, sizeof where, "Annotations/000005.xml:%d:", line);
        expect_error(f, DD_ERR_PARSE, where, "NUL byte");
        assert_int_equal(rg_write_voc(f->dir, images, n_images), DD_OK);
    }
    // garbage
    assert_int_equal(rg_write_text(xml, "\x01\x02 binary"), DD_OK);
    expect_error(f, DD_ERR_PARSE, "Annotations/000005.xml", "root element");
}

static void test_corrupt_jpeg_and_bad_ids(void **state) {
    rg_fixture *f = *state;
    assert_int_equal(rg_truncate(voc(f, "JPEGImages/000008.jpg"), 300), DD_OK);
    expect_error(f, DD_ERR_PARSE, "JPEGImages/000008.jpg", "JPEG");
    assert_int_equal(rg_write_voc(f->dir, images, n_images), DD_OK);
    assert_int_equal(rg_write_text(voc(f, "ImageSets/Main/trainval.txt"), "000001\n../../etc/x\n"),
                     DD_OK);
    expect_error(f, DD_ERR_PARSE, "trainval.txt:2", "not an image id");
    assert_int_equal(rg_write_text(voc(f, "ImageSets/Main/trainval.txt"), "\n\n"), DD_OK);
    expect_error(f, DD_ERR_PARSE, "trainval.txt", "empty image list");
}

static void test_max_images(void **state) {
    rg_fixture *f = *state;
    dd_dataset *train, *test;
    const char *kv[] = {"max_images=2", NULL};
    assert_int_equal(rg_read(f->comp, "pascal-voc", f->dir, kv, 8, 8, &train, &test), DD_OK);
    assert_int_equal(train->n, 2);
    assert_int_equal(test->n, 2);
    assert_int_equal(train->labels[1], rg_voc_class_index("bicycle"));
    dd_dataset_destroy(train);
    dd_dataset_destroy(test);
}

int main(void) {
    images = rg_voc_fixture(&n_images);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_labels_follow_the_rule, setup, teardown),
        cmocka_unit_test_setup_teardown(test_object_crop_and_size, setup, teardown),
        cmocka_unit_test_setup_teardown(test_xml_syntax_variants_accepted, setup, teardown),
        cmocka_unit_test_setup_teardown(test_missing_files, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_annotations, setup, teardown),
        cmocka_unit_test_setup_teardown(test_corrupt_jpeg_and_bad_ids, setup, teardown),
        cmocka_unit_test_setup_teardown(test_max_images, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
