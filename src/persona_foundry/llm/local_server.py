"""The embedded model's server process: llama.cpp's own C++ server (xllamacpp) on 127.0.0.1.

Run as `python -m persona_foundry.llm.local_server` by `llm/local.py`, never by hand. It reads
one JSON line of `LocalServerConfig` on stdin, starts the server, prints one JSON line
`{"base_url": …}` on stdout, and then serves until its stdin closes: the parent closing it, or
dying in any way, ends this process too, so no orphan keeps the model's memory.
"""

from __future__ import annotations

import os
import signal
import sys

from .local_protocol import LocalServerConfig, address_line

# llama.cpp's log level for the child's stderr (the parent keeps it in a log file): warnings.
SERVER_VERBOSITY = 2


def start_server(config: LocalServerConfig) -> object:
    """Start llama.cpp's server for `config`; it serves from its own threads until dropped."""
    # Imported here, once stdout points at stderr: the library may print on import.
    import xllamacpp  # noqa: PLC0415

    params = xllamacpp.CommonParams()
    params.model.path = config.model_path
    params.n_parallel = config.n_parallel
    # One KV cache shared by every slot: a long call may use more than n_ctx / n_parallel
    # while the other slots hold short ones.
    params.n_ctx = config.n_ctx
    params.kv_unified = True
    params.cpuparams.n_threads = config.n_threads
    params.cpuparams_batch.n_threads = config.n_threads
    params.hostnames = ["127.0.0.1"]
    params.port = 0  # any free port; the server reports the one it took
    params.api_keys = [config.api_key.get_secret_value()]
    params.ui = False
    params.warmup = False
    params.verbosity = SERVER_VERBOSITY
    return xllamacpp.Server(params)


def main() -> int:
    """Serve one parent: config in, address out, then wait for stdin to close."""
    # 1. Ctrl-C is the parent's to handle; it ends this process by closing stdin.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # 2. Only the address line goes to the parent's pipe: anything llama.cpp or its binding
    #    prints goes to stderr (the log), so it can neither pose as the address nor fill a
    #    pipe nobody reads after the first line.
    address_out = os.fdopen(os.dup(sys.stdout.fileno()), "w")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    config = LocalServerConfig.model_validate_json(sys.stdin.readline())
    server = start_server(config)
    address = str(server.listening_address)  # type: ignore[attr-defined]  # xllamacpp's Server
    address_out.write(address_line(f"{address}/v1") + "\n")
    address_out.close()
    sys.stdin.read()  # returns at EOF: the parent is done or gone
    return 0


if __name__ == "__main__":
    sys.exit(main())
