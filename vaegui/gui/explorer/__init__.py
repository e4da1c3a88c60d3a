"""The latent explorer: the map, the views that decode latent points, and their decoding thread."""
