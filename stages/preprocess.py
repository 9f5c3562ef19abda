"""Preprocess stage: validate one size's raw npz and write it in training-ready form.

Reads data/raw/<dataset>_<size>.npz, data/raw/classes.json and params `data`, `preprocess`. Writes
data/preprocessed/<size>/{train,val,test}_{images,labels}.npy (uint8, memory-mappable) and
summary.json (class names, counts per class per split, channel mean/std, exact and near duplicates,
the stain normalisation applied). Identical inputs give byte-identical outputs.
Run: python -m stages.preprocess --size 28
"""

from bloodcells.core.params import load_params
from bloodcells.core.paths import preprocessed_dir
from bloodcells.core.stage import run_stage, stage_parser
from bloodcells.data.preprocess import preprocess


def main() -> None:
    parser = stage_parser(__doc__)
    parser.add_argument("--size", type=int, required=True, help="image side in pixels, one of data.sizes")
    size = parser.parse_args().size

    def work() -> None:
        params = load_params()
        if size not in params.data.sizes:
            raise ValueError(f"--size {size} is not one of data.sizes {params.data.sizes}")
        summary = preprocess(size, params.data, params.preprocess)
        dup = summary["duplicates"]
        print(
            f"{preprocessed_dir(size)}: {summary['totals']}, {dup['pairs']} duplicate pair(s), "
            f"{dup['cross_split_groups']} across splits, {dup['conflicting_label_groups']} with two labels"
        )
        if near := summary["near_duplicates"]:
            print(
                f"near-duplicates (hash distance <= {near['max_distance']}): {near['pairs']} pair(s), "
                f"{near['cross_split_pairs']} across splits ({near['train_test_pairs']} train-test), "
                f"{near['conflicting_label_pairs']} with two labels"
            )

    run_stage("preprocess", work)


if __name__ == "__main__":
    main()
