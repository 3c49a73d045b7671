"""Gradients in pure NumPy: a recording op table (``record``) and one vector-Jacobian product per op
(``vjp``), checked against torch autograd. Teaching tools and training build on it."""
