"""Using a trained network on images: ``classify`` (``classification``)."""
