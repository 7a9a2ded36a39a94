"""Errors of the site registry."""


class SiteError(Exception):
    """Base class of site registry errors."""


class SiteValidationError(SiteError):
    """A site (or a feature being imported) is not acceptable; the message names it."""


class SiteNotFoundError(SiteError):
    """No site with this id is registered."""

    def __init__(self, site_id: str) -> None:
        super().__init__(f"no site with id {site_id!r}")
        self.site_id = site_id
