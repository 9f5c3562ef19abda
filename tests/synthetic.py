"""The synthetic MedMNIST-format data, from the library (benchmarks use it too), under the tests' names."""

from bloodcells.data.synthetic import N_CLASSES, synthetic_split, write_mirror, write_synthetic_npz

__all__ = ["N_CLASSES", "synthetic_split", "write_mirror", "write_synthetic_npz"]
