"""phi-1 (configs/phi1.py, the paper's hyperparameters) on the GPUs of one host, or of several.

One process per host sees all of its GPUs. The mesh keeps parameters and Adam state sharded over
every GPU (`fsdp`, ZeRO-3) and splits the batch over the same axis; with fast links between hosts
`--config.mesh.data=<hosts> --config.mesh.fsdp=-1` shards within a host and replicates across them.
The paper's run: 8 A100-80GB, batch 1024 x 2048, so 128 sequences per GPU per step, taken here in
16 microbatches of 8. Fewer or smaller GPUs: raise `train.microbatches` (it must divide the rows
per host); bigger ones: lower it.

Attention stays `xla` because phi-1 trains with attention dropout 0.1; `model.attention=dot_product`
(`jax.nn.dot_product_attention`) has none and needs `--config.model.attention_dropout=0.0`.
"""

import os

from phi1_jax.default_config import load_config_file


def get_config():
    config = load_config_file(os.path.join(os.path.dirname(os.path.abspath(__file__)), "phi1.py"))
    config.mesh.update(dict(data=1, fsdp=-1, tensor=1))
    config.train.microbatches = 16
    config.workdir = "workdir/phi1_gpu"
    return config
