"""The one exception type the pipeline shows to users as a one-line message."""


class PipelineError(Exception):
    """A problem with the user's input or configuration.

    The message must name the file, key or value at fault: the command-line
    wrapper prints it as a single line (no traceback) and exits non-zero.
    """
