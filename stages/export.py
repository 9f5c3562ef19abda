"""Export stage: the trained model as deployable files, with its card, in models/export/.

Reads models/model.keras, models/model.json, metrics/evaluate/metrics.json and params `data.dataset`,
`data.source`, `export`. Writes models/export/: model.keras (the network without its training-only
augmentation layers; plain Keras loads it), the formats `export.formats` names (saved_model/: uint8
images in, probabilities out; model.tflite; model.onnx), model.json and README.md (the model card).
Run: python -m stages.export
"""

import os

# The conversions (SavedModel, TFLite, ONNX) are TensorFlow's: load the backend-agnostic .keras file
# under TensorFlow even when the pipeline trains under JAX (KERAS_BACKEND=jax).
os.environ["KERAS_BACKEND"] = "tensorflow"

from bloodcells.core.params import load_params  # noqa: E402  (after the backend is chosen)
from bloodcells.core.stage import run_stage, stage_parser  # noqa: E402


def main() -> None:
    stage_parser(__doc__).parse_args()

    def work() -> None:
        params = load_params()  # checked before TensorFlow loads: a bad param is one line, at once
        from bloodcells.inference.export import export_model

        export_model(params.data.dataset, params.data.source, params.export.formats)

    run_stage("export", work)


if __name__ == "__main__":
    main()
