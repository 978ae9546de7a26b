"""The HTTP API's routes, one `APIRouter` per area."""
