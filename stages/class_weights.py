"""Class-weights stage: loss weights per class from the training labels at `train.size`.

Reads data/preprocessed/<train.size>/{train_labels.npy,summary.json} and params `class_weights`,
`train.size`. Writes data/class_weights.json. Run: python -m stages.class_weights
"""

from bloodcells.core.params import load_params
from bloodcells.core.paths import CLASS_WEIGHTS_FILE, preprocessed_dir
from bloodcells.core.stage import require, run_stage, stage_parser
from bloodcells.data.class_weights import compute_class_weights, write_class_weights
from bloodcells.data.splits import load_split, load_summary


def main() -> None:
    stage_parser(__doc__).parse_args()

    def work() -> None:
        params = load_params()
        size, method = params.train.size, params.class_weights.method
        folder = require(preprocessed_dir(size), f"preprocess@{size}")
        names = load_summary(folder)["classes"]
        weights = compute_class_weights(load_split(folder, "train").labels, len(names), method)
        write_class_weights(names, weights, method)
        print(
            f"{CLASS_WEIGHTS_FILE}: {method} "
            + ", ".join(f"{n}={w:.3f}" for n, w in zip(names, weights, strict=True))
        )

    run_stage("class_weights", work)


if __name__ == "__main__":
    main()
