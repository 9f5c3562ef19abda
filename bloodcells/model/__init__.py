"""A trained model as training, inference and evaluation use it: its card, loading, TTA, temperature,
BatchNorm re-estimation and Grad-CAM. Below all three, so none of them imports another for these."""
