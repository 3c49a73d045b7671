"""The network: GhostNetV2 (and V1) as plain functions over a flat state_dict-keyed dict of arrays.

Read it from the bottom up: ``layers`` (Ghost module, DFC attention, squeeze-excite, bottleneck, stem,
head), ``architecture`` (the config table), ``params`` (init, validation, ``fold_batchnorm``), ``model``
(the ``GhostNet`` class), ``registry`` (model names), ``summary`` (per-layer table). It calls the op table
(:mod:`ghostnp.ops`) and knows nothing of files, images or the command line.
"""
