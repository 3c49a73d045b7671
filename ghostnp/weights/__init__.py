"""Weights: files in any checkpoint format (``files``, through ``weights_converter``), which network they
fit (``recognise``), the published weights (``pretrained``), the download cache (``hub``), and
``create_model`` (``create``), which puts a network and its weights together."""
