"""``ndl.init``: tensor constructors and weight initialisers (docs/api.md section 4).

Every function takes trailing ``device=None, dtype="float32", requires_grad=False``.
"""

from .basic import constant, one_hot, ones, ones_like, rand, randb, randn, zeros, zeros_like
from .initializers import kaiming_normal, kaiming_uniform, xavier_normal, xavier_uniform

__all__ = [
    "rand", "randn", "constant", "ones", "zeros", "randb", "one_hot", "zeros_like",
    "ones_like", "xavier_uniform", "xavier_normal", "kaiming_uniform", "kaiming_normal",
]  # fmt: skip
