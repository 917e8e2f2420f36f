from chalice import Blueprint

blueprint = Blueprint(__name__)


@blueprint.route("/health", methods=["GET"])
def health() -> dict[str, str]:
    return {"status": "ok"}
