#!/usr/bin/env python3
"""Run the authors' dataset distillation (SsnL/dataset-distillation, main.py)
for a fixed number of outer iterations and time them.

    authors_run.py --authors DIR --iterations N --threads T --json OUT.json \
        -- --mode distill_basic --dataset MNIST ...   (main.py's own options)

Nothing in DIR is modified: this script puts DIR on sys.path, installs the
hooks below and runs DIR/main.py as __main__ with the given options.

Timing hooks (the authors' loop itself is untouched):
  * the Trainer's Adam optimizer: the time at which each optimizer.step()
    returns closes one outer iteration. Iteration k (k >= 2) lasts from the
    end of step k-1 to the end of step k: fetching the real batch from the
    DataLoader, the unrolled steps, the reverse pass, the update, their
    per-iteration bookkeeping. The first iteration (start-up, the
    evaluation and the checkpoint the authors' loop does at the start of
    epoch 0) is excluded, as distill excludes its first iteration.
  * Trainer.prefetch_train_loader_iter: the time spent waiting for each real
    batch (torchvision decoding and transforms), reported separately.
  * After N optimizer steps the run is stopped (a BaseException, so their
    `except Exception` handler does not log it as a failure).

Compatibility shims (none changes what an iteration computes):
  * tqdm / matplotlib stand-ins when they are not installed (their code
    imports both; tqdm only draws progress bars in evaluation, matplotlib only
    draws checkpoint images);
  * utils.io.vis_results is replaced by a no-op: the checkpoint images would
    be drawn in a background process that competes with the timed loop for
    the cores (distill's report stage is not run either);
  * torchvision's CIFAR-10 md5 check accepts any file that exists, so that
    generated random data of the right layout is used instead of a download.
"""
import argparse
import json
import os
import re
import sys
import time
import types


class StopBench(BaseException):
    pass


def blas_in_use(torch):
    """torch's BLAS: the build's BLAS_INFO, and the BLAS/LAPACK libraries mapped into
    this process (a Debian python3-torch uses the system libblas.so.3, whichever
    alternative is selected; pip wheels link MKL statically and map none)."""
    m = re.search(r"BLAS_INFO=([^,\s]+)", torch.__config__.show())
    libs = []
    try:
        with open("/proc/self/maps") as f:
            for line in f:
                path = line.split()[-1] if len(line.split()) >= 6 else ""
                base = os.path.basename(path)
                if re.search(r"blas|mkl|blis|lapack", base) and path not in libs:
                    libs.append(path)
    except OSError:
        pass
    libs = [os.path.realpath(p) for p in libs]
    reference = any(re.search(r"/blas/libblas\.so", p) for p in libs) and not any(
        re.search(r"openblas|mkl|blis|flexiblas", p) for p in libs)
    return {"build_blas_info": m.group(1) if m else None, "libraries": sorted(set(libs)),
            "reference_blas": reference}


def install_stubs():
    try:
        import tqdm  # noqa: F401
    except ImportError:
        mod = types.ModuleType("tqdm")

        class tqdm(object):  # minimal progress bar that draws nothing
            def __init__(self, *args, **kwargs):
                self.n = 0

            def update(self, n=1):
                self.n += n

            def close(self):
                pass

            def set_description(self, *args, **kwargs):
                pass

            def set_postfix(self, *args, **kwargs):
                pass

            def __enter__(self):
                return self

            def __exit__(self, *exc):
                return False

            @staticmethod
            def write(msg, *args, **kwargs):
                sys.stdout.write(str(msg) + "\n")

        mod.tqdm = tqdm
        sys.modules["tqdm"] = mod
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        mpl = types.ModuleType("matplotlib")
        mpl.use = lambda *args, **kwargs: None
        plt = types.ModuleType("matplotlib.pyplot")

        def _missing(name):
            raise AttributeError("matplotlib is not installed (stand-in module): pyplot.%s" % name)

        plt.__getattr__ = _missing
        mpl.pyplot = plt
        sys.modules["matplotlib"] = mpl
        sys.modules["matplotlib.pyplot"] = plt


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--authors", required=True, help="checkout of SsnL/dataset-distillation")
    ap.add_argument("--iterations", type=int, required=True, help="outer iterations to run (>= 2)")
    ap.add_argument("--threads", type=int, required=True)
    ap.add_argument("--json", required=True, help="where to write the timings")
    ap.add_argument("main_args", nargs=argparse.REMAINDER, help="-- then main.py's options")
    a = ap.parse_args()
    if a.iterations < 2:
        ap.error("--iterations must be >= 2 (the first one is not timed)")
    main_args = a.main_args[1:] if a.main_args[:1] == ["--"] else a.main_args
    authors = os.path.abspath(a.authors)
    if not os.path.isfile(os.path.join(authors, "main.py")):
        sys.exit("authors_run: %s/main.py not found (a checkout of SsnL/dataset-distillation?)" % authors)

    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = str(a.threads)
    t_start = time.perf_counter()
    install_stubs()
    sys.path.insert(0, authors)
    import torch
    torch.set_num_threads(a.threads)
    print("authors_run: torch %s, build:\n%s\n%s" % (torch.__version__, torch.__config__.show(),
                                                     torch.__config__.parallel_info()))
    sys.stdout.flush()

    import torchvision.datasets.cifar as tv_cifar
    tv_cifar.check_integrity = lambda fpath, md5=None: os.path.isfile(fpath)

    import utils.io
    utils.io.vis_results = lambda *args, **kwargs: None

    import train_distilled_image
    Trainer = train_distilled_image.Trainer

    rec = {"step_end": [], "data_wait": [], "threads_in_loop": None,
           "interop_threads": None, "start_of_loop": None}

    orig_init_optim = Trainer.init_data_optim

    def init_data_optim(self):
        orig_init_optim(self)
        opt = self.optimizer
        orig_step = opt.step

        def step(*args, **kwargs):
            r = orig_step(*args, **kwargs)
            rec["step_end"].append(time.perf_counter())
            if rec["threads_in_loop"] is None:
                rec["threads_in_loop"] = torch.get_num_threads()
                rec["interop_threads"] = torch.get_num_interop_threads()
            if len(rec["step_end"]) >= a.iterations:
                raise StopBench()
            return r

        step._with_counter = True  # the scheduler's marker; orig_step keeps its counting wrapper
        opt.step = step

    Trainer.init_data_optim = init_data_optim

    orig_prefetch = Trainer.prefetch_train_loader_iter

    def prefetch_train_loader_iter(self):
        if rec["start_of_loop"] is None:
            rec["start_of_loop"] = time.perf_counter()
        gen = orig_prefetch(self)
        while True:
            t0 = time.perf_counter()
            try:
                item = next(gen)
            except StopIteration:
                return
            rec["data_wait"].append(time.perf_counter() - t0)
            yield item

    Trainer.prefetch_train_loader_iter = prefetch_train_loader_iter

    import runpy
    sys.argv = [os.path.join(authors, "main.py")] + main_args
    stopped = False
    try:
        runpy.run_path(os.path.join(authors, "main.py"), run_name="__main__")
    except StopBench:
        stopped = True
    ends = rec["step_end"]
    if not stopped or len(ends) < a.iterations:
        sys.exit("authors_run: their loop ended after %d of %d iterations (fewer batches per "
                 "epoch x epochs than asked?)" % (len(ends), a.iterations))
    timed = [ends[k] - ends[k - 1] for k in range(1, len(ends))]
    data = rec["data_wait"][1:len(ends)]
    out = {
        "iterations": len(ends),
        "timed_iterations": len(timed),
        "seconds_per_iteration": sum(timed) / len(timed),
        "data_seconds_per_iteration": sum(data) / len(data),
        "compute_seconds_per_iteration": (sum(timed) - sum(data)) / len(timed),
        "first_iteration_seconds": ends[0] - rec["start_of_loop"],
        "startup_seconds": rec["start_of_loop"] - t_start,
        "iteration_seconds": timed,
        "torch_version": torch.__version__,
        "torch_threads": rec["threads_in_loop"],
        "torch_interop_threads": rec["interop_threads"],
        "blas": blas_in_use(torch),
        "argv": main_args,
    }
    with open(a.json, "w") as f:
        json.dump(out, f, indent=1)
    print("authors: done, %d iterations, %.3f s/iteration (data loading %.3f, rest %.3f), "
          "torch %s, %d thread(s)" % (out["iterations"], out["seconds_per_iteration"],
                                      out["data_seconds_per_iteration"],
                                      out["compute_seconds_per_iteration"], torch.__version__,
                                      out["torch_threads"]))
    sys.stdout.flush()
    # their FixSizeProcessQueue joins at exit; nothing is queued, so a plain exit is fine
    os._exit(0)


if __name__ == "__main__":
    main()
