"""Multi-host start-up of `phi1_jax.train`: when it calls `jax.distributed.initialize()` and with
what. On TPU VMs (tpu/launch.sh sets PHI1_DISTRIBUTED=1) no coordinator is named: JAX finds it.
GPU hosts started by hand name one; two processes on this machine join through it as two GPU
hosts would. The configs that tpu/launch.sh and the README name pass the trainer's checks."""

import os
import socket
import subprocess
import sys

import jax
import pytest

from phi1_jax.default_config import load_config_file
from phi1_jax.train import ConfigError, check_config, distributed_arguments

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

CASES = {
    "single_process": ({}, None),
    "tpu_launch_script": ({"PHI1_DISTRIBUTED": "1"}, {}),
    "tpu_vm_workers": ({"TPU_WORKER_HOSTNAMES": "t1v-n-0-w-0,t1v-n-0-w-1"}, {}),
    "one_tpu_worker": ({"TPU_WORKER_HOSTNAMES": "t1v-n-0-w-0"}, None),
    "slurm": ({"SLURM_NTASKS": "4"}, {}),
    "gpu_hosts_by_hand": ({"JAX_COORDINATOR_ADDRESS": "10.0.0.2:1234", "JAX_NUM_PROCESSES": "2", "JAX_PROCESS_ID": "1"},
                          {"num_processes": 2, "process_id": 1}),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_distributed_arguments(case):
    environ, expected = CASES[case]
    assert distributed_arguments(environ) == expected


def test_a_non_integer_process_id_is_a_clear_error():
    with pytest.raises(ConfigError, match="JAX_PROCESS_ID must be integers"):
        distributed_arguments({"JAX_COORDINATOR_ADDRESS": "h:1", "JAX_NUM_PROCESSES": "2", "JAX_PROCESS_ID": "first"})


def test_two_processes_join_through_a_named_coordinator():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    program = ("import os, jax\n"
               "from phi1_jax.train import distributed_arguments\n"
               "jax.distributed.initialize(**distributed_arguments(os.environ))\n"
               "print(jax.process_index(), jax.process_count(), flush=True)\n"
               "jax.distributed.shutdown()\n")
    base = {k: v for k, v in os.environ.items() if k not in {"PHI1_DISTRIBUTED", "TPU_WORKER_HOSTNAMES", "SLURM_NTASKS"}}
    base.update(JAX_PLATFORMS="cpu", XLA_FLAGS="--xla_force_host_platform_device_count=1",
                JAX_COORDINATOR_ADDRESS=f"127.0.0.1:{port}", JAX_NUM_PROCESSES="2")
    processes = [subprocess.Popen([sys.executable, "-c", program], cwd=REPO, text=True, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, env={**base, "JAX_PROCESS_ID": str(index)})
                 for index in range(2)]
    outputs = [process.communicate(timeout=180) for process in processes]
    for process, (_, stderr) in zip(processes, outputs):
        assert process.returncode == 0, stderr[-2000:]
    assert [stdout for stdout, _ in outputs] == ["0 2\n", "1 2\n"]


@pytest.mark.parametrize("name", ["phi1.py", "phi1_small.py", "phi1_finetune.py", "phi1_gpu.py"])
def test_the_pod_and_gpu_configs_pass_the_trainers_checks_on_8_devices(name, tmp_path):
    config = load_config_file(os.path.join(REPO, "configs", name))
    config.unlock()
    config.workdir = str(tmp_path / "workdir")
    config.train.init_from = ""  # finetuning's pretrained workdir does not exist here
    assert jax.device_count() == 8
    check_config(config)
