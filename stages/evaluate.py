"""Evaluate stage: judge the trained model on the test split of its size, and draw the report.

Reads models/model.keras, models/model.json, metrics/train/ (curves), data/preprocessed/<train.size>/
and params `seed`, `train.size`, `evaluate`. Writes metrics/evaluate/metrics.json (the headline
figures), metrics/evaluate/{report,per_class}.json (every figure), the plot data
plots/evaluate/*.csv and the images plots/evaluate/images/*.png. Run: python -m stages.evaluate
"""

from bloodcells.core.params import load_params
from bloodcells.core.stage import run_stage, stage_parser


def main() -> None:
    stage_parser(__doc__).parse_args()

    def work() -> None:
        params = load_params()  # checked before Keras loads: a bad param is one line, at once
        from bloodcells.evaluation.report import evaluate_model

        metrics = evaluate_model(params)
        print(
            f"{params.model} at {params.train.size} px: test accuracy {metrics['accuracy']:.4f}, "
            f"macro-F1 {metrics['macro_f1']:.4f}, AUC {metrics['auc']:.4f}, "
            f"{metrics['test_ms_per_image']:.3f} ms/image"
        )

    run_stage("evaluate", work)


if __name__ == "__main__":
    main()
