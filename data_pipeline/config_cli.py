"""Command-line parsing for the commands configured by an ml_collections file (`--config=FILE
--config.a.b=V`): the data recipe (`data_pipeline.recipe`) and, above it, training and the pod
preflight (`phi1_jax.train`, `phi1_jax.preflight`). One place that turns a bad override into one
line instead of a traceback."""

from __future__ import annotations

import sys

from absl import flags

USAGE_EXIT_CODE = 2


def parse_flags(argv: list[str], program: str) -> list[str]:
    """absl's parsing, with a config file that does not load or a bad `--config.*` override
    reported in one line and exit status 2 (ml_collections raises plain KeyError/AttributeError/
    TypeError for unknown or ill-typed fields, and defers a file's load error to first use)."""
    try:
        rest = flags.FLAGS(argv)
        if "config" not in flags.FLAGS or flags.FLAGS.config is None:
            return rest
        flags.FLAGS.config.get  # noqa: B018 (a config file that failed to load raises on first use)
        return rest
    except OSError as error:  # ml_collections' "Failed loading config file ...", several lines
        message = f"cannot load --config: {' '.join(str(error.__cause__ or error).split())}"
    except SyntaxError as error:
        message = f"cannot load --config: {error}"
    except flags.Error as error:
        message = str(error)
    except (AttributeError, KeyError, TypeError, ValueError) as error:
        while error.args and isinstance(error.args[0], BaseException):  # AttributeError(KeyError(msg))
            error = error.args[0]
        reason = str(error.args[0] if error.args else error).replace("\n", " ")
        given = " ".join(a for a in argv[1:] if a.startswith("--config."))
        message = f"bad config override: {reason} (given: {given})"
    print(f"{program}: error: {message}", file=sys.stderr)
    sys.exit(USAGE_EXIT_CODE)
