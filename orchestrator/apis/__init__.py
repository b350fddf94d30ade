"""APIs: the cortex.yaml spec, its units, deploying a project as an immutable snapshot."""
