"""DynamoDB repositories. Each module loads on first use, not at ``import app`` (see
``chalicelib.deferred``)."""

from chalicelib.deferred import submodules_on_first_use

__getattr__ = submodules_on_first_use(__name__)
