"""``GET /health``: 200 once the service can serve.

Where the environment names a ready file (``HEALTH_READY_FILE``, set by the local stack),
the answer is 503 ``starting`` until that file exists: the local stack writes it only after
its demo data is loaded and a token minted the way ``make token`` mints one is accepted, so
scripts that poll ``/health`` can start as soon as it says 200.
"""

from pathlib import Path

from chalice import Blueprint, Response

from chalicelib.api.errors import JSON_HEADERS, error_body
from chalicelib.settings import get_settings

blueprint = Blueprint(__name__)


@blueprint.route("/health", methods=["GET"])
def health() -> Response:
    ready_file = get_settings().health_ready_file
    if ready_file and not Path(ready_file).exists():
        return Response(
            body=error_body(
                "starting", "The service is still starting; try again shortly.", {"ready": False}
            ),
            status_code=503,
            headers={**JSON_HEADERS, "Retry-After": "1"},
        )
    return Response(body={"status": "ok"}, status_code=200, headers=dict(JSON_HEADERS))
