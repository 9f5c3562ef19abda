"""Data: MedMNIST downloads, image folders, validation and preprocessing, splits, class weights."""
