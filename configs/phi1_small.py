"""phi-1-small (350M shape of the paper): 20 layers, hidden 1024, MLP 4096, 16 heads x 64."""

from phi1_jax.default_config import get_default_config


def get_config():
    config = get_default_config()
    config.model.update(dict(hidden_size=1024, intermediate_size=4096, num_layers=20, num_heads=16,
                             dtype="bfloat16", resid_dropout=0.1, attention_dropout=0.1,
                             scan_layers=True, remat_policy="dots_with_no_batch_dims"))
    config.workdir = "workdir/phi1_small"
    return config
