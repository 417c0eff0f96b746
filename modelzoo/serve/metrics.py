"""Prometheus text exposition (format 0.0.4) of what the service counts; no client library needed."""
import threading
from collections import defaultdict

BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


class Histogram:
    def __init__(self):
        self.counts = [0] * len(BUCKETS)
        self.total = 0
        self.sum = 0.0

    def observe(self, seconds):
        for index, bound in enumerate(BUCKETS):
            if seconds <= bound:
                self.counts[index] += 1
        self.total += 1
        self.sum += seconds

    def lines(self, name, labels):
        out = [f'{name}_bucket{{{labels}le="{bound}"}} {count}' for bound, count in zip(BUCKETS, self.counts)]
        out += [f'{name}_bucket{{{labels}le="+Inf"}} {self.total}', f"{name}_sum{{{labels.rstrip(',')}}} {self.sum:.6f}",
                f"{name}_count{{{labels.rstrip(',')}}} {self.total}"]
        return out


class Metrics:
    """Requests by route and status, request latency and inference time histograms; gauges are read from the
    service when the text is rendered."""

    def __init__(self):
        self.lock = threading.Lock()
        self.requests = defaultdict(int)  # (method, route, status) -> count
        self.latency = defaultdict(Histogram)  # route -> request seconds
        self.inference = defaultdict(Histogram)  # model -> inference seconds
        self.dropped = 0  # queued work dropped because its client disconnected

    def request(self, method, route, status, seconds):
        with self.lock:
            self.requests[(method, route, status)] += 1
            self.latency[route].observe(seconds)

    def inferred(self, model, seconds):
        with self.lock:
            self.inference[model].observe(seconds)

    def render(self, gauges):
        """The exposition text; `gauges` maps (name, help) to a value or to {label value: value}."""
        with self.lock:
            lines = ["# HELP modelzoo_requests_total HTTP requests by method, route and status.",
                     "# TYPE modelzoo_requests_total counter"]
            lines += [f'modelzoo_requests_total{{method="{m}",route="{r}",status="{s}"}} {n}'
                      for (m, r, s), n in sorted(self.requests.items())]
            lines += ["# HELP modelzoo_request_seconds Time from the request's arrival to its answer.",
                      "# TYPE modelzoo_request_seconds histogram"]
            for route, histogram in sorted(self.latency.items()):
                lines += histogram.lines("modelzoo_request_seconds", f'route="{route}",')
            lines += ["# HELP modelzoo_inference_seconds Inference and post-processing time per image.",
                      "# TYPE modelzoo_inference_seconds histogram"]
            for model, histogram in sorted(self.inference.items()):
                lines += histogram.lines("modelzoo_inference_seconds", f'model="{model}",')
            lines += ["# HELP modelzoo_dropped_total Queued requests dropped because the client disconnected.",
                      "# TYPE modelzoo_dropped_total counter", f"modelzoo_dropped_total {self.dropped}"]
        for (name, help_text, label), value in gauges.items():
            lines += [f"# HELP {name} {help_text}", f"# TYPE {name} gauge"]
            if isinstance(value, dict):
                lines += [f'{name}{{{label}="{key}"}} {number}' for key, number in sorted(value.items())]
            else:
                lines.append(f"{name} {value}")
        return "\n".join(lines) + "\n"
