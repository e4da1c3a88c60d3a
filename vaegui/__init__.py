"""vaegui: a desktop latent-space explorer for variational autoencoders."""

__version__ = "0.1.0"
