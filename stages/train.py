"""Train stage: fit the architecture named by the `model` param at `train.size`.

Reads data/preprocessed/<train.size>/, data/class_weights.json and params `seed`, `model`, `train`,
`runtime`, `augment`, `models.<model>`. Writes models/model.keras, models/model.json (the model card) and the
per-epoch curves in metrics/train/ (dvclive). A killed run resumes from its last epoch on the next
`dvc repro`. Backend-agnostic Keras 3 (KERAS_BACKEND=tensorflow or jax). Run: python -m stages.train
"""

from bloodcells.core.params import load_params
from bloodcells.core.paths import MODEL_FILE
from bloodcells.core.stage import run_stage, stage_parser


def main() -> None:
    stage_parser(__doc__).parse_args()

    def work() -> None:
        params = load_params()  # checked before Keras loads: a bad param is one line, at once
        from bloodcells.training.run import train_model

        card = train_model(params)
        print(
            f"{MODEL_FILE}: best epoch {card['best/epoch']} of {card['epochs_run']}, "
            f"val_accuracy {card['best/val_accuracy']:.4f}, {card['train_seconds']:.0f} s"
        )

    run_stage("train", work)


if __name__ == "__main__":
    main()
