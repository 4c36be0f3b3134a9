#!/usr/bin/env python3
"""Data for the distill-versus-authors timing comparison (bench/authors/compare).

Two kinds of data, each written in the layout both programs read:

  fashion-mnist  the four Fashion-MNIST IDX files (from a directory holding
                 them, gzip'ed or not) un-gzipped into OUT/fashion-mnist/MNIST/raw/.
                 The authors' code has no Fashion-MNIST entry; it reads them as
                 its 'MNIST' dataset (torchvision's MNIST class looks in
                 ROOT/MNIST/raw/ for exactly these file names). distill reads
                 the same directory with `dataset.path`.

  cifar10        random CIFAR-10-sized data (50,000 train + 10,000 test images,
                 3x32x32, uint8, random labels 0..9; only speed is measured),
                 written twice from the same arrays:
                   OUT/cifar10/cifar-10-batches-bin/  binary version (distill's reader)
                   OUT/cifar10/cifar-10-batches-py/   python pickles (torchvision's CIFAR10)

Needs numpy for the pickles (torchvision expects numpy arrays in them); run it
with the Python that has torch. Files already present with the right size are
kept, so repeated runs are cheap.

    prepare_data.py --out DIR fashion-mnist --source /usr/share/datasets/fashion-mnist
    prepare_data.py --out DIR cifar10 [--seed 1]
"""
import argparse
import gzip
import os
import pickle
import shutil
import sys

FMNIST_FILES = [
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
]
FMNIST_SIZES = {
    "train-images-idx3-ubyte": 16 + 60000 * 784,
    "train-labels-idx1-ubyte": 8 + 60000,
    "t10k-images-idx3-ubyte": 16 + 10000 * 784,
    "t10k-labels-idx1-ubyte": 8 + 10000,
}
CIFAR_CLASSES = ["airplane", "automobile", "bird", "cat", "deer",
                 "dog", "frog", "horse", "ship", "truck"]
CIFAR_RECORD = 1 + 3 * 32 * 32
CIFAR_PER_BATCH = 10000


def write_atomic(path, data):
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


def prepare_fashion_mnist(out, source):
    raw = os.path.join(out, "fashion-mnist", "MNIST", "raw")
    os.makedirs(raw, exist_ok=True)
    for name in FMNIST_FILES:
        dst = os.path.join(raw, name)
        if os.path.isfile(dst) and os.path.getsize(dst) == FMNIST_SIZES[name]:
            continue
        plain = os.path.join(source, name)
        gz = plain + ".gz"
        tmp = dst + ".tmp"
        if os.path.isfile(plain):
            shutil.copyfile(plain, tmp)
        elif os.path.isfile(gz):
            with gzip.open(gz, "rb") as fin, open(tmp, "wb") as fout:
                shutil.copyfileobj(fin, fout, 1 << 20)
        else:
            sys.exit("prepare_data: neither %s nor %s exists (pass --source, the directory "
                     "holding the Fashion-MNIST IDX files)" % (plain, gz))
        if os.path.getsize(tmp) != FMNIST_SIZES[name]:
            os.unlink(tmp)
            sys.exit("prepare_data: %s has %d bytes, expected %d (not Fashion-MNIST?)"
                     % (name, os.path.getsize(tmp), FMNIST_SIZES[name]))
        os.replace(tmp, dst)
    print(raw)
    return raw


def prepare_cifar10(out, seed):
    import numpy as np

    root = os.path.join(out, "cifar10")
    binary = os.path.join(root, "cifar-10-batches-bin")
    py = os.path.join(root, "cifar-10-batches-py")
    names = ["data_batch_%d" % i for i in range(1, 6)] + ["test_batch"]
    stamp = os.path.join(root, ".generated-seed")
    def complete():
        if not os.path.isfile(stamp) or open(stamp).read().strip() != str(seed):
            return False
        for n in names:
            b = os.path.join(binary, n + ".bin")
            if not os.path.isfile(b) or os.path.getsize(b) != CIFAR_PER_BATCH * CIFAR_RECORD:
                return False
            if not os.path.isfile(os.path.join(py, n)):
                return False
        return True

    if complete():
        print(root)
        return root
    os.makedirs(binary, exist_ok=True)
    os.makedirs(py, exist_ok=True)
    rng = np.random.default_rng(seed)
    for name in names:
        pixels = rng.integers(0, 256, size=(CIFAR_PER_BATCH, 3 * 32 * 32), dtype=np.uint8)
        labels = rng.integers(0, 10, size=CIFAR_PER_BATCH, dtype=np.uint8)
        # binary version: per record 1 label byte + R, G, B planes (row-major)
        records = np.empty((CIFAR_PER_BATCH, CIFAR_RECORD), dtype=np.uint8)
        records[:, 0] = labels
        records[:, 1:] = pixels
        write_atomic(os.path.join(binary, name + ".bin"), records.tobytes())
        # python version: the same arrays, as torchvision's CIFAR10 unpickles them
        entry = {"batch_label": name, "labels": [int(x) for x in labels],
                 "data": pixels, "filenames": ["%s_%05d.png" % (name, i) for i in range(CIFAR_PER_BATCH)]}
        write_atomic(os.path.join(py, name), pickle.dumps(entry, protocol=4))
    write_atomic(os.path.join(binary, "batches.meta.txt"),
                 ("\n".join(CIFAR_CLASSES) + "\n").encode())
    meta = {"label_names": CIFAR_CLASSES, "num_cases_per_batch": CIFAR_PER_BATCH, "num_vis": 3072}
    write_atomic(os.path.join(py, "batches.meta"), pickle.dumps(meta, protocol=4))
    write_atomic(stamp, ("%d\n" % seed).encode())
    print(root)
    return root


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True, help="scratch directory")
    sub = ap.add_subparsers(dest="what", required=True)
    f = sub.add_parser("fashion-mnist")
    f.add_argument("--source", default="/usr/share/datasets/fashion-mnist",
                   help="directory with the four IDX files, .gz or not "
                        "(default: Debian's dataset-fashion-mnist location)")
    c = sub.add_parser("cifar10")
    c.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    if a.what == "fashion-mnist":
        prepare_fashion_mnist(a.out, a.source)
    else:
        prepare_cifar10(a.out, a.seed)


if __name__ == "__main__":
    main()
