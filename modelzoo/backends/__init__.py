"""Runtime backends: each compiles an fp32 ONNX export into its own artifact and runs it.

A backend is registered through the `register_backends` hook, so a vendor runtime can arrive as a plugin.
"""
import importlib.util


class Backend:
    name = ""
    description = ""
    dtypes = ("fp32",)
    package = ""  # import name checked by available()
    install = ""  # how to install it, shown when it is missing
    plugin = ""
    quick = True  # a float build compiles in seconds; False where it takes a minute or more (a first run won't wait)

    def missing(self, build=None):
        """None when usable here (for `build`, a build yaml's backend section, when given), else a one-line
        reason with how to install what is missing."""
        if self.package and importlib.util.find_spec(self.package) is None:
            return f"backend {self.name} needs the '{self.package}' package: {self.install}"
        return None

    def int8_donor(self, build):
        """The backend whose int8 artifact this one converts for `build` (a build yaml's backend section), or None
        when it quantizes on its own: compile builds (or finds cached) the donor's artifact first and sets
        job.donor, so calibration runs once for both runtimes."""
        return None

    def compile(self, job):
        """Write the artifact files for `job` (a modelzoo.compile.Job) into job.workdir; return their names."""
        raise NotImplementedError

    def load(self, job, threads=0):
        """A session for a compiled artifact: an object with run(x: float32 NCHW, inputs=None) -> list of numpy
        outputs, where `inputs` are the card's runtime inputs ({name: float32 array of shape [1]}, card order)."""
        raise NotImplementedError


def feed(session, x, inputs=None):
    """session.run for the image and the runtime inputs; a model without runtime inputs calls run(x) only, so a
    plugin backend written before runtime inputs existed keeps working."""
    return session.run(x, inputs) if inputs else session.run(x)
