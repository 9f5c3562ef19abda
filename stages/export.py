"""Export stage: the trained model as deployable files, with its card, in models/export/.

Reads models/model.keras, models/model.json, metrics/evaluate/metrics.json and params `data.dataset`,
`data.source`. Writes models/export/: model.keras (the network without its training-only augmentation
layers; plain Keras loads it), saved_model/ (uint8 images in, probabilities out), model.tflite,
model.json and README.md (the model card). Run: python -m stages.export
"""

from bloodcells.core.params import load_params
from bloodcells.core.stage import run_stage, stage_parser
from bloodcells.inference.export import export_model


def main() -> None:
    stage_parser(__doc__).parse_args()

    def work() -> None:
        data = load_params().data
        export_model(data.dataset, data.source)

    run_stage("export", work)


if __name__ == "__main__":
    main()
