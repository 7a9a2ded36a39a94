"""The registry of heritage sites: geometry, materials, thresholds. Pure: no I/O beyond reading files."""

from sites.errors import SiteError, SiteNotFoundError, SiteValidationError
from sites.model import MATERIALS, Site, SiteParams, SiteSet

__all__ = [
    "MATERIALS",
    "Site",
    "SiteError",
    "SiteNotFoundError",
    "SiteParams",
    "SiteSet",
    "SiteValidationError",
]
