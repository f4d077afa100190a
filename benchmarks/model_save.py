"""What keeping a run's model costs: the bytes of each file and the seconds of the save.

Trains the study's model (hidden [512, 256, 128]) briefly, with and without a val split, then
writes its files as a worker does at the run's end (worker/artifacts.write_model: final and
best weights as safetensors, the training state a sweep extend continues from, model.json)
into a temporary artifact store, `--repeat` times; prints each file's bytes, the median save
time, and that time as a share of a 20-epoch Fashion-MNIST run of the study (--run-s, the
seconds such a run trains through the server here).

    python benchmarks/model_save.py [--data-dir DIR] [--repeat 5] [--run-s 80]
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

import _common as bench  # benchmarks/ is on sys.path when this runs as a script

from artifacts import DirectoryStore
from mlpcore.data import load_dataset
from mlpcore.device import configure_process
from mlpcore.fused import train_group
from mlpcore.spec import RunSpec
from worker.artifacts import write_model


def main() -> None:
    parser = bench.make_parser(__doc__)
    parser.add_argument("--data-dir")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--run-s", type=float, default=80.0)
    args = parser.parse_args()
    configure_process()
    dataset, root = bench.pick_dataset(args.data_dir)
    data = load_dataset(dataset, data_dir=str(root) if root else None)
    print(f"model save, {dataset}, {bench.torch_line()}")
    print(f"{'val split':>9} {'final':>10} {'best':>10} {'state':>10} {'json':>7} "
          f"{'total':>11} {'save s':>8} {'share':>7}")  # fmt: skip
    for val in (0.0, 0.1):
        spec = RunSpec(dataset=dataset, hidden=[512, 256, 128], epochs=1, train_subset=2048,
                       val_fraction=val, device="cpu")  # fmt: skip
        (result,) = train_group([spec], data=data)
        with tempfile.TemporaryDirectory() as d:
            files, times = DirectoryStore(Path(d)), []
            for k in range(args.repeat):
                start = time.perf_counter()
                written = write_model(files, "0123456789abcdef", f"{k:04x}", result)
                times.append(time.perf_counter() - start)
        size = {w: f.bytes for w, f in written.items()}
        seconds = statistics.median(times)
        print(f"{val:>9} {size['final']:>10,} {size.get('best', 0):>10,} {size['state']:>10,} "
              f"{size['config']:>7,} {sum(size.values()):>11,} {seconds:>8.4f} "
              f"{100 * seconds / args.run_s:>6.2f}%")  # fmt: skip


if __name__ == "__main__":
    main()
