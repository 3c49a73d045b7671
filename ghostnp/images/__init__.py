"""Images: safe decoding (``decode``), timm's evaluation transform (``preprocess``, with the settings the
published weights were evaluated with) and the ImageNet class names (``labels``)."""
