"""Small synthetic data shared by the torch tests."""

import numpy as np

PALETTE = np.array([[230, 40, 40], [40, 230, 40], [40, 40, 230], [230, 230, 40], [40, 230, 230]])


def colour_task(n: int, k: int = 4, seed: int = 0, size: int = 16):
    """Noise images whose class sets the colour of a patch at a random place: easy, not trivial."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, k, n)
    images = rng.normal(128, 40, (n, size, size, 3))
    for i in range(n):
        y, x = rng.integers(0, size - 6, 2)
        images[i, y : y + 6, x : x + 6] = PALETTE[:k][labels[i]]
    return np.clip(images, 0, 255).astype(np.uint8), labels.astype(np.int64)
