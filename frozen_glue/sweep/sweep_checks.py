"""What the sweep checks before it launches anything (sweep_settings.py calls check_not_empty while it reads the
environment, sweep.py check_before_launch before planning), so that a
misspelt flag, a missing GLUE folder or an empty setting stops it in one line at once instead of failing each group
after its start-up: every command line it would start parses with the run's own parser (arguments.parse_args),
every asked task's files exist under GLUE_DIR, and TASKS / SEEDS, when set, are not empty."""

from frozen_glue.config import arguments
from frozen_glue.core.errors import UserError
from frozen_glue.core.tasks import get_task
from frozen_glue.features.data import glue_files


def check_not_empty(env):
    """TASKS="" and SEEDS="" are refused: an empty list is a mistake (an unset variable in a script), not "all"."""
    examples = {"TASKS": "TASKS='cola rte' (or unset TASKS for all nine tasks)", "SEEDS": "SEEDS='1 2 3 4 5'"}
    for name, example in examples.items():
        if name in env and not env[name].replace(",", " ").strip():
            raise UserError(f"{name} is set but empty; give e.g. {example}")


def check_before_launch(models, tasks, glue_dir, command_args):
    """Every model x task command (`command_args(model, task)`: the run's arguments as the sweep would pass them)
    parses as a run parses it, and GLUE_DIR holds every asked task's files (the test files too with --do_predict)."""
    predicting = False
    for m in models:
        for task in tasks:
            try:
                parsed = arguments.parse_args(command_args(m, task))
            except UserError as e:
                raise UserError(f"model {m.alias} (models file flags, EXTRA_ARGS or the sweep's arguments), task "
                                f"{task}: {e}") from None
            predicting = predicting or parsed[3].do_predict
    if glue_dir:
        for task in tasks:
            try:
                glue_files(get_task(task), glue_dir, want_test=predicting)
            except UserError as e:
                raise UserError(f"GLUE_DIR: {e}") from None
