"""phi1-jax: the phi-1 recipe ("Textbooks Are All You Need") in JAX. See DESIGN.md for the data flow."""

from phi1_jax.model import Phi, init_cache, init_params
from phi1_jax.model_config import PhiConfig

__all__ = ["Phi", "PhiConfig", "init_cache", "init_params"]
