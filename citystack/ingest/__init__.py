"""Getting data in: file readers, presets for known sources, the sample city."""

from .load import IngestError, Mapping, Report, load_file  # noqa: F401
from .presets import PRESETS  # noqa: F401
