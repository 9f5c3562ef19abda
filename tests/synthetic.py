"""The synthetic MedMNIST-format data now lives in the library (benchmarks use it too); re-exported here."""

from bloodcells.data.synthetic import N_CLASSES, synthetic_split, write_mirror, write_synthetic_npz

__all__ = ["N_CLASSES", "synthetic_split", "write_mirror", "write_synthetic_npz"]
