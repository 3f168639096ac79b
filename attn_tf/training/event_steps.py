"""Reads the steps already written in a run's event files (for resuming)."""

import glob
import os


def last_steps(logdir):
    """Returns {tag: largest step} over every event file directly in `logdir`.

    Used on resume so that no step is written twice: TensorBoard's readers
    disagree on repeated steps and the Rust data server drops every step after
    one that goes backwards. A truncated last record (crash mid-write) is
    tolerated: the loader stops at it.
    """
    from tensorboard.backend.event_processing import event_file_loader

    steps = {}
    for path in sorted(glob.glob(os.path.join(logdir, "events.out.tfevents.*"))):
        try:
            for event in event_file_loader.EventFileLoader(path).Load():
                for value in event.summary.value:
                    if steps.get(value.tag, -1) < event.step:
                        steps[value.tag] = event.step
        except Exception:  # a corrupt tail must not block resuming
            continue
    return steps
