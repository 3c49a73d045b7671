"""Learning-rate schedules as plain functions of the epoch (0, 1, 2, ...): pass one to ``fit`` as
``lr_schedule=lambda epoch: cosine_lr(epoch, epochs=10, base_lr=0.05)``.

>>> [round(cosine_lr(e, epochs=4, base_lr=1.0), 3) for e in range(4)]
[1.0, 0.854, 0.5, 0.146]
>>> [step_lr(e, base_lr=1.0, step_size=2, gamma=0.5) for e in range(5)]
[1.0, 1.0, 0.5, 0.5, 0.25]
"""

import math


def cosine_lr(epoch, *, epochs, base_lr, min_lr=0.0):
    """Cosine annealing from ``base_lr`` at epoch 0 towards ``min_lr`` at epoch ``epochs`` (never reached
    during training): ``min_lr + (base_lr - min_lr) (1 + cos(pi epoch / epochs)) / 2``, the closed form of
    ``torch.optim.lr_scheduler.CosineAnnealingLR(T_max=epochs, eta_min=min_lr)``."""
    return min_lr + (base_lr - min_lr) * (1 + math.cos(math.pi * epoch / epochs)) / 2


def step_lr(epoch, *, base_lr, step_size, gamma=0.1):
    """``base_lr`` times ``gamma`` every ``step_size`` epochs, as ``torch.optim.lr_scheduler.StepLR``."""
    return base_lr * gamma ** (epoch // step_size)
