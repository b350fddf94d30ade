"""The docker backend: containers, the images they run, the offline base image, logs."""
