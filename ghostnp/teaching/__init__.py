"""Teaching tools: theoretical and effective receptive fields (``receptive_field``), plots (``viz``) and the
notebooks' shared first cell (``notebook``)."""
