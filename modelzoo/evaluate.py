"""Evaluators score predictions against references; plugins supply them per task."""


class Evaluator:
    """`score(prediction, reference, protocol)`: prediction is float RGB in [0, 1], reference uint8 RGB."""

    name = ""
    tasks = ()
    metrics = ()
    plugin = ""

    def score(self, prediction, reference, protocol):
        raise NotImplementedError


def for_task(registry, task):
    for evaluator in registry.evaluators.values():
        if task in evaluator.tasks:
            return evaluator
    from modelzoo.errors import ZooError

    raise ZooError(f"no evaluator registered for task {task} (see `modelzoo plugins`)")
