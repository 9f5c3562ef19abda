"""Use a trained model outside the pipeline: predict on new images, export it, serve a page to try it."""
