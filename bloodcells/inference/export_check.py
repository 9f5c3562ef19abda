"""Run each exported format on the same images, and compare them: `bloodcells export --check`.

Every runner takes uint8 images (N, H, W, 3) and returns class probabilities (N, classes). The
reference is the pipeline's own model (models/model.keras, loaded with the project); each format
must give the same argmax on every image and probabilities within PROBABILITY_TOLERANCE.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bloodcells.inference.export import (
    KERAS_NAME,
    ONNX_NAME,
    OUTPUT_NAME,
    SAVED_MODEL_NAME,
    SIGNATURE,
    TFLITE_NAME,
)

PROBABILITY_TOLERANCE = 1e-4  # max |p_format - p_keras| over every image and class
Runner = Callable[[np.ndarray], np.ndarray]


def keras_runner(path: Path) -> Runner:
    """The inference .keras file, loaded with plain Keras."""
    import keras

    model = keras.saving.load_model(path)
    return lambda images: np.asarray(model.predict_on_batch(images))


def saved_model_runner(path: Path) -> Runner:
    """The SavedModel's serving signature."""
    import tensorflow as tf

    serve = tf.saved_model.load(str(path)).signatures[SIGNATURE]
    return lambda images: serve(image=tf.constant(images, tf.uint8))[OUTPUT_NAME].numpy()


def tflite_runner(path: Path) -> Runner:
    """The TFLite flatbuffer in TensorFlow's interpreter (resized to each batch)."""
    import warnings

    import tensorflow as tf

    with warnings.catch_warnings():  # "use ai_edge_litert": not installed; TF's interpreter still runs it
        warnings.simplefilter("ignore", UserWarning)
        interpreter = tf.lite.Interpreter(model_path=str(path))
    (detail,) = interpreter.get_input_details()
    (output,) = interpreter.get_output_details()

    def run(images: np.ndarray) -> np.ndarray:
        if tuple(detail["shape"]) != images.shape:
            interpreter.resize_tensor_input(detail["index"], images.shape)
            interpreter.allocate_tensors()
            detail.update(interpreter.get_input_details()[0])
        interpreter.set_tensor(detail["index"], images)
        interpreter.invoke()
        return interpreter.get_tensor(output["index"]).copy()

    interpreter.allocate_tensors()
    return run


def onnx_runner(path: Path) -> Runner:
    """The ONNX file in ONNX Runtime (CPU)."""
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return lambda images: session.run([OUTPUT_NAME], {"image": images})[0]


RUNNERS: dict[str, tuple[str, Callable[[Path], Runner]]] = {
    "keras (inference)": (KERAS_NAME, keras_runner),
    "savedmodel": (SAVED_MODEL_NAME, saved_model_runner),
    "tflite": (TFLITE_NAME, tflite_runner),
    "onnx": (ONNX_NAME, onnx_runner),
}


@dataclass
class Check:
    """One format against the reference on the same images."""

    name: str
    size_mb: float
    ms_per_image: float  # one image at a time (what an interactive user waits for)
    argmax_agree: int
    images: int
    max_abs_diff: float

    @property
    def ok(self) -> bool:
        return self.argmax_agree == self.images and self.max_abs_diff <= PROBABILITY_TOLERANCE


def size_mb(path: Path) -> float:
    """A file's size, or a folder's total, in MB."""
    files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
    return sum(p.stat().st_size for p in files) / 1e6


def predict_batched(run: Runner, images: np.ndarray, batch: int = 256) -> np.ndarray:
    """`run` over `images` in batches."""
    return np.concatenate([run(images[i : i + batch]) for i in range(0, len(images), batch)])


def latency_ms(run: Runner, images: np.ndarray) -> float:
    """Mean milliseconds per call on single images, after one warm-up call."""
    run(images[:1])
    start = time.perf_counter()
    for i in range(len(images)):
        run(images[i : i + 1])
    return (time.perf_counter() - start) * 1000 / len(images)


def check_formats(
    folder: Path, reference: np.ndarray, images: np.ndarray, latency_images: int
) -> list[Check]:
    """Every format present in `folder`, compared with `reference` probabilities on `images`."""
    checks = []
    for name, (file_name, make_runner) in RUNNERS.items():
        path = folder / file_name
        if not path.exists():
            continue
        run = make_runner(path)
        probs = predict_batched(run, images)
        checks.append(Check(
            name=name,
            size_mb=size_mb(path),
            ms_per_image=latency_ms(run, images[:latency_images]),
            argmax_agree=int((probs.argmax(1) == reference.argmax(1)).sum()),
            images=len(images),
            max_abs_diff=float(np.abs(probs - reference).max()),
        ))
    return checks


def check_command(args) -> None:
    """Print one line per format: size, latency, agreement with the pipeline's Keras model."""
    from bloodcells.inference.predictor import Predictor

    folder = Path(args.folder)
    if not (folder / KERAS_NAME).exists():
        raise ValueError(f"{folder}/{KERAS_NAME} not found: run `dvc repro export` first")
    try:
        images = np.load(args.check, allow_pickle=False)[f"{args.split}_images"]
    except KeyError:
        raise ValueError(f"{args.check}: no {args.split}_images array") from None
    pipeline = Predictor(folder.parent if (folder.parent / KERAS_NAME).exists() else folder)
    start = time.perf_counter()
    reference = predict_batched(lambda x: np.asarray(pipeline.model.predict_on_batch(x)), images)
    rate = len(images) / (time.perf_counter() - start)
    print(f"reference: {pipeline.folder / KERAS_NAME} (the pipeline's model), {len(images)} "
          f"{args.split} images of {args.check}, {rate:.0f} images/s batched")
    print(f"{'format':<18} {'size MB':>8} {'ms/image':>9} {'argmax agree':>14} {'max |dp|':>10}  ok")
    checks = check_formats(folder, reference, images, args.latency_images)
    for c in checks:
        print(f"{c.name:<18} {c.size_mb:>8.2f} {c.ms_per_image:>9.3f} {c.argmax_agree:>7}/{c.images:<6} "
              f"{c.max_abs_diff:>10.2e}  {'yes' if c.ok else 'NO'}")
    if not all(c.ok for c in checks):
        raise ValueError(f"a format disagrees with the Keras model beyond {PROBABILITY_TOLERANCE}")
